package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// recorder is an upstream that records every request that reaches it and
// counts its open connections.
type recorder struct {
	url      string
	requests atomic.Int64
	open     atomic.Int64
	mu       sync.Mutex
	seen     []*http.Request
	bodies   []string
	complete map[string]bool // path -> body read to its end without error
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	rec := &recorder{complete: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec.requests.Add(1)
			rec.mu.Lock()
			rec.seen = append(rec.seen, r)
			rec.mu.Unlock()
			body, err := io.ReadAll(r.Body)
			rec.mu.Lock()
			rec.bodies = append(rec.bodies, string(body))
			rec.complete[r.URL.Path] = err == nil
			rec.mu.Unlock()
			if h != nil {
				h(w, r)
				return
			}
			io.WriteString(w, "upstream ok\n")
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				rec.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				rec.open.Add(-1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	rec.url = "http://" + ln.Addr().String()
	return rec
}

// saw reports whether a request for path reached the upstream, and
// whether its body arrived whole.
func (rec *recorder) saw(path string) (seen, complete bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.seen {
		if r.URL.Path == path {
			return true, rec.complete[path]
		}
	}
	return false, false
}

func (rec *recorder) paths() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var ps []string
	for _, r := range rec.seen {
		ps = append(ps, r.URL.Path)
	}
	return ps
}

// rawH1 opens a TLS connection speaking HTTP/1.1, writes raw bytes and
// returns everything sluice sends back until it closes the connection.
// closed is false when the connection was still open at the deadline.
func rawH1(t *testing.T, p *sluiceProc, raw string, wait time.Duration) (out string, closed bool) {
	t.Helper()
	cfg := p.tlsConfig()
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	var buf bytes.Buffer
	_, err = io.Copy(&buf, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return buf.String(), false
	}
	return buf.String(), true
}

// responses counts the HTTP/1.1 status lines in out.
func responses(out string) int { return strings.Count(out, "HTTP/1.1 ") }

// TestRequestFramingRefused sends requests with ambiguous or broken
// HTTP/1.1 framing, each followed by a pipelined request that must never
// be read (request smuggling). Each gets 400 or 501 and the connection
// closes. A refused head never reaches the upstream; a body whose chunked
// framing breaks reaches it only as a head and a truncated body (the
// upstream exchange is cancelled), never as a complete request.
func TestRequestFramingRefused(t *testing.T) {
	rec := newRecorder(t, nil)
	p := startSluice(t, "routes:\n"+route("app", "/", rec.url))
	for i, tc := range []struct {
		name, req  string
		status     []string
		bodyBroken bool // refused while the body streams: head may reach upstream
	}{
		{"content-length and transfer-encoding", "POST /case HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []string{"400"}, false},
		{"duplicate content-length", "POST /case HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd", []string{"400"}, false},
		{"same content-length twice", "POST /case HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", []string{"400"}, false},
		{"content-length list", "POST /case HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4, 4\r\n\r\nabcd", []string{"400"}, false},
		{"signed content-length", "POST /case HTTP/1.1\r\nHost: localhost\r\nContent-Length: +4\r\n\r\nabcd", []string{"400"}, false},
		{"hex content-length", "POST /case HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0x4\r\n\r\nabcd", []string{"400"}, false},
		{"transfer-encoding gzip, chunked", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", []string{"400", "501"}, false},
		{"transfer-encoding chunked twice", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []string{"400", "501"}, false},
		{"transfer-encoding identity", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n\r\n", []string{"400", "501"}, false},
		{"transfer-encoding list", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", []string{"400", "501"}, false},
		{"whitespace before colon", "GET /case HTTP/1.1\r\nHost: localhost\r\nX-Test : 1\r\n\r\n", []string{"400"}, false},
		{"whitespace before colon content-length", "POST /case HTTP/1.1\r\nHost: localhost\r\nContent-Length : 4\r\n\r\nabcd", []string{"400"}, false},
		{"obs-fold", "GET /case HTTP/1.1\r\nHost: localhost\r\nX-Test: 1\r\n 2\r\n\r\n", []string{"400"}, false},
		{"NUL in header value", "GET /case HTTP/1.1\r\nHost: localhost\r\nX-Test: a\x00b\r\n\r\n", []string{"400"}, false},
		{"bare CR in header value", "GET /case HTTP/1.1\r\nHost: localhost\r\nX-Test: a\rb\r\n\r\n", []string{"400"}, false},
		{"LF in header value", "GET /case HTTP/1.1\r\nHost: localhost\r\nX-Test: a\nb\r\n\r\n", []string{"400"}, false},
		{"CR in host", "GET /case HTTP/1.1\r\nHost: local\rhost\r\n\r\n", []string{"400"}, false},
		{"two hosts", "GET /case HTTP/1.1\r\nHost: localhost\r\nHost: evil.com\r\n\r\n", []string{"400"}, false},
		{"underscore header", "GET /case HTTP/1.1\r\nHost: localhost\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n", []string{"400"}, false},
		{"bare LF chunk line", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\r\n0\r\n\r\n", []string{"400"}, true},
		{"invalid chunk size", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n", []string{"400"}, true},
		{"chunk size overflow", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabcd\r\n0\r\n\r\n", []string{"400"}, true},
		{"chunk without CRLF after data", "POST /case HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n", []string{"400"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/case-%d", i)
			smuggled := fmt.Sprintf("/smuggled-%d", i)
			req := strings.Replace(tc.req, "/case", path, 1) + "GET " + smuggled + " HTTP/1.1\r\nHost: localhost\r\n\r\n"
			out, closed := rawH1(t, p, req, 5*time.Second)
			status := ""
			if strings.HasPrefix(out, "HTTP/1.1 ") && len(out) >= 12 {
				status = out[9:12]
			}
			if !slices.Contains(tc.status, status) {
				t.Errorf("status %q, want one of %v; response:\n%s", status, tc.status, out)
			}
			if !closed {
				t.Errorf("connection left open after the refusal")
			}
			if n := responses(out); n != 1 {
				t.Errorf("%d responses: the pipelined request was read:\n%s", n, out)
			}
			if bytes.Contains([]byte(out), []byte("upstream ok")) {
				t.Errorf("an upstream response was spliced in:\n%s", out)
			}
			// Wait until sluice has finished with the exchange, if any
			// reached a handler, before asking the upstream.
			if tc.bodyBroken {
				p.accessLine(path, 5*time.Second)
			}
			if seen, _ := rec.saw(smuggled); seen {
				t.Errorf("the smuggled request reached the upstream")
			}
			seen, complete := rec.saw(path)
			if seen && !tc.bodyBroken {
				t.Errorf("the refused request reached the upstream")
			}
			if complete {
				t.Errorf("the upstream read the malformed request to its end")
			}
		})
	}
}

// readResponse reads one HTTP/1.1 response from br.
func readResponse(t *testing.T, br *bufio.Reader) *http.Response {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestWebSocketThroughHeadFilter: after an upgrade request the HTTP/1.1
// head filter steps aside, so a WebSocket tunnel carries arbitrary bytes
// (here, ones that look like a malformed request head) both ways.
func TestWebSocketThroughHeadFilter(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		io.Copy(c, brw) // echo until the client goes
	}))
	p := startSluice(t, "routes:\n"+route("ws", "/", up, "timeouts: { total: 0s }"))
	cfg := p.tlsConfig()
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", p.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	res := readResponse(t, br)
	if res.StatusCode != 101 {
		t.Fatalf("status %d", res.StatusCode)
	}
	payload := "X : y\r\n obs-fold\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	io.WriteString(c, payload)
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != payload {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// TestDrainThroughFilteredConns: with TLS terminated below net/http, a
// SIGTERM still drains open HTTP/2 and HTTP/1.1 exchanges (GOAWAY, then
// exit once they are done).
func TestDrainThroughFilteredConns(t *testing.T) {
	started := make(chan struct{}, 2)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(time.Second)
		io.WriteString(w, "finished")
	}))
	p := startSluice(t, "server: { shutdown_timeout: 10s }\nroutes:\n"+route("app", "/", up))
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 2)
	for _, c := range []*http.Client{p.h2Client(), p.h1Client()} {
		go func() {
			_, body, err := get(c, p.url("/slow"))
			results <- result{body, err}
		}()
	}
	<-started
	<-started
	p.signal(syscall.SIGTERM)
	for range 2 {
		if r := <-results; r.err != nil || r.body != "finished" {
			t.Errorf("open exchange not drained: %q %v", r.body, r.err)
		}
	}
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestHTTP1KeepAliveThroughHeadFilter: requests with and without bodies
// follow each other on one HTTP/1.1 connection through the head filter.
func TestHTTP1KeepAliveThroughHeadFilter(t *testing.T) {
	rec := newRecorder(t, nil)
	p := startSluice(t, "routes:\n"+route("app", "/", rec.url))
	c := p.h1Client()
	newConns := 0
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			newConns++
		}
	}}
	for i := range 30 {
		var body io.Reader
		method := "GET"
		if i%2 == 1 {
			method, body = "POST", strings.NewReader(strings.Repeat("b", 100*i))
		}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, p.url(fmt.Sprintf("/ka-%d", i)), body)
		if i%4 == 3 {
			req.ContentLength = -1 // chunked
			req.Body = io.NopCloser(strings.NewReader("chunked body"))
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
		// Let net/http's background read after the response be
		// aborted by its read deadline before the next request.
		time.Sleep(5 * time.Millisecond)
	}
	if newConns != 1 {
		t.Errorf("%d connections for 30 keep-alive requests, want 1", newConns)
	}
}
