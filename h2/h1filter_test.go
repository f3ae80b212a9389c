package h2

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// filtered runs raw through an h1Filter, reading the source one byte at a
// time so that every split point of the parser is exercised.
func filtered(t *testing.T, raw string) string {
	t.Helper()
	f := newH1Filter(iotest.OneByteReader(strings.NewReader(raw)), 1<<10)
	var out bytes.Buffer
	if _, err := io.Copy(&out, f); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestH1FilterPassesValidPipelines(t *testing.T) {
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\nGET / HTTP/1.1\r\nHost: a\r\nX-Tab:\tv\t\r\n\r\n",
		// After an upgrade request the bytes are not HTTP/1.1 any more.
		"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello X : y\r\n \r\n",
	} {
		if got := filtered(t, raw); got != raw {
			t.Errorf("changed:\n%q\n%q", raw, got)
		}
	}
}

func TestH1FilterRefusesAmbiguousHeads(t *testing.T) {
	first := "GET /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
	for _, head := range []string{
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nX : 1\r\n\r\n",
		"GET / HTTP/1.1\r\nX\t: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nX: 1\r\n\t2\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
		"GET / HTTP/1.1\r\nno colon\r\n\r\n",
	} {
		got := filtered(t, first+head+"GET /smuggled HTTP/1.1\r\n\r\n")
		if got != first+refusedHead {
			t.Errorf("head %q: got %q", head, got)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// steps is a reader that returns each step in turn: data or an error.
type steps []any

func (s *steps) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	step := (*s)[0]
	*s = (*s)[1:]
	if err, ok := step.(error); ok {
		return 0, err
	}
	return copy(p, step.(string)), nil
}

// net/http stops its background read after each response with a read
// deadline in the past: the filter must pass that timeout on once and
// read on afterwards, or every keep-alive connection dies after one
// request.
func TestH1FilterTimeoutIsNotSticky(t *testing.T) {
	for _, state := range []string{"head", "body"} {
		first := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
		if state == "body" {
			first = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab"
		}
		src := &steps{first, timeoutErr{}}
		if state == "body" {
			*src = append(*src, "cd")
		}
		*src = append(*src, "GET /2 HTTP/1.1\r\n\r\n")
		f := newH1Filter(src, 1<<10)
		var got bytes.Buffer
		buf := make([]byte, 64)
		timeouts := 0
		for i := 0; ; i++ {
			if i > 100 {
				t.Fatalf("%s: no EOF after %d reads: the error stuck", state, i)
			}
			n, err := f.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				timeouts++
			}
		}
		want := strings.ReplaceAll(first, "ab", "abcd") + "GET /2 HTTP/1.1\r\n\r\n"
		if timeouts != 1 || got.String() != want {
			t.Errorf("%s: %d timeouts, got %q", state, timeouts, got.String())
		}
	}
}

// TestH1FilterAnyCallerBufferSize: the filter reads into the caller's
// buffer (or its small one when that is tiny), so the output must not
// depend on how large the caller's reads are.
func TestH1FilterAnyCallerBufferSize(t *testing.T) {
	pipeline := "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 3000) + "\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /last HTTP/1.1\r\nHost: a\r\n\r\n"
	refused := "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"
	for _, size := range []int{1, 7, 511, 512, 4096, 64 << 10} {
		for _, tc := range []struct{ in, want string }{
			{pipeline, pipeline},
			{refused, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n" + refusedHead},
		} {
			f := newH1Filter(strings.NewReader(tc.in), 1<<14)
			var out bytes.Buffer
			buf := make([]byte, size)
			for {
				n, err := f.Read(buf)
				out.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if out.String() != tc.want {
				t.Errorf("reads of %d bytes: got %q, want %q", size, out.String(), tc.want)
			}
		}
	}
}
