package h1client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestMalformedResponses(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
	}{
		{"no status code", "HTTP/1.1\n\n"},
		{"bad protocol", "HTTP/2.0 200 OK\n\n"},
		{"ICY", "ICY 200 OK\n\n"},
		{"short code", "HTTP/1.1 20 OK\n\n"},
		{"letters in code", "HTTP/1.1 2x0 OK\n\n"},
		{"no colon", "HTTP/1.1 200 OK\nBroken\n\n"},
		{"space before colon", "HTTP/1.1 200 OK\nX-A : 1\n\n"},
		{"bad name", "HTTP/1.1 200 OK\nX(A): 1\n\n"},
		{"NUL in value", "HTTP/1.1 200 OK\nX-A: a\x00b\n\n"},
		{"CR in value", "HTTP/1.1 200 OK\nX-A: a\rb\n\n"},
		{"folded line", "HTTP/1.1 200 OK\nX-A: a\n b\n\n"},
		{"conflicting Content-Length", "HTTP/1.1 200 OK\nContent-Length: 3\nContent-Length: 4\n\nabcd"},
		{"negative Content-Length", "HTTP/1.1 200 OK\nContent-Length: -1\n\n"},
		{"Content-Length with sign", "HTTP/1.1 200 OK\nContent-Length: +3\n\nabc"},
		{"gzip transfer encoding", "HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n\n"},
		{"chunked twice", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n0\n\n"},
		{"1xx flood over the header limit", strings.Repeat("HTTP/1.1 100 Continue\n\n", 50000) + "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
		{"forbidden trailer", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTrailer: Content-Length\n\n0\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, respond(crlfs(tc.raw)))
			res, err := get(t, s.transport(), s.url("/"))
			if err == nil {
				res.Body.Close()
				t.Fatalf("got %q, want an error", res.Status)
			}
		})
	}
}

func TestMalformedChunkedBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"bad size", "zz\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"size too long", "10000000000000000\r\n", errBadChunk},
		{"size over 63 bits", "8000000000000000\r\n", errBadChunk},
		{"data longer than size", "3\r\nhello\r\n0\r\n\r\n", nil},
		{"truncated data", "5\r\nhel", io.ErrUnexpectedEOF},
		{"no last chunk", "5\r\nhello\r\n", io.ErrUnexpectedEOF},
		{"bad trailer", "0\r\nX(A): 1\r\n\r\n", nil},
		{"long size line", "5;" + strings.Repeat("x", 5000) + "\r\nhello\r\n0\r\n\r\n", errLineTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
				readReq(t, br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+tc.body)
			})
			tr := s.transport()
			res, err := get(t, tr, s.url("/"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
			if err == nil {
				t.Fatal("body read without error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if n := idleCount(tr); n != 0 {
				t.Fatalf("%d idle connections after a broken body, want 0", n)
			}
		})
	}
}

func TestResponseHeaderLimit(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\nContent-Length: 0\r\n\r\n"
	s := newServer(t, respond(big))
	tr := s.transport()
	tr.MaxResponseHeaderBytes = 32 << 10
	if _, err := get(t, tr, s.url("/")); !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("error %v, want %v", err, errHeaderTooLarge)
	}
	tr.MaxResponseHeaderBytes = 128 << 10
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatalf("a head under the limit: %v", err)
	}
	res.Body.Close()
	if len(res.Header.Get("X-Big")) != 64<<10 {
		t.Fatal("long header value not kept whole")
	}
}

func TestResponseFraming(t *testing.T) {
	for _, tc := range []struct {
		name, method, raw string
		body              string
		contentLength     int64
		te                []string
		close, reused     bool
	}{
		{"content length", "GET", "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", "hello", 5, nil, false, true},
		{"duplicate equal lengths", "GET", "HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 5\n\nhello", "hello", 5, nil, false, true},
		{"chunked", "GET", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5;ext=1\nhello\n0\n\n", "hello", -1, []string{"chunked"}, false, true},
		{"chunked wins over length", "GET", "HTTP/1.1 200 OK\nTransfer-Encoding: Chunked\nContent-Length: 99\n\n5\nhello\n0\n\n", "hello", -1, []string{"chunked"}, false, true},
		{"head", "HEAD", "HTTP/1.1 200 OK\nContent-Length: 5\n\n", "", 5, nil, false, true},
		{"no content", "GET", "HTTP/1.1 204 No Content\n\n", "", 0, nil, false, true},
		{"not modified", "GET", "HTTP/1.1 304 Not Modified\nContent-Length: 5\n\n", "", 0, nil, false, true},
		{"connection close", "GET", "HTTP/1.1 200 OK\nConnection: close\nContent-Length: 2\n\nok", "ok", 2, nil, true, false},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\nContent-Length: 2\n\nok", "ok", 2, nil, true, false},
		{"http/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\nConnection: keep-alive\nContent-Length: 2\n\nok", "ok", 2, nil, false, true},
		{"103 skipped", "GET", "HTTP/1.1 103 Early Hints\nLink: </a.css>\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok", "ok", 2, nil, false, true},
		{"no reason", "GET", "HTTP/1.1 200\nContent-Length: 2\n\nok", "ok", 2, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := crlfs(tc.raw)
			s := newServer(t, respond(raw))
			tr := s.transport()
			for i := range 2 {
				req, _ := http.NewRequest(tc.method, s.url("/"), nil)
				res, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, res); got != tc.body {
					t.Fatalf("body %q, want %q", got, tc.body)
				}
				if res.ContentLength != tc.contentLength || res.Close != tc.close ||
					strings.Join(res.TransferEncoding, ",") != strings.Join(tc.te, ",") {
					t.Fatalf("ContentLength %d Close %v TransferEncoding %q, want %d %v %q",
						res.ContentLength, res.Close, res.TransferEncoding, tc.contentLength, tc.close, tc.te)
				}
				if tc.te != nil && (res.Header["Content-Length"] != nil || res.Header["Transfer-Encoding"] != nil) {
					t.Fatalf("framing headers left in %v", res.Header)
				}
				if i == 0 && res.StatusCode == 200 && res.ProtoMajor != 1 {
					t.Fatalf("ProtoMajor %d", res.ProtoMajor)
				}
			}
			want := int32(2)
			if tc.reused {
				want = 1
			}
			if got := s.accepts.Load(); got != want {
				t.Fatalf("%d connections for two requests, want %d", got, want)
			}
		})
	}
}

