package h2

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// combineConn is the TCP connection under a client's tls.Conn. While a
// write of clientConn is in progress (corked), the TLS records it
// produces are collected and go out with one write system call when the
// write ends (uncork), instead of one system call per record.
//
// Why: x/net/http2 hands each full DATA frame to crypto/tls as one
// 16,393-byte write (16 KiB of payload and the 9-byte frame header),
// one byte over what a TLS record holds, so every frame became a 16 KiB
// record and a 9-byte record, each with its own write(2); and during
// crypto/tls's dynamic record sizing (the first 128 KiB of a connection)
// one write becomes many small records. Nothing is delayed: uncork runs
// before clientConn.Write returns, so every byte a caller wrote is on the
// socket when its Write returns, as without the combiner.
//
// While HTTP/2's serve loop writes in a try (BeginTry), the records of a
// corked write are held after uncork instead of written, up to a
// combineSize buffer, so that the DATA frames the loop writes in one turn
// (the frames of one handler write, and of writes handed over before its
// flush) go out with one system call; the loop's flush writes them
// (Release). x/net writes each 16 KiB frame on its own.
//
// The buffer comes from a pool only while a write is in progress or held:
// a quiet connection holds none. Deadlines pass through to the TCP connection
// and apply to the combined write. A failed combined write leaves part of
// a record on the wire, so the error sticks, as crypto/tls's own write
// errors do.
type combineConn struct {
	net.Conn
	// rc is the socket under Conn, for writes that must not block (see
	// BeginTry); nil when Conn does not reach one.
	rc syscall.RawConn

	mu     sync.Mutex
	corked bool
	want   int     // bytes of plaintext the corked write carries
	buf    *[]byte // records collected while corked, or held after (Held); else nil
	trying bool    // between BeginTry and EndTry
	// pend holds, from pendOff on, bytes a try took that the socket did
	// not; nil when there are none. They go out before anything else.
	pend    *[]byte
	pendOff int
	err     error

	// writeNow's function for rc.Write, made once (a closure made for
	// each call would be allocated for each write), and its argument and
	// results.
	rawWrite func(fd uintptr) bool
	rawP     []byte
	rawN     int
	rawErrno error
}

const (
	// combineMin is the smallest clientConn write that is corked: a
	// shorter one always fits in one record (the smallest record crypto/tls
	// sends while sizing records dynamically carries over 1,100 bytes), so
	// collecting it would only copy it.
	combineMin = 1024
	// combineSmall holds the records of one HTTP/2 DATA frame (16,393
	// bytes) with room for the overhead of the dozen or so records
	// dynamic record sizing may cut it into (allowed for as a 16th).
	combineSmall = 18 << 10
	// combineSize holds four full TLS records (16 KiB of plaintext plus at
	// most 29 bytes of header, nonce, tag and type each): one 64 KiB
	// HTTP/1.1 body write. A write blocked on a slow client holds its
	// buffer, so the small one is used when it is enough.
	combineSize = 4 * (16<<10 + 64)
)

var combinePools = [2]sync.Pool{
	{New: func() any { b := make([]byte, 0, combineSmall); return &b }},
	{New: func() any { b := make([]byte, 0, combineSize); return &b }},
}

// getCombineBuf returns an empty buffer for about n bytes of records.
func getCombineBuf(n int) *[]byte {
	if n <= combineSmall {
		return combinePools[0].Get().(*[]byte)
	}
	return combinePools[1].Get().(*[]byte)
}

// putCombineBuf gives b back to its pool; one that grew (it held what
// tries left) is dropped, so that a pool only holds its own size.
func putCombineBuf(b *[]byte) {
	*b = (*b)[:0]
	switch cap(*b) {
	case combineSmall:
		combinePools[0].Put(b)
	case combineSize:
		combinePools[1].Put(b)
	}
}

func newCombineConn(c net.Conn) *combineConn {
	cc := &combineConn{Conn: c, rc: rawConn(c)}
	cc.rawWrite = cc.rawWriteOnce
	return cc
}

