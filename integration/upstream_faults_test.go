package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultyUpstream is a raw TCP upstream that answers each request path
// with a scripted misbehaviour, and records whether sluice closed its
// side of each connection afterwards.
type faultyUpstream struct {
	addr   string
	mu     sync.Mutex
	closed map[string]chan struct{} // path -> closed once sluice closed the connection
}

type fault func(c net.Conn) (selfClosed bool)

func newFaultyUpstream(t *testing.T, faults map[string]fault) *faultyUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u := &faultyUpstream{addr: ln.Addr().String(), closed: map[string]chan struct{}{}}
	for path := range faults {
		u.closed[path] = make(chan struct{})
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				f, ok := faults[req.URL.Path]
				if !ok {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
					return
				}
				if f(c) {
					close(u.closed[req.URL.Path])
					return
				}
				// Wait for sluice to close its side: a FIN, or a reset
				// when it closed with our bytes unread.
				c.SetReadDeadline(time.Now().Add(15 * time.Second))
				_, err = io.Copy(io.Discard, br)
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					close(u.closed[req.URL.Path])
				}
			}()
		}
	}()
	return u
}

func write(s string) fault {
	return func(c net.Conn) bool { io.WriteString(c, s); return false }
}

func writeThenReset(s string) fault {
	return func(c net.Conn) bool {
		io.WriteString(c, s)
		c.(*net.TCPConn).SetLinger(0) // RST, not FIN
		c.Close()
		return true
	}
}

func writeThenClose(s string) fault {
	return func(c net.Conn) bool { io.WriteString(c, s); c.Close(); return true }
}

// TestFaultyUpstreams: each upstream misbehaviour gives the client the
// documented result, the access log a close_reason, and leaves no
// upstream connection open.
func TestFaultyUpstreams(t *testing.T) {
	hugeHeaders := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Flood: "+strings.Repeat("f", 1000)+"\r\n", 2000) + "\r\n"
	u := newFaultyUpstream(t, map[string]fault{
		"/reset-mid-headers": writeThenReset("HTTP/1.1 200 OK\r\nContent-Ty"),
		"/bad-status-line":   write("HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"),
		"/close-mid-chunk":   writeThenClose("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
		"/more-than-length":  write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nSPLICED"),
		"/less-than-length":  writeThenClose("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
		"/stall":             func(net.Conn) bool { return false },
		"/continues":         write(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 50) + "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
		"/continue-flood":    write(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 50000) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
		"/switch-unasked":    write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\nRAW BYTES"),
		"/header-flood":      write(hugeHeaders),
	})
	// A port that refuses: bound, then closed.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()

	p := startSluice(t, "timeouts: { response_header: 1s }\nroutes:\n"+
		route("refused", "/refused", "http://"+refused)+
		route("faulty", "/", "http://"+u.addr))
	c := p.h2Client()
	before := p.stats(t)

	for _, tc := range []struct {
		path   string
		status int    // 0: the response must fail (stream reset) after its headers
		body   string // with status 200: the exact body
		reason string
	}{
		{"/refused", 502, "", "upstream_error"},
		{"/reset-mid-headers", 502, "", "upstream_error"},
		{"/bad-status-line", 502, "", "upstream_error"},
		{"/close-mid-chunk", 0, "", "upstream_error"},
		{"/more-than-length", 200, "hello", "done"},
		{"/less-than-length", 0, "", "upstream_error"},
		{"/stall", 504, "", "header_timeout"},
		// 1xx responses are informational: skipped, up to 1 MiB of them
		// (the transport's header limit), then the upstream is faulty.
		{"/continues", 200, "ok", "done"},
		{"/continue-flood", 502, "", "upstream_error"},
		// A 101 to a request that asked for no upgrade: never a tunnel.
		{"/switch-unasked", 502, "", "upstream_error"},
		{"/header-flood", 502, "", "upstream_error"},
	} {
		t.Run(tc.path[1:], func(t *testing.T) {
			status, body, err := get(c, p.url(tc.path))
			switch {
			case tc.status == 0:
				// Reset before or after the headers reached the client:
				// either way never a clean end.
				if err == nil {
					t.Errorf("truncated response ended cleanly (status %d, body %q)", status, body)
				}
			case status != tc.status || err != nil:
				t.Errorf("got %d %q (%v), want %d", status, body, err, tc.status)
			case tc.body != "" && body != tc.body:
				t.Errorf("body %q, want %q", body, tc.body)
			}
			l := p.accessLine(tc.path, 5*time.Second)
			if l["close_reason"] != tc.reason {
				t.Errorf("close_reason %v, want %s", l["close_reason"], tc.reason)
			}
			if ch, ok := u.closed[tc.path]; ok {
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
					t.Errorf("sluice kept the upstream connection open")
				}
			}
		})
	}

	// The bytes past the Content-Length of /more-than-length must never
	// be taken for the next response on that connection.
	for range 3 {
		res, err := c.Get(p.url("/after"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), "SPLICED") || res.StatusCode == 200 && string(body) != "fresh" {
			t.Fatalf("response spliced from two: %d %q", res.StatusCode, body)
		}
	}
	// Every faulty upstream connection is gone from sluice too: its open
	// descriptors are back to the start, plus at most the client's
	// connection and one pooled upstream connection.
	var after procStats
	if !waitFor(5*time.Second, func() bool { after = p.stats(t); return after.fds <= before.fds+2 }) {
		t.Errorf("sluice file descriptors %d -> %d", before.fds, after.fds)
	}
}

// get returns a response's status and whole body, or the error that cut
// the request or its body.
func get(c *http.Client, url string) (int, string, error) {
	res, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}