func TestCloseDelimitedBody(t *testing.T) {
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nall of it")
	})
	tr := s.transport()
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, res); got != "all of it" || res.ContentLength != -1 || !res.Close {
		t.Fatalf("body %q ContentLength %d Close %v", got, res.ContentLength, res.Close)
	}
	if idleCount(tr) != 0 {
		t.Fatal("a close-delimited connection went to the pool")
	}
}

func TestShortContentLengthBody(t *testing.T) {
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
	})
	tr := s.transport()
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
	}
	if idleCount(tr) != 0 {
		t.Fatal("a truncated connection went to the pool")
	}
}

// TestChunkedReadPerChunk: each Read returns what one chunk holds as soon
// as it is there, without waiting to fill the caller's buffer.
func TestChunkedReadPerChunk(t *testing.T) {
	next := make(chan struct{})
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n")
		for _, ch := range []string{"one", "two", strings.Repeat("z", 20000)} {
			<-next
			io.WriteString(c, strconv.FormatInt(int64(len(ch)), 16)+"\r\n"+ch+"\r\n")
		}
		<-next
		io.WriteString(c, "0\r\nX-Sum: 42\r\nX-Extra: 1\r\n\r\n")
	})
	tr := s.transport()
	res, err := get(t, tr, s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Trailer["X-Sum"]; !ok || len(res.Trailer) != 1 {
		t.Fatalf("Trailer %v, want the announced X-Sum key", res.Trailer)
	}
	buf := make([]byte, 64<<10)
	for _, want := range []string{"one", "two"} {
		next <- struct{}{}
		n, err := res.Body.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	next <- struct{}{}
	got := 0
	for got < 20000 {
		n, err := res.Body.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if got != 20000 {
		t.Fatalf("read %d bytes of a 20000-byte chunk", got)
	}
	close(next)
	if n, err := res.Body.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read %d, %v at the end", n, err)
	}
	if res.Trailer.Get("X-Sum") != "42" || res.Trailer.Get("X-Extra") != "1" {
		t.Fatalf("trailers %v", res.Trailer)
	}
	res.Body.Close()
	if idleCount(tr) != 1 {
		t.Fatal("connection not pooled after a clean chunked body")
	}
}

func TestUpgradeKeepsBufferedBytes(t *testing.T) {
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly")
		b := make([]byte, 4)
		if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping" {
			t.Errorf("server read %q, %v", b, err)
		}
		io.WriteString(c, "pong")
	})
	req, _ := http.NewRequest(http.MethodGet, s.url("/ws"), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	res, err := s.transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rw, ok := res.Body.(io.ReadWriteCloser)
	if !ok || res.StatusCode != 101 {
		t.Fatalf("status %d, body %T", res.StatusCode, res.Body)
	}
	defer rw.Close()
	b := make([]byte, 5)
	if _, err := io.ReadFull(rw, b); err != nil || string(b) != "early" {
		t.Fatalf("read %q, %v", b, err)
	}
	rw.Write([]byte("ping"))
	b = make([]byte, 4)
	if _, err := io.ReadFull(rw, b); err != nil || string(b) != "pong" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// TestWaitHoldsNoBuffer: a body waiting for a quiet upstream holds no read
// buffer, and wakes when data comes.
func TestWaitHoldsNoBuffer(t *testing.T) {
	send := make(chan struct{})
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		<-send
		io.WriteString(c, "4\r\ndata\r\n0\r\n\r\n")
	})
	res, err := get(t, s.transport(), s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	b := res.Body.(*body)
	if b.ex.c.buf != nil {
		t.Fatal("read buffer held after the head was consumed")
	}
	woke := make(chan error, 1)
	go func() { woke <- b.Wait() }()
	select {
	case err := <-woke:
		t.Fatalf("Wait returned %v before any data", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(send)
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake on data")
	}
	if got := readAll(t, res); got != "data" {
		t.Fatalf("body %q", got)
	}
}

// TestQuietStreamHoldsNoBuffer: after a chunk that came with the head was
// read, with its CRLF, nothing is buffered and no buffer is held.
func TestQuietStreamHoldsNoBuffer(t *testing.T) {
	done := make(chan struct{})
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n:\n\n\r\n")
		<-done
	})
	defer close(done)
	res, err := get(t, s.transport(), s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := res.Body.(*body)
	buf := make([]byte, 64)
	for got := 0; got < 3; {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if b.ex.c.buf != nil {
		t.Fatalf("a quiet stream holds a %d-byte read buffer", len(b.ex.c.buf))
	}
}

// The parts of a response a held stream keeps for its life do not point
// into the head, so the head can go once the header is written: a
// status net/http names and one it does not.
func TestResponseKeepsNoHeadString(t *testing.T) {
	for _, status := range []string{"200 OK", "299 Fine Anyway", "404 Not Here"} {
		head := "HTTP/1.1 " + status + "\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
		res, err := parseHead(head)
		if err != nil {
			t.Fatal(err)
		}
		start := uintptr(unsafe.Pointer(unsafe.StringData(head)))
		for name, s := range map[string]string{"Proto": res.Proto, "Status": res.Status} {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); p >= start && p < start+uintptr(len(head)) {
				t.Errorf("res.%s %q points into the head", name, s)
			}
		}
		if res.Proto != "HTTP/1.1" || res.Status != status || res.StatusCode != int(status[0]-'0')*100+int(status[1]-'0')*10+int(status[2]-'0') {
			t.Errorf("parsed %q %q %d", res.Proto, res.Status, res.StatusCode)
		}
	}
}

