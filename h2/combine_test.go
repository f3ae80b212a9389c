package h2

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/internal/xnet/http2"
	sluicetls "github.com/sluiceproxy/sluice/tls"
)

// countConn counts the writes that reach the socket, and fails them
// once fail is set.
type countConn struct {
	net.Conn
	writes atomic.Int64
	bytes  atomic.Int64
	fail   atomic.Pointer[error]
}

// NetConn lets combineConn reach the socket for writes that must not
// block; those bypass the counts.
func (c *countConn) NetConn() net.Conn { return c.Conn }

func (c *countConn) Write(p []byte) (int, error) {
	if err := c.fail.Load(); err != nil {
		return 0, *err
	}
	c.writes.Add(1)
	n, err := c.Conn.Write(p)
	c.bytes.Add(int64(n))
	return n, err
}

// tlsPair returns a handshaken server clientConn over loopback TCP, the
// socket under it and the client's end.
func tlsPair(t *testing.T) (*clientConn, *countConn, *tls.Conn) {
	t.Helper()
	cfg, err := sluicetls.NewConfig(nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var client *tls.Conn
	var cerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client, cerr = tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sock := &countConn{Conn: raw}
	c := newClientConn(sock, cfg, 1<<16)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.handshake(); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Time{})
	wg.Wait()
	if cerr != nil {
		t.Fatal(cerr)
	}
	t.Cleanup(func() { client.Close() })
	return c, sock, client
}

func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

// readAll reads n bytes at the client, or as many as arrive before a
// deadline, so that a regression fails fast.
func readAll(t *testing.T, client *tls.Conn, n int) []byte {
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, n)
	if k, err := io.ReadFull(client, got); err != nil {
		t.Errorf("client read %d of %d bytes: %v", k, n, err)
		return got[:k]
	}
	return got
}

func TestClientConnWritesEachCallWithOneSyscall(t *testing.T) {
	c, sock, client := tlsPair(t)
	for _, tc := range []struct {
		name     string
		size     int
		maxCalls int64
	}{
		{"below combineMin", 100, 1},
		// A full DATA frame: 16 KiB and its 9-byte header, two records.
		{"HTTP/2 frame", 16<<10 + 9, 1},
		// Several records; crypto/tls still sizes them dynamically here.
		{"64 KiB", 64 << 10, 2},
		{"larger than the buffer", 200 << 10, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := payload(tc.size)
			before, beforeBytes := sock.writes.Load(), sock.bytes.Load()
			// The client reads meanwhile: a write larger than the socket
			// buffers must not block.
			read := make(chan []byte, 1)
			go func() { read <- readAll(t, client, len(p)) }()
			n, err := c.Write(p)
			if err != nil || n != len(p) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			// Everything is on the socket when Write returns.
			calls := sock.writes.Load() - before
			if calls < 1 || calls > tc.maxCalls {
				t.Errorf("%d write calls, want 1..%d", calls, tc.maxCalls)
			}
			if sent := sock.bytes.Load() - beforeBytes; sent < int64(len(p)) {
				t.Errorf("%d bytes on the socket after Write returned, want at least %d", sent, len(p))
			}
			if c.wc.buf != nil {
				t.Error("the combine buffer is held after Write returned")
			}
			if got := <-read; !bytes.Equal(got, p) {
				t.Error("client read other bytes than were written")
			}
		})
	}
}

func TestClientConnWriteDeadlinePassesThrough(t *testing.T) {
	c, _, _ := tlsPair(t)
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write(payload(16<<10 + 9)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write after the deadline: %v, want a deadline error", err)
	}
}

func TestClientConnWriteErrorSticks(t *testing.T) {
	c, sock, _ := tlsPair(t)
	boom := errors.New("boom")
	sock.fail.Store(&boom)
	if n, err := c.Write(payload(16<<10 + 9)); !errors.Is(err, boom) || n != 0 {
		t.Fatalf("Write = %d, %v; want 0, boom", n, err)
	}
	sock.fail.Store(nil)
	if _, err := c.Write(payload(16<<10 + 9)); err == nil {
		t.Fatal("a write after a failed one succeeded: part of a record is on the wire")
	}
	if c.wc.buf != nil {
		t.Error("the combine buffer is held after a failed write")
	}
}

