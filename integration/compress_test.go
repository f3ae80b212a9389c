package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func decoder(t *testing.T, enc string, r io.Reader) io.Reader {
	t.Helper()
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	case "br":
		return brotli.NewReader(r)
	}
	t.Fatalf("unknown encoding %q", enc)
	return nil
}

// TestCompressedSSEStreamsEveryEvent sends server-sent events in lock
// step: the upstream writes event i+1 only after the client has
// decompressed event i, so a compressor that holds a chunk back stalls the
// test. Each event also carries its send time.
func TestCompressedSSEStreamsEveryEvent(t *testing.T) {
	const n = 15
	ack := make(chan int)
	failed := make(chan string, 1)
	up := upstream(t, lockstepWriter("text/event-stream", n, ack, failed, func(w io.Writer, i int) {
		fmt.Fprintf(w, "id: %d\ndata: %d %s\n\n", i, time.Now().UnixNano(), strings.Repeat("payload ", 20))
	}))
	p := startSluice(t, "routes:\n"+route("events", "/", up, "compress: { types: [text/event-stream], min_length: 1KiB }", "timeouts: { idle: 1m, total: 0s }"))
	c := p.h2Client()

	for _, enc := range []string{"gzip", "zstd", "br"} {
		t.Run(enc, func(t *testing.T) {
			req, _ := http.NewRequest("GET", p.url("/events"), nil)
			req.Header.Set("Accept-Encoding", enc)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding %q, want %q", got, enc)
			}
			mustContain(t, res.Header.Get("Vary"), "Accept-Encoding")
			br := bufio.NewReader(decoder(t, enc, res.Body))
			var worst time.Duration
			for i := range n {
				var id, data string
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						select {
						case f := <-failed:
							t.Fatal(f)
						default:
						}
						t.Fatalf("event %d: %v", i, err)
					}
					if line == "\n" {
						break
					}
					if v, ok := strings.CutPrefix(line, "id: "); ok {
						id = strings.TrimSpace(v)
					}
					if v, ok := strings.CutPrefix(line, "data: "); ok {
						data = v
					}
				}
				if id != strconv.Itoa(i) {
					t.Fatalf("event id %q, want %d", id, i)
				}
				sent, _ := strconv.ParseInt(strings.Fields(data)[0], 10, 64)
				worst = max(worst, time.Since(time.Unix(0, sent)))
				ack <- i
			}
			t.Logf("%s: %d events, slowest from upstream write to client decode: %s", enc, n, worst)
			if worst > 2*time.Second {
				t.Fatalf("an event took %s to arrive", worst)
			}
		})
	}
}

// TestCompressedCSVBoundedMemory streams a 64 MiB CSV through gzip and
// zstd compression and checks that sluice's peak memory stays far below
// the body size, and that the client decodes exactly what was sent.
func TestCompressedCSVBoundedMemory(t *testing.T) {
	const rows = 1 << 20 // about 64 MiB
	row := func(i int) string {
		return fmt.Sprintf("%09d,customer-%07d,%d.%02d,2026-11-%02d,\"note %x\"\n", i, i*7919%10000000, i%9973, i%100, i%28+1, i*2654435761)
	}
	var sum [32]byte
	var size int64
	{
		h := sha256.New()
		for i := range rows {
			n, _ := io.WriteString(h, row(i))
			size += int64(n)
		}
		copy(sum[:], h.Sum(nil))
	}
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		bw := bufio.NewWriterSize(w, 32<<10)
		for i := range rows {
			bw.WriteString(row(i))
		}
		bw.Flush()
	}))
	p := startSluice(t, "routes:\n"+route("export", "/", up, "compress: { types: [text/csv] }", "timeouts: { total: 0s }"))
	c := p.h2Client()
	before := procMemKiB(t, p.cmd.Process.Pid, "VmRSS")

	for _, enc := range []string{"gzip", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			req, _ := http.NewRequest("GET", p.url("/export.csv"), nil)
			req.Header.Set("Accept-Encoding", enc+", identity;q=0.5")
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.Header.Get("Content-Encoding") != enc {
				t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
			}
			counted := &countReader{r: res.Body}
			h := sha256.New()
			n, err := io.Copy(h, decoder(t, enc, counted))
			if err != nil {
				t.Fatal(err)
			}
			if n != size || !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Fatalf("decoded %d bytes (want %d), checksum match %v", n, size, bytes.Equal(h.Sum(nil), sum[:]))
			}
			t.Logf("%s: %d MiB CSV sent as %d KiB", enc, size>>20, counted.n>>10)
			if counted.n > size/3 {
				t.Fatalf("compressed to %d of %d bytes", counted.n, size)
			}
		})
	}
	peak := procMemKiB(t, p.cmd.Process.Pid, "VmHWM")
	t.Logf("sluice RSS before %d KiB, peak %d KiB, body %d KiB", before, peak, size>>10)
	if grew := peak - before; grew > 48<<10 || grew > size>>10/2 {
		t.Fatalf("sluice grew by %d KiB while compressing a %d KiB body: not bounded", grew, size>>10)
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// procMemKiB reads a memory figure (VmRSS, VmHWM) of a process.
func procMemKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestCompressionRules(t *testing.T) {
	big := strings.Repeat("hello compressible world ", 200)
	gz := func() []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(big))
		zw.Close()
		return b.Bytes()
	}()
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "tiny")
		case "/encoded":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gz)
		case "/image":
			w.Header().Set("Content-Type", "image/png")
			io.WriteString(w, big)
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Etag", `"v1"`)
			io.WriteString(w, big)
		}
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up, "compress: { types: [\"text/*\"], min_length: 100 }"))
	c := p.h2Client()
	get := func(path, ae string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", p.url(path), nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	for _, tc := range []struct {
		path, ae, wantEnc string
	}{
		{"/page", "gzip, deflate, br, zstd", "zstd"},
		{"/page", "gzip;q=1, br;q=0.8, zstd;q=0.5", "gzip"},
		{"/page", "br", "br"},
		{"/page", "identity", ""},
		{"/page", "zstd;q=0, *", "br"},
		{"/small", "gzip", ""},       // under min_length
		{"/image", "gzip", ""},       // not a listed type
		{"/encoded", "zstd", "gzip"}, // already encoded: untouched
	} {
		res, body := get(tc.path, tc.ae)
		if got := res.Header.Get("Content-Encoding"); got != tc.wantEnc {
			t.Fatalf("%s with %q: Content-Encoding %q, want %q", tc.path, tc.ae, got, tc.wantEnc)
		}
		switch {
		case tc.path == "/encoded":
			if !bytes.Equal(body, gz) {
				t.Fatal("an already-encoded body was changed")
			}
		case tc.wantEnc != "":
			plain, err := io.ReadAll(decoder(t, tc.wantEnc, bytes.NewReader(body)))
			if err != nil || string(plain) != big {
				t.Fatalf("%s %s: decoded %d bytes, err %v", tc.path, tc.wantEnc, len(plain), err)
			}
			if res.Header.Get("Etag") != `W/"v1"` {
				t.Fatalf("Etag %q, want weak", res.Header.Get("Etag"))
			}
		}
	}
}
