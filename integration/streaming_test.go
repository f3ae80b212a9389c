package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lockstepUpstream writes n chunks; after each it waits until the test
// has read that chunk through sluice (ack) before writing the next. A
// proxy that holds chunks back makes it time out.
func lockstepUpstream(t *testing.T, n int, ack <-chan int, failed chan<- string) http.HandlerFunc {
	return lockstepWriter("text/plain", n, ack, failed, func(w io.Writer, i int) { fmt.Fprintf(w, "chunk-%02d\n", i) })
}

// lockstepWriter is lockstepUpstream with the content type and what each
// of the n pieces says given.
func lockstepWriter(contentType string, n int, ack <-chan int, failed chan<- string, write func(w io.Writer, i int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		for i := 0; i < n; i++ {
			write(w, i)
			w.(http.Flusher).Flush()
			select {
			case got := <-ack:
				if got != i {
					failed <- fmt.Sprintf("ack %d for piece %d", got, i)
					return
				}
			case <-time.After(3 * time.Second):
				failed <- fmt.Sprintf("piece %d not taken by the client within 3s of being written: it was held back", i)
				return
			case <-r.Context().Done():
				return
			}
		}
	}
}

// readLockstep reads the n chunks of a lockstepUpstream from br, telling
// the upstream (ack) after each one that it arrived; a chunk held back by
// the proxy makes the upstream report on failed. context goes into read
// errors.
func readLockstep(t *testing.T, br *bufio.Reader, n int, ack chan<- int, failed <-chan string, context string) {
	t.Helper()
	for i := 0; i < n; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			select {
			case f := <-failed:
				t.Fatal(f)
			default:
			}
			t.Fatalf("chunk %d: %v%s", i, err, context)
		}
		if want := fmt.Sprintf("chunk-%02d\n", i); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		ack <- i
	}
}

func TestChunksArriveFrameByFrame(t *testing.T) {
	const n = 20
	ack := make(chan int)
	failed := make(chan string, 1)
	up := upstream(t, lockstepUpstream(t, n, ack, failed))
	p := startSluice(t, "routes:\n"+route("app", "/", up))

	for _, c := range []struct {
		name   string
		client *http.Client
		proto  int
	}{{"http2", p.h2Client(), 2}, {"http1.1", p.h1Client(), 1}} {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.client.Get(p.url("/stream"))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.ProtoMajor != c.proto {
				t.Fatalf("proto %s, want major %d", res.Proto, c.proto)
			}
			br := bufio.NewReader(res.Body)
			readLockstep(t, br, n, ack, failed, "")
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("after the last chunk: %v, want a clean EOF", err)
			}
		})
	}
}

func TestCurlHTTP2StreamsChunkByChunk(t *testing.T) {
	const n = 10
	ack := make(chan int)
	failed := make(chan string, 1)
	up := upstream(t, lockstepUpstream(t, n, ack, failed))
	p := startSluice(t, "routes:\n"+route("app", "/", up))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "--silent", "--show-error", "--no-buffer", "--http2",
		"--cacert", p.cert.certFile, "--resolve", "localhost:"+port(p.addr)+":127.0.0.1",
		"--write-out", "\nproto=%{http_version}\n", "https://localhost:"+port(p.addr)+"/curl")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(out)
	readLockstep(t, br, n, ack, failed, " (curl: "+stderr.String()+")")
	rest, _ := io.ReadAll(br)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curl: %v: %s", err, stderr.String())
	}
	mustContain(t, string(rest), "proto=2")
}

// pausingUpstream writes a chunk, then each pause in turn followed by
// another chunk. It reports on gone when its request context ends early.
func pausingUpstream(pauses []time.Duration, gone chan<- time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: 0\n\n")
		w.(http.Flusher).Flush()
		for i, d := range pauses {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				if gone != nil {
					gone <- time.Now()
				}
				return
			}
			fmt.Fprintf(w, "data: %d\n\n", i+1)
			w.(http.Flusher).Flush()
		}
	}
}

// readAllTimed reads the body and returns what was read, the error that
// ended it (nil for a clean end) and when the first byte arrived.
func readAllTimed(body io.Reader) (string, error, time.Time) {
	var sb strings.Builder
	var first time.Time
	buf := make([]byte, 1024)
	for {
		n, err := body.Read(buf)
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		sb.Write(buf[:n])
		if err == io.EOF {
			return sb.String(), nil, first
		}
		if err != nil {
			return sb.String(), err, first
		}
	}
}

