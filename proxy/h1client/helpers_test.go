package h1client

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// script serves one accepted connection.
type script func(t *testing.T, c net.Conn, br *bufio.Reader)

// server is a raw TCP upstream on 127.0.0.1:0 that runs the scripts in
// order, one per accepted connection; the last one repeats.
type server struct {
	t       *testing.T
	ln      net.Listener
	accepts atomic.Int32
	wg      sync.WaitGroup
}

func newServer(t *testing.T, scripts ...script) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(s.accepts.Add(1)) - 1
			sc := scripts[min(i, len(scripts)-1)]
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				// Every script read is bounded so a regression fails.
				c.SetDeadline(time.Now().Add(10 * time.Second))
				sc(t, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *server) transport() *Transport {
	addr := s.ln.Addr().String()
	tr := &Transport{Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
	s.t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func (s *server) url(path string) string { return "http://" + s.ln.Addr().String() + path }

// readReq reads one request with its body.
func readReq(t *testing.T, br *bufio.Reader) (*http.Request, string) {
	t.Helper()
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Errorf("server: reading request: %v", err)
		return nil, ""
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Errorf("server: reading request body: %v", err)
	}
	return req, string(b)
}

// respond answers every request on the connection with raw.
func respond(raw string) script {
	return func(t *testing.T, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			if _, err := io.WriteString(c, raw); err != nil {
				return
			}
		}
	}
}

func get(t *testing.T, tr *Transport, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr.RoundTrip(req)
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	res.Body.Close()
	return string(b)
}

func idleCount(tr *Transport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.idle)
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func crlfs(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
