package h1client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeepAliveReuse(t *testing.T) {
	s := newServer(t, respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr := s.transport()
	for range 5 {
		res, err := get(t, tr, s.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, res); got != "ok" {
			t.Fatalf("body %q", got)
		}
	}
	if n := s.accepts.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1", n)
	}
}

func TestEarlyCloseClosesConnection(t *testing.T) {
	s := newServer(t, respond("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"))
	tr := s.transport()
	for range 2 {
		res, err := get(t, tr, s.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 3)
		io.ReadFull(res.Body, b)
		res.Body.Close()
		if _, err := res.Body.Read(b); err == nil {
			t.Fatal("read after Close succeeded")
		}
	}
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: a half-read body must not be reused", n)
	}
}

func TestIdlePoolLIFOAndMax(t *testing.T) {
	s := newServer(t, respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr := s.transport()
	tr.MaxIdleConns = 2
	// Three exchanges open at once need three connections.
	var open []*http.Response
	for range 3 {
		res, err := get(t, tr, s.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, res)
	}
	for _, res := range open {
		readAll(t, res)
	}
	if n := s.accepts.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
	if n := idleCount(tr); n != 2 {
		t.Fatalf("%d idle, want MaxIdleConns=2", n)
	}
	tr.mu.Lock()
	newest := tr.idle[len(tr.idle)-1]
	tr.mu.Unlock()
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	tr.mu.Lock()
	last := tr.idle[len(tr.idle)-1]
	tr.mu.Unlock()
	if last != newest {
		t.Fatal("the pool did not hand out its most recently used connection")
	}
	tr.CloseIdleConnections()
	if idleCount(tr) != 0 {
		t.Fatal("CloseIdleConnections left connections")
	}
}

func TestIdleTimeoutJanitor(t *testing.T) {
	closed := make(chan struct{})
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		if _, err := br.ReadByte(); err == io.EOF {
			close(closed)
		}
	})
	tr := s.transport()
	tr.IdleConnTimeout = 30 * time.Millisecond
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("idle connection not closed after IdleConnTimeout")
	}
	if n := idleCount(tr); n != 0 {
		t.Fatalf("%d idle after the timeout", n)
	}
}

// TestStaleIdleConnDiscarded: an upstream that closed its idle connection
// (a keep-alive timeout) costs nothing: the peek finds it dead before the
// head is written, so even a request that may not be sent twice (a POST)
// goes out on a fresh connection.
func TestStaleIdleConnDiscarded(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
			readReq(t, br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
		tr := s.transport()
		res, err := get(t, tr, s.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, res)
		tr.mu.Lock()
		c := tr.idle[0]
		tr.mu.Unlock()
		waitFor(t, "the upstream's close to arrive", c.stale)
		req, _ := http.NewRequest(method, s.url("/"), nil)
		res, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s after the upstream closed its idle connection: %v", method, err)
		}
		readAll(t, res)
		if n := s.accepts.Load(); n != 2 {
			t.Fatalf("%s: %d connections, want 2", method, n)
		}
	}
}

// TestUnaskedBytesAreNotAResponse: bytes an upstream sends on an idle
// connection after a complete response are never read as the answer to
// the next request.
func TestUnaskedBytesAreNotAResponse(t *testing.T) {
	sent := make(chan struct{})
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforged")
		close(sent)
		br.ReadByte()
	}, respond("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"))
	tr := s.transport()
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	<-sent
	tr.mu.Lock()
	c := tr.idle[0]
	tr.mu.Unlock()
	waitFor(t, "the unasked bytes to arrive", c.stale)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, s.url("/"), nil)
		res, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if got := readAll(t, res); got != "fresh" {
			t.Fatalf("%s: body %q, want the fresh connection's", method, got)
		}
	}
}

// TestHeadLargerThanTheSocketTakes: a head the socket cannot take at once
// is written whole, the rest blocking, and its response read.
func TestHeadLargerThanTheSocketTakes(t *testing.T) {
	big := strings.Repeat("v", 8<<20)
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		time.Sleep(100 * time.Millisecond)
		req, _ := readReq(t, br)
		if req != nil && req.Header.Get("X-Big") != big {
			t.Errorf("X-Big header of %d bytes, want %d", len(req.Header.Get("X-Big")), len(big))
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		br.ReadByte()
	})
	tr := s.transport()
	req, _ := http.NewRequest(http.MethodGet, s.url("/"), nil)
	req.Header.Set("X-Big", big)
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, res); got != "ok" {
		t.Fatalf("body %q", got)
	}
}

// TestRetryOnReusedConnection: the upstream closes a reused connection as
// the request arrives (the race the peek cannot see); a body-less request
// is sent again on a fresh connection.
func TestRetryOnReusedConnection(t *testing.T) {
	first := func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		readReq(t, br)
		c.(*net.TCPConn).SetLinger(0) // a reset, as a dying worker gives
	}
	s := newServer(t, first, respond("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"))
	tr := s.transport()
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	res, err = get(t, tr, s.url("/"))
	if err != nil {
		t.Fatalf("no retry on a fresh connection: %v", err)
	}
	if got := readAll(t, res); got != "fresh" {
		t.Fatalf("body %q", got)
	}

	// A request with a body is not sent twice.
	s2 := newServer(t, first)
	tr2 := s2.transport()
	res, err = get(t, tr2, s2.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, res)
	req, _ := http.NewRequest(http.MethodPost, s2.url("/"), strings.NewReader("body"))
	if res, err = tr2.RoundTrip(req); err == nil {
		res.Body.Close()
		t.Fatal("a request with a body was retried")
	}
}

type testDialError struct{ error }

func TestDialErrorReturned(t *testing.T) {
	tr := &Transport{Dial: func(ctx context.Context) (net.Conn, error) {
		return nil, &testDialError{errors.New("refused")}
	}}
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, "http://upstream/", body)
	_, err := tr.RoundTrip(req)
	var de *testDialError
	if !errors.As(err, &de) {
		t.Fatalf("error %v, want the dialer's", err)
	}
	if !body.isClosed() {
		t.Fatal("request body not closed")
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error   { c.closed.Store(true); return nil }
func (c *closeRecorder) isClosed() bool { return c.closed.Load() }

// TestCancelClosesUpstream: cancelling the request context closes the
// upstream connection at once, during the head wait and mid-body.
func TestCancelClosesUpstream(t *testing.T) {
	for _, midBody := range []bool{false, true} {
		gone := make(chan time.Time, 1)
		s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
			readReq(t, br)
			if midBody {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
			}
			br.ReadByte()
			gone <- time.Now()
		})
		tr := s.transport()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/"), nil)
		var cancelled time.Time
		if midBody {
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 10)
			res.Body.Read(b)
			time.AfterFunc(20*time.Millisecond, func() { cancelled = time.Now(); cancel() })
			if _, err := res.Body.Read(b); !errors.Is(err, context.Canceled) {
				t.Fatalf("body read error %v, want context.Canceled", err)
			}
			res.Body.Close()
		} else {
			time.AfterFunc(20*time.Millisecond, func() { cancelled = time.Now(); cancel() })
			if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
		}
		select {
		case at := <-gone:
			if d := at.Sub(cancelled); d > 100*time.Millisecond {
				t.Fatalf("upstream saw the close %v after the cancel", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("upstream connection not closed on cancel")
		}
		if idleCount(tr) != 0 {
			t.Fatal("a cancelled connection went to the pool")
		}
	}
}