func TestPerRouteIdleTimeouts(t *testing.T) {
	slowGone := make(chan time.Time, 1)
	defGone := make(chan time.Time, 1)
	slow := upstream(t, pausingUpstream([]time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second, time.Second}, slowGone))
	def := upstream(t, pausingUpstream([]time.Duration{2 * time.Second, time.Second}, defGone))
	p := startSluice(t, `timeouts: { idle: 1s, total: 0s }
routes:
`+route("events", "/events/", slow, "timeouts: { idle: 5s }")+route("app", "/", def))
	client := p.h2Client()

	t.Run("long idle keeps a quiet stream", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		res, err := client.Get(p.url("/events/feed"))
		if err != nil {
			t.Fatal(err)
		}
		body, err, _ := readAllTimed(res.Body)
		if err != nil {
			t.Fatalf("stream with 3s silences under idle 5s was cut after %s: %v", time.Since(start), err)
		}
		if !strings.Contains(body, "data: 4") {
			t.Fatalf("stream incomplete: %q", body)
		}
		if el := time.Since(start); el < 9*time.Second {
			t.Fatalf("stream ended after %s, want about 10s", el)
		}
		if l := p.accessLine("/events/feed", 5*time.Second); l["close_reason"] != "done" {
			t.Fatalf("close_reason %v, want done", l["close_reason"])
		}
	})
	t.Run("default idle resets a long silence", func(t *testing.T) {
		t.Parallel()
		res, err := client.Get(p.url("/page"))
		if err != nil {
			t.Fatal(err)
		}
		body, err, first := readAllTimed(res.Body)
		cut := time.Since(first)
		if err == nil {
			t.Fatalf("a 2s silence under idle 1s ended cleanly: %q", body)
		}
		if cut < 900*time.Millisecond || cut > 1800*time.Millisecond {
			t.Fatalf("stream reset %s after the last chunk, want about 1s", cut)
		}
		var se interface{ Error() string }
		if errors.As(err, &se); !strings.Contains(err.Error(), "stream error") && !strings.Contains(err.Error(), "INTERNAL_ERROR") {
			t.Fatalf("want an HTTP/2 stream reset, got %v", err)
		}
		select {
		case <-defGone:
		case <-time.After(time.Second):
			t.Fatal("upstream exchange still open after the idle reset")
		}
		if l := p.accessLine("/page", 5*time.Second); l["close_reason"] != "idle_timeout" {
			t.Fatalf("close_reason %v, want idle_timeout", l["close_reason"])
		}
	})
}

func TestResponseHeaderTimeoutGives504(t *testing.T) {
	gone := make(chan time.Time, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			gone <- time.Now()
		}
	}))
	p := startSluice(t, "routes:\n"+route("slow", "/", up, "timeouts: { response_header: 500ms }"))
	start := time.Now()
	res, err := p.h2Client().Get(p.url("/slow"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", res.StatusCode)
	}
	if el := time.Since(start); el < 450*time.Millisecond || el > 2*time.Second {
		t.Fatalf("504 after %s, want about 500ms", el)
	}
	select {
	case <-gone:
	case <-time.After(time.Second):
		t.Fatal("upstream exchange not closed after the header timeout")
	}
	if l := p.accessLine("/slow", 5*time.Second); l["close_reason"] != "header_timeout" {
		t.Fatalf("close_reason %v, want header_timeout", l["close_reason"])
	}
}