func TestCombineConnCollectsOnlyWhileCorked(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sock := &countConn{Conn: a}
	wc := newCombineConn(sock)
	got := make(chan []byte, 1)
	go func() {
		buf, _ := io.ReadAll(b)
		got <- buf
	}()

	wc.cork(combineSize)
	wc.Write([]byte("one "))
	wc.Write([]byte("two "))
	if n := sock.writes.Load(); n != 0 {
		t.Fatalf("%d writes while corked, want 0", n)
	}
	if err := wc.uncork(); err != nil {
		t.Fatal(err)
	}
	if n := sock.writes.Load(); n != 1 {
		t.Fatalf("%d writes after uncork, want 1", n)
	}
	wc.Write([]byte("three"))
	if n := sock.writes.Load(); n != 2 {
		t.Fatalf("an uncorked write was held: %d writes, want 2", n)
	}
	// A corked write that would overflow the buffer sends what was
	// collected first, then collects on.
	wc.cork(combineSize)
	wc.Write(payload(combineSize - 10))
	wc.Write(payload(100))
	if n := sock.writes.Load(); n != 3 {
		t.Fatalf("%d writes after overflowing the buffer, want 3", n)
	}
	wc.uncork()

	// A write of one HTTP/2 frame takes the small buffer.
	wc.cork(16<<10 + 9)
	wc.Write([]byte("x"))
	if cap(*wc.buf) != combineSmall {
		t.Errorf("a frame-sized write took a %d-byte buffer, want %d", cap(*wc.buf), combineSmall)
	}
	wc.uncork()
	a.Close()
	if b := <-got; len(b) != len("one two three")+combineSize-10+100+1 || string(b[:13]) != "one two three" {
		t.Fatalf("peer got %d bytes starting %q", len(b), b[:min(len(b), 13)])
	}
}

// tcpPair returns both ends of a loopback TCP connection with small
// socket buffers, so that a writer fills them quickly.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	server, client = sv.(*net.TCPConn), cl.(*net.TCPConn)
	server.SetWriteBuffer(16 << 10)
	client.SetReadBuffer(16 << 10)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// While trying, writes return at once even when the client reads nothing:
// what the socket does not take is kept, and goes out first, in order,
// when Drain or the next write outside a try writes it. Records collected
// while corked and plain writes both count.
func TestCombineConnTryKeepsWhatTheSocketCannotTake(t *testing.T) {
	server, client := tcpPair(t)
	// A try that blocked would fail here rather than hang.
	server.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c := newCombineConn(&limitConn{Conn: server})
	if c.rc == nil {
		t.Fatal("no raw socket found under limitConn")
	}
	var want bytes.Buffer
	c.BeginTry()
	for i := 0; want.Len() < 4<<20; i++ {
		p := payload(100 + i*37%20000)
		p[0] = byte(i)
		if i%3 == 0 {
			c.cork(len(p))
			for q := p; len(q) > 0; q = q[min(len(q), 5000):] {
				if _, err := c.Write(q[:min(len(q), 5000)]); err != nil {
					t.Fatalf("corked write %d: %v", i, err)
				}
			}
			if err := c.uncork(); err != nil {
				t.Fatalf("uncork %d: %v", i, err)
			}
		} else if _, err := c.Write(p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		want.Write(p)
	}
	if !c.EndTry() {
		t.Fatal("4 MiB the client did not read: nothing pending")
	}
	tail := []byte("written outside a try")
	want.Write(tail)
	got := make(chan []byte, 1)
	go func() {
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, want.Len())
		n, _ := io.ReadFull(client, b)
		got <- b[:n]
	}()
	if err := c.Drain(); err != nil {
		t.Fatal(err)
	}
	if c.EndTry() {
		t.Error("still pending after Drain")
	}
	if _, err := c.Write(tail); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("client read %d bytes, want %d, or in another order", len(b), want.Len())
	}
}

// A write outside a try drains what a try left before its own bytes.
func TestCombineConnWriteDrainsFirst(t *testing.T) {
	server, client := tcpPair(t)
	c := newCombineConn(server)
	big := payload(2 << 20)
	c.BeginTry()
	c.Write(big)
	if !c.EndTry() {
		t.Fatal("nothing pending")
	}
	got := make(chan []byte, 1)
	go func() {
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, len(big)+3)
		n, _ := io.ReadFull(client, b)
		got <- b[:n]
	}()
	if _, err := c.Write([]byte("end")); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, append(big, "end"...)) {
		t.Fatal("the client did not read the kept bytes, then the write")
	}
}