// rawConn finds the socket under c, through wrappers that have a
// NetConn method (limitConn); nil if there is none.
func rawConn(c net.Conn) syscall.RawConn {
	for {
		switch v := c.(type) {
		case syscall.Conn:
			rc, err := v.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

func (c *combineConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked && c.buf == nil {
		return c.write(p, nil)
	}
	// Corked, or behind held records: collected after them.
	if c.buf != nil && len(*c.buf)+len(p) > cap(*c.buf) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) > combineSize {
		return c.write(p, nil)
	}
	if c.buf == nil {
		size := max(c.want+c.want/16, len(p))
		if c.trying {
			size = combineSize // room for the writes the try may hold
		}
		c.buf = getCombineBuf(size)
	}
	*c.buf = append(*c.buf, p...)
	if !c.corked && !c.holds() {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// holds reports whether collected records may stay held for a later
// write: only while the serve loop tries, whose flush releases them, and
// with nothing kept for Drain, which they must not overtake.
func (c *combineConn) holds() bool {
	return c.trying && c.pend == nil
}

// write writes p to the socket, after what earlier tries left, and
// makes an error stick. While trying it makes one write that does not
// block and keeps what the socket did not take. own, if not nil, is p's
// pooled buffer: write gives it back, or keeps it as it is instead of
// copying p.
func (c *combineConn) write(p []byte, own *[]byte) (n int, err error) {
	if c.pend != nil && !c.trying {
		err = c.drainLocked()
	}
	switch {
	case err != nil:
	case c.pend != nil: // trying, behind bytes an earlier try left
		c.keep(p, own)
		return len(p), nil
	case !c.trying:
		n, err = c.Conn.Write(p)
	default:
		if n, err = c.writeNow(p); err == nil && n < len(p) {
			c.keep(p[n:], own)
			return len(p), nil
		}
	}
	if err != nil {
		c.err = err
	}
	if own != nil {
		putCombineBuf(own)
	}
	return n, err
}

// writeNow makes one write(2) of p that does not wait for the socket:
// it returns how much the socket took, 0 if it was full.
func (c *combineConn) writeNow(p []byte) (int, error) {
	c.rawP = p
	err := c.rc.Write(c.rawWrite)
	n, errno := c.rawN, c.rawErrno
	c.rawP, c.rawErrno = nil, nil
	switch {
	case err != nil:
		return 0, err
	case errno == syscall.EAGAIN:
		return 0, nil
	case errno != nil:
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", errno)}
	}
	return n, nil
}

// rawWriteOnce is writeNow's write, run by rc.Write with c.mu held.
func (c *combineConn) rawWriteOnce(fd uintptr) bool {
	for {
		c.rawN, c.rawErrno = syscall.Write(int(fd), c.rawP)
		if c.rawErrno != syscall.EINTR {
			return true
		}
	}
}

// keep adds p to what a try left for Drain: a buffer the combineConn
// owns that nothing precedes is kept as it is, anything else copied.
func (c *combineConn) keep(p []byte, own *[]byte) {
	if c.pend == nil && own != nil {
		c.pend, c.pendOff = own, len(*own)-len(p)
		return
	}
	if c.pend == nil {
		c.pend, c.pendOff = getCombineBuf(len(p)), 0
	}
	*c.pend = append(*c.pend, p...)
	if own != nil {
		putCombineBuf(own)
	}
}

// drainLocked writes what tries left, blocking.
func (c *combineConn) drainLocked() error {
	b := c.pend
	if b == nil {
		return c.err
	}
	c.pend = nil
	_, err := c.Conn.Write((*b)[c.pendOff:])
	putCombineBuf(b)
	if err != nil {
		c.err = err
	}
	return err
}

// BeginTry makes the writes until EndTry return without waiting for the
// socket: what it does not take at once is kept, in order, for Drain.
// HTTP/2's serve loop writes this way itself instead of handing each
// write to its writer goroutine, which costs two goroutine wake-ups
// (often two thread wake-ups) per write; it hands over only a write the
// socket could not take. http2.TryWriter.
func (c *combineConn) BeginTry() {
	c.mu.Lock()
	c.trying = c.rc != nil
	c.mu.Unlock()
}

// EndTry ends the tries and reports whether bytes are waiting for Drain.
func (c *combineConn) EndTry() (pending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trying = false
	return c.pend != nil && c.err == nil
}

// Drain writes what the tries left, blocking under the connection's write
// deadline, as any write does.
func (c *combineConn) Drain() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drainLocked()
}

// cork starts collecting the records of a write of n bytes.
func (c *combineConn) cork(n int) {
	c.mu.Lock()
	c.corked, c.want = true, n
	c.mu.Unlock()
}

// uncork writes what was collected, gives the buffer back and stops
// collecting; while trying, it holds what was collected instead.
func (c *combineConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.holds() {
		return c.err
	}
	return c.flushLocked()
}

// Held reports whether records are held for the serve loop's flush.
// http2.TryWriter.
func (c *combineConn) Held() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf != nil && !c.corked
}

// Release writes the held records: in a try, without blocking, keeping
// what the socket does not take for Drain. http2.TryWriter.
func (c *combineConn) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		return c.err
	}
	return c.flushLocked()
}

func (c *combineConn) flushLocked() error {
	b := c.buf
	if b == nil {
		return c.err
	}
	c.buf = nil
	_, err := c.write(*b, b)
	return err
}