func TestTotalTimeout(t *testing.T) {
	every := func(d time.Duration, n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = d
		}
		return s
	}
	gone := make(chan time.Time, 1)
	capped := upstream(t, pausingUpstream(every(200*time.Millisecond, 15), gone))
	uncapped := upstream(t, pausingUpstream(every(200*time.Millisecond, 12), nil))
	p := startSluice(t, "routes:\n"+
		route("capped", "/capped", capped, "timeouts: { total: 1s, idle: 5s }")+
		route("uncapped", "/uncapped", uncapped, "timeouts: { total: 0s, idle: 5s }"))
	client := p.h2Client()

	t.Run("total cuts a long stream", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		res, err := client.Get(p.url("/capped"))
		if err != nil {
			t.Fatal(err)
		}
		body, err, _ := readAllTimed(res.Body)
		if err == nil {
			t.Fatalf("3s stream under total 1s ended cleanly: %q", body)
		}
		if el := time.Since(start); el < 900*time.Millisecond || el > 2*time.Second {
			t.Fatalf("cut after %s, want about 1s", el)
		}
		select {
		case <-gone:
		case <-time.After(time.Second):
			t.Fatal("upstream exchange not closed after the total timeout")
		}
		if l := p.accessLine("/capped", 5*time.Second); l["close_reason"] != "total_timeout" {
			t.Fatalf("close_reason %v, want total_timeout", l["close_reason"])
		}
	})
	t.Run("total 0s does not", func(t *testing.T) {
		t.Parallel()
		res, err := client.Get(p.url("/uncapped"))
		if err != nil {
			t.Fatal(err)
		}
		body, err, _ := readAllTimed(res.Body)
		if err != nil || !strings.Contains(body, "data: 12") {
			t.Fatalf("uncapped stream: %v, body %q", err, body)
		}
	})
}

func TestClientResetClosesUpstreamAtOnce(t *testing.T) {
	gone := make(chan time.Time, 2)
	up := upstream(t, pausingUpstream([]time.Duration{30 * time.Second}, gone))
	p := startSluice(t, "routes:\n"+route("app", "/", up))

	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"http2 RST_STREAM", p.h2Client()}, {"http1.1 close", p.h1Client()}} {
		t.Run(c.name, func(t *testing.T) {
			cancelClosesUpstream(t, c.client, p.url("/reset"), gone, 50*time.Millisecond)
			if l := p.accessLine("/reset", 5*time.Second); l["close_reason"] != "client_gone" {
				t.Fatalf("close_reason %v, want client_gone", l["close_reason"])
			}
			p.mu.Lock()
			p.lines = nil // the next subtest looks for its own line
			p.mu.Unlock()
		})
	}
}

// openStream GETs url through client and reads the response's first
// bytes, so the stream is known to be under way.
func openStream(t *testing.T, client *http.Client, url string) *http.Response {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Body.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	return res
}

// cancelClosesUpstream opens a stream through client, cancels it once
// the first bytes arrived, and fails unless the upstream (which reports on
// gone when its request context ends) saw the exchange end within max.
func cancelClosesUpstream(t *testing.T, client *http.Client, url string, gone <-chan time.Time, max time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Body.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	cancelled := time.Now()
	cancel()
	select {
	case at := <-gone:
		if d := at.Sub(cancelled); d > max {
			t.Fatalf("upstream saw the client go after %s, want < %s", d, max)
		} else {
			t.Logf("upstream closed %s after the client cancel", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("upstream exchange still open 2s after the client cancel")
	}
}

func TestUpstreamDeathResetsClient(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\n\r\n")
		brw.Flush()
		time.Sleep(100 * time.Millisecond)
		conn.Close() // dies without the terminating chunk
	}))
	upLen := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
		brw.Flush()
		conn.Close() // fewer bytes than Content-Length
	}))
	p := startSluice(t, "routes:\n"+route("chunked", "/chunked", up)+route("length", "/length", upLen))

	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"http2", p.h2Client()}, {"http1.1", p.h1Client()}} {
		for _, path := range []string{"/chunked", "/length"} {
			t.Run(c.name+path, func(t *testing.T) {
				res, err := c.client.Get(p.url(path))
				if err != nil {
					// Reset before the (unflushed) headers went out:
					// also not a clean end.
					return
				}
				body, err, _ := readAllTimed(res.Body)
				if err == nil {
					t.Fatalf("upstream died mid-body but the client saw a clean end: %q", body)
				}
			})
		}
	}
	if l := p.accessLine("/chunked", 5*time.Second); l["close_reason"] != "upstream_error" {
		t.Fatalf("close_reason %v, want upstream_error", l["close_reason"])
	}
}

func TestUnixSocketUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "over unix, host %s", r.Host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := startSluice(t, "routes:\n"+route("app", "/", "unix:"+sock))
	res, err := p.h2Client().Get(p.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	mustContain(t, string(b), "over unix, host "+p.addr)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