// When the client is gone, Drain fails and the error sticks; a try then
// reports nothing pending.
func TestCombineConnDrainErrorSticks(t *testing.T) {
	server, client := tcpPair(t)
	c := newCombineConn(server)
	c.BeginTry()
	c.Write(payload(2 << 20))
	if !c.EndTry() {
		t.Fatal("nothing pending")
	}
	client.SetLinger(0)
	client.Close()
	server.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err := c.Drain()
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Drain to a closed client: %v, want a connection error", err)
	}
	c.BeginTry()
	if _, werr := c.Write([]byte("x")); werr != err {
		t.Errorf("write after a failed drain: %v, want %v", werr, err)
	}
	if c.EndTry() {
		t.Error("pending after a failed drain")
	}
}

// Through TLS: a handshaken clientConn's write returns at once while the
// client reads nothing, and after Drain the client decrypts every byte.
func TestClientConnTryThroughTLS(t *testing.T) {
	c, sock, client := tlsPair(t)
	// Buffers small enough that 3 MiB cannot fit, large enough that
	// the client's record-sized reads keep the window open.
	sock.Conn.(*net.TCPConn).SetWriteBuffer(128 << 10)
	client.NetConn().(*net.TCPConn).SetReadBuffer(128 << 10)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if c.wc.rc == nil {
		t.Fatal("no raw socket under the test's connection")
	}
	// What serveH2 hands x/net offers this writer (x/net finds it by
	// this method); without it every large write goes through x/net's
	// writer goroutine.
	var x net.Conn = h2Conn{c}
	tw, ok := x.(interface{ TryWriter() http2.TryWriter })
	if !ok || tw.TryWriter() != http2.TryWriter(c.wc) {
		t.Fatal("the connection x/net serves does not offer the combineConn as its TryWriter")
	}
	p := payload(3 << 20)
	c.wc.BeginTry()
	for q := p; len(q) > 0; q = q[min(len(q), 64<<10):] {
		if _, err := c.Write(q[:min(len(q), 64<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	if !c.wc.EndTry() {
		t.Fatal("nothing pending")
	}
	read := make(chan []byte, 1)
	go func() { read <- readAll(t, client, len(p)) }()
	if err := c.wc.Drain(); err != nil {
		t.Fatal(err)
	}
	if got := <-read; !bytes.Equal(got, p) {
		t.Fatalf("client read %d bytes, different from the %d written", len(got), len(p))
	}
}

// A write while trying that the socket takes whole allocates nothing:
// the function the raw socket runs is made once per connection.
func TestCombineConnTryWriteAllocatesNothing(t *testing.T) {
	server, client := tcpPair(t)
	go io.Copy(io.Discard, client)
	c := newCombineConn(server)
	p := payload(64)
	c.BeginTry()
	defer c.EndTry()
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations a write", n)
	}
}

// While trying, the records of corked writes are held, not written, up
// to a full buffer; Release writes them with one system call, and a write
// outside a try writes them before its own bytes.
func TestCombineConnTryHoldsCorkedWrites(t *testing.T) {
	server, client := tcpPair(t)
	server.SetWriteBuffer(1 << 20)
	client.SetReadBuffer(1 << 20)
	c := newCombineConn(server)
	var want bytes.Buffer
	corked := func(n int, b byte) {
		p := payload(n)
		p[0] = b
		c.cork(len(p))
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := c.uncork(); err != nil {
			t.Fatal(err)
		}
		want.Write(p)
	}
	c.BeginTry()
	corked(16<<10, 1)
	c.Write([]byte("small, behind the held records"))
	want.WriteString("small, behind the held records")
	corked(16<<10, 2)
	if !c.Held() || len(*c.buf) != want.Len() {
		t.Fatalf("held %v, %d bytes collected, want all %d held", c.Held(), len(*c.buf), want.Len())
	}
	// More than the buffer holds: what was held goes out to make room.
	corked(33<<10, 3)
	if len(*c.buf) != 33<<10 {
		t.Fatalf("%d bytes held after the buffer filled, want the last write's %d", len(*c.buf), 33<<10)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if c.Held() || c.EndTry() {
		t.Fatal("still held or pending after Release")
	}
	// Held after the try ends, then a write outside a try.
	c.BeginTry()
	corked(4<<10, 4)
	c.EndTry()
	if !c.Held() {
		t.Fatal("nothing held")
	}
	if _, err := c.Write([]byte("outside")); err != nil {
		t.Fatal(err)
	}
	want.WriteString("outside")
	if c.Held() {
		t.Fatal("a write outside a try left records held")
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the client read the writes in another order")
	}
}
