package h1client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRequestHead(t *testing.T) {
	got := make(chan string, 1)
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Error(err)
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		got <- head.String()
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	req, _ := http.NewRequest(http.MethodGet, s.url("/a%2Fb?q=1&r"), nil)
	req.Host = "example.com"
	req.Header.Set("User-Agent", "")
	req.Header.Set("X-B", "2")
	req.Header.Add("X-A", "1")
	req.Header.Add("X-A", "")
	req.Header.Set("Content-Length", "999") // the transport frames the message
	res, err := s.transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := "GET /a%2Fb?q=1&r HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-A: \r\nX-B: 2\r\n\r\n"
	if h := <-got; h != want {
		t.Fatalf("head\n%q\nwant\n%q", h, want)
	}
}

func TestRequestHeadInjectionRefused(t *testing.T) {
	for name, mod := range map[string]func(*http.Request){
		"CRLF in value": func(r *http.Request) { r.Header.Set("X-A", "a\r\nX-Evil: 1") },
		"NUL in value":  func(r *http.Request) { r.Header.Set("X-A", "a\x00") },
		"bad name":      func(r *http.Request) { r.Header["X A"] = []string{"1"} },
		"bad host":      func(r *http.Request) { r.Host = "a\r\nb" },
		"bad method":    func(r *http.Request) { r.Method = "GET /x" },
	} {
		t.Run(name, func(t *testing.T) {
			dialed := false
			tr := &Transport{Dial: func(ctx context.Context) (net.Conn, error) {
				dialed = true
				return nil, errors.New("no dial expected")
			}}
			req, _ := http.NewRequest(http.MethodGet, "http://upstream/", nil)
			mod(req)
			if _, err := tr.RoundTrip(req); err == nil || dialed {
				t.Fatalf("error %v, dialed %v: want a refusal before dialing", err, dialed)
			}
		})
	}
}

func TestRequestBodies(t *testing.T) {
	type seen struct {
		cl      int64
		te      []string
		body    string
		trailer http.Header
		method  string
	}
	got := make(chan seen, 1)
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(req.Body)
			got <- seen{req.ContentLength, req.TransferEncoding, string(b), req.Trailer, req.Method}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	tr := s.transport()

	send := func(method string, body io.Reader, cl int64, trailer http.Header) seen {
		t.Helper()
		req, _ := http.NewRequest(method, s.url("/"), body)
		req.ContentLength = cl
		req.Trailer = trailer
		if body == nil {
			req.Body = nil
		}
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return <-got
	}
	if g := send(http.MethodPut, strings.NewReader("hello"), 5, nil); g.cl != 5 || g.body != "hello" || g.te != nil {
		t.Fatalf("Content-Length body: %+v", g)
	}
	tr1 := http.Header{"X-Checksum": nil}
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("strea"))
		pw.Write([]byte("med"))
		tr1.Set("X-Checksum", "abc")
		pw.Close()
	}()
	g := send(http.MethodPost, pr, -1, tr1)
	if g.cl != -1 || len(g.te) != 1 || g.te[0] != "chunked" || g.body != "streamed" || g.trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("chunked body: %+v", g)
	}
	if g := send(http.MethodPost, nil, 0, nil); g.cl != 0 || g.body != "" {
		t.Fatalf("body-less POST: %+v", g)
	}
	if n := s.accepts.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 reused", n)
	}
}

// TestBidirectionalStreaming: the response is read while the request body
// still streams.
func TestBidirectionalStreaming(t *testing.T) {
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Error(err)
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		buf := make([]byte, 64)
		for {
			n, err := req.Body.Read(buf)
			if n > 0 {
				io.WriteString(c, strconv.FormatInt(int64(n), 16)+"\r\n"+strings.ToUpper(string(buf[:n]))+"\r\n")
			}
			if err != nil {
				break
			}
		}
		io.WriteString(c, "0\r\n\r\n")
	})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, s.url("/echo"), pr)
	req.ContentLength = -1
	res, err := s.transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	for _, word := range []string{"ping", "pong"} {
		pw.Write([]byte(word))
		n, err := res.Body.Read(b)
		if err != nil || string(b[:n]) != strings.ToUpper(word) {
			t.Fatalf("read %q, %v", b[:n], err)
		}
	}
	pw.Close()
	if rest := readAll(t, res); rest != "" {
		t.Fatalf("rest %q", rest)
	}
}