// TestParseHeadFieldsMatchTextproto checks the shared backing array of
// header values against net/textproto's reader: repeated fields, fields
// past the array's bound, and that appending to one field's values does
// not change another's.
func TestParseHeadFieldsMatchTextproto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		var head strings.Builder
		head.WriteString("HTTP/1.1 200 OK\r\n")
		for range rng.IntN(150) {
			// Few names, so many repeat, some far apart.
			fmt.Fprintf(&head, "X-F%d: v%d\r\n", rng.IntN(max(1, i%90)), rng.IntN(1000))
		}
		head.WriteString("\r\n")
		res, err := parseHead(head.String())
		if err != nil {
			t.Fatal(err)
		}
		tr := textproto.NewReader(bufio.NewReader(strings.NewReader(head.String())))
		tr.ReadLine()
		want, err := tr.ReadMIMEHeader()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(map[string][]string(res.Header), map[string][]string(want)) {
			t.Fatalf("case %d: header\n%v\nwant\n%v", i, res.Header, want)
		}
		for k := range res.Header {
			res.Header[k] = append(res.Header[k], "appended")
		}
		for k, vv := range res.Header {
			if got := vv[:len(vv)-1]; !reflect.DeepEqual(got, want[k]) {
				t.Fatalf("case %d: appending to the fields changed %s to %v, want %v", i, k, got, want[k])
			}
		}
	}
}

// TestReadOrParkHoldsNoBufferWhenEmpty drives fillWait's read directly on
// a loopback socket: on an empty socket it asks to park and holds no
// buffer; with data it keeps the bytes in a pooled buffer; at EOF it
// reports io.EOF and holds nothing.
func TestReadOrParkHoldsNoBufferWhenEmpty(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(nc)
	if c.raw == nil {
		t.Fatal("a TCP connection has no raw conn")
	}
	step := func() (done bool) {
		if err := c.raw.Control(func(fd uintptr) { done = c.rawReadOrPark(fd) }); err != nil {
			t.Fatal(err)
		}
		return done
	}
	if step() || c.buf != nil || c.rawErr != nil {
		t.Fatalf("empty socket: done, buffer %d bytes, error %v; want park, no buffer", len(c.buf), c.rawErr)
	}
	io.WriteString(peer, "HTTP/1.1 200 OK\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for !step() {
		if time.Now().After(deadline) {
			t.Fatal("data never read")
		}
		time.Sleep(time.Millisecond)
	}
	if string(c.buf[c.r:c.w]) != "HTTP/1.1 200 OK\r\n" || !c.gotBytes {
		t.Fatalf("read %q", c.buf[c.r:c.w])
	}
	c.r = c.w
	c.release()
	peer.Close()
	for !step() {
		if time.Now().After(deadline) {
			t.Fatal("EOF never seen")
		}
		time.Sleep(time.Millisecond)
	}
	if c.rawErr != io.EOF || c.buf != nil {
		t.Fatalf("at EOF: error %v, buffer %d bytes", c.rawErr, len(c.buf))
	}
}

// A status line net/http names keeps a static string: no copy a response.
func TestKnownStatusLineAllocatesNothing(t *testing.T) {
	var res http.Response
	if n := testing.AllocsPerRun(100, func() {
		if err := parseStatusLine(&res, "HTTP/1.1 200 OK"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations parsing a 200 OK status line", n)
	}
}