// TestEarlyResponse: the upstream refuses a body it will not read (413)
// before the body is through; the client gets the 413.
func TestEarlyResponse(t *testing.T) {
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			t.Error(err)
			return
		}
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("start"))
	req, _ := http.NewRequest(http.MethodPost, s.url("/"), pr)
	req.ContentLength = -1
	res, err := s.transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 413 || readAll(t, res) != "big" {
		t.Fatalf("status %d", res.StatusCode)
	}
}

func TestExpectContinue(t *testing.T) {
	t.Run("100 releases the body", func(t *testing.T) {
		s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Error(err)
				return
			}
			if br.Buffered() > 0 {
				t.Error("body sent before the 100")
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			b, _ := io.ReadAll(req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"+string(b))
		})
		tr := s.transport()
		tr.ExpectContinueTimeout = 5 * time.Second
		req, _ := http.NewRequest(http.MethodPut, s.url("/"), strings.NewReader("payload"))
		req.Header.Set("Expect", "100-continue")
		start := time.Now()
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, res); got != "payload" || time.Since(start) > 2*time.Second {
			t.Fatalf("body %q after %v", got, time.Since(start))
		}
	})
	t.Run("final answer before 100", func(t *testing.T) {
		s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				t.Error(err)
				return
			}
			io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if b, _ := br.ReadByte(); b != 0 {
				t.Error("body sent after a final answer")
			}
		})
		tr := s.transport()
		tr.ExpectContinueTimeout = 5 * time.Second
		body := &closeRecorder{Reader: strings.NewReader("payload")}
		req, _ := http.NewRequest(http.MethodPut, s.url("/"), body)
		req.ContentLength = 7
		req.Header.Set("Expect", "100-continue")
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || idleCount(tr) != 0 {
			t.Fatalf("status %d, %d idle: the connection must not be reused", res.StatusCode, idleCount(tr))
		}
		waitFor(t, "the body to be closed", func() bool { return body.isClosed() })
	})
	t.Run("timeout sends the body", func(t *testing.T) {
		s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
			_, b := readReq(t, br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"+b)
		})
		tr := s.transport()
		tr.ExpectContinueTimeout = 20 * time.Millisecond
		req, _ := http.NewRequest(http.MethodPut, s.url("/"), strings.NewReader("payload"))
		req.Header.Set("Expect", "100-continue")
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, res); got != "payload" {
			t.Fatalf("body %q", got)
		}
	})
}

type failingBody struct{ sent bool }

var errClientBody = errors.New("client went away")

func (f *failingBody) Read(p []byte) (int, error) {
	if !f.sent {
		f.sent = true
		return copy(p, "part"), nil
	}
	return 0, errClientBody
}

func (f *failingBody) Close() error { return nil }

// TestRequestBodyFailure: a client body that fails aborts the exchange;
// the upstream sees the connection close, never a complete request.
func TestRequestBodyFailure(t *testing.T) {
	sawEOF := make(chan bool, 1)
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Error(err)
			return
		}
		_, err = io.ReadAll(req.Body)
		sawEOF <- err != nil
	})
	req, _ := http.NewRequest(http.MethodPost, s.url("/"), &failingBody{})
	req.ContentLength = -1
	_, err := s.transport().RoundTrip(req)
	if !errors.Is(err, errClientBody) {
		t.Fatalf("error %v, want the body's", err)
	}
	if !<-sawEOF {
		t.Fatal("upstream read a complete request")
	}
}

// appendFields sorts the field names in an array on its stack: a
// request's head costs no allocation beyond its buffer, and one with more
// fields than the array holds still comes out whole and sorted.
func TestAppendFieldsAllocation(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	for _, k := range []string{"Accept", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Cookie"} {
		req.Header.Set(k, "v")
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := appendFields(buf[:0], req); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%.1f allocations per head, want 0", n)
	}
	for i := range 40 {
		req.Header.Set(fmt.Sprintf("X-%02d", 39-i), "v")
	}
	b, err := appendFields(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	if len(lines) != 46 || !slices.IsSorted(lines) {
		t.Errorf("%d fields, sorted %v:\n%s", len(lines), slices.IsSorted(lines), b)
	}
}
