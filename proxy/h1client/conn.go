package h1client

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// bufSize is the pooled read buffer. It holds a typical response head and
// each chunk's header with the start of its data; larger chunk data is
// read straight into the caller's buffer, and a longer head grows a
// buffer of its own. Many streams open at once each hold one until their
// first body bytes are passed on, and the pool keeps them all until the
// next collections, so its size is what a burst of new streams costs.
const bufSize = 1 << 10

// maxLineBytes bounds one chunk-size or trailer line, as net/http does.
const maxLineBytes = 4 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

var (
	errStale          = errors.New("h1client: idle connection closed or sent unasked bytes")
	errHeaderTooLarge = errors.New("h1client: response header too large")
	errLineTooLong    = errors.New("h1client: chunk line too long")
)

// conn is one upstream connection. Its read buffer comes from bufPool and
// goes back whenever it is empty, so an idle pooled connection or a quiet
// stream holds no buffer.
type conn struct {
	nc  net.Conn
	raw syscall.RawConn // nil when nc is not a socket

	bp   *[]byte // pooled buffer, or nil
	buf  []byte  // *bp, or a larger one grown for a long head; nil while empty
	r, w int     // buffered bytes are buf[r:w]

	reused   bool // taken from the idle pool for this exchange
	gotBytes bool // a byte of the response arrived in this exchange
	idleAt   time.Time

	// The functions raw runs, made once: a closure made for each call
	// would be allocated for each exchange. Their results go to rawN and
	// rawErr.
	closeNC    func() // nc.Close, for the exchange's cancel hook
	readOrPark func(fd uintptr) bool
	peekOrPark func(fd uintptr) bool
	peekIdle   func(fd uintptr)
	sendOrPark func(fd uintptr) bool
	readSome   func(fd uintptr) bool
	rawP       []byte // readSome's destination, sendOrPark's source
	rawN       int
	rawErr     error
	woken      bool // peekOrPark found the socket empty and parked
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc}
	c.closeNC = func() { nc.Close() }
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.readOrPark = c.rawReadOrPark
			c.peekOrPark = c.rawPeekOrPark
			c.peekIdle = c.rawPeekIdle
			c.sendOrPark = c.rawSendOrPark
			c.readSome = c.rawReadSome
		}
	}
	return c
}

func (c *conn) buffered() int { return c.w - c.r }

// release gives the buffer back once everything in it was consumed.
func (c *conn) release() {
	if c.r < c.w || c.buf == nil {
		return
	}
	if c.bp != nil && len(c.buf) == bufSize {
		bufPool.Put(c.bp)
	}
	c.bp, c.buf, c.r, c.w = nil, nil, 0, 0
}

// fill reads once from the network into the buffer, taking one from the
// pool if needed. limit bounds how large the buffer may grow to hold the
// unconsumed bytes plus the read.
func (c *conn) fill(limit int) error {
	if c.buf == nil {
		c.bp = bufPool.Get().(*[]byte)
		c.buf, c.r, c.w = *c.bp, 0, 0
	}
	if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else {
			if len(c.buf) >= limit {
				return errHeaderTooLarge
			}
			nb := make([]byte, min(2*len(c.buf), limit))
			copy(nb, c.buf[c.r:c.w])
			if c.bp != nil {
				bufPool.Put(c.bp)
				c.bp = nil
			}
			c.buf = nb
		}
	}
	n, err := c.nc.Read(c.buf[c.w:])
	if n > 0 {
		c.gotBytes = true
		c.w += n
		return nil
	}
	c.release()
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// fillWait is fill for a read that may wait long, such as for a response
// head: it holds no buffer while the socket is empty, because streams
// opening in a burst would otherwise hold one each while their upstreams
// think, and the pool keep them all afterwards. It reads at once with a
// pooled buffer; if the socket is empty, the buffer goes back and the
// goroutine parks until the poller reports the socket readable. That is
// one system call when the data is already there (a peek first would be
// two), and two when it is not, as a blocking read.
func (c *conn) fillWait(limit int) error {
	if c.raw == nil || c.buf != nil {
		return c.fill(limit)
	}
	c.rawErr = nil
	if err := c.raw.Read(c.readOrPark); err != nil {
		// Closed (a cancelled exchange) or past a deadline while parked.
		c.release()
		return err
	}
	if c.rawErr != nil {
		return c.rawErr
	}
	return nil
}

// rawReadOrPark is fillWait's read: true once it read data, EOF or an
// error; false, with the buffer given back, to wait for the socket.
func (c *conn) rawReadOrPark(fd uintptr) bool {
	if c.buf == nil {
		c.bp = bufPool.Get().(*[]byte)
		c.buf, c.r, c.w = *c.bp, 0, 0
	}
	n, err := ignoringEINTR(fd, c.buf)
	switch {
	case n > 0:
		c.gotBytes = true
		c.w = n
		return true
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		// The poller is edge-triggered: parking is safe only after a
		// read found nothing, as here.
		c.release()
		return false
	case err == nil:
		c.rawErr = io.EOF
	default:
		c.rawErr = c.opError("read", err)
	}
	c.release()
	return true
}

// opError wraps a failed system call on the socket as net.Conn's own
// Read and Write would.
func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

func ignoringEINTR(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

// sendsHead reports whether sendHead writes req: a request without a body
// (the head is all of it) on a socket.
func (c *conn) sendsHead(req *http.Request) bool {
	return c.raw != nil && !hasBody(req)
}

// sendHead writes the head of a request without a body and waits, holding
// no buffer, until the socket has something to read: the response, EOF or
// an error, for the read that follows to take. Written through the
// socket's RawConn, the head goes out after the poller's readiness was
// reset, so the response wakes the wait with no read first that would
// find the socket empty: fillWait after a plain write costs a failed read
// for nearly every response. On a reused connection it peeks first, as
// stale does, and returns errStale, having written nothing, when the
// upstream closed the connection or sent bytes nobody asked for; a fresh
// one needs no peek, since anything its upstream sent unasked is read as
// the response, as fillWait would. What the socket cannot take at once is
// written blocking; an error of the wait is left for the read to report.
func (c *conn) sendHead(head []byte) error {
	c.rawP, c.rawN, c.rawErr = head, 0, nil
	err := c.raw.Read(c.sendOrPark)
	sent := c.rawN
	c.rawP = nil
	switch {
	case c.rawErr != nil:
		return c.rawErr
	case sent == len(head):
		return nil
	case err != nil:
		return err
	}
	_, err = c.nc.Write(head[sent:])
	return err
}

// rawSendOrPark is sendHead's check and write: false once the head is
// written, to wait; true on a stale connection, an error, a full socket,
// or when the wait is over.
func (c *conn) rawSendOrPark(fd uintptr) bool {
	if c.rawN == len(c.rawP) {
		return true
	}
	if c.rawN == 0 && c.reused && !idleSocketEmpty(fd) {
		c.rawErr = errStale
		return true
	}
	for c.rawN < len(c.rawP) {
		n, err := syscall.Write(int(fd), c.rawP[c.rawN:])
		if n > 0 {
			c.rawN += n
		}
		switch {
		case err == nil, err == syscall.EINTR:
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			return true
		default:
			c.rawErr = c.opError("write", err)
			return true
		}
	}
	// The Read that runs this reset the poller's readiness before the
	// write, so whatever the upstream sends from now on wakes the wait.
	return false
}

// readLine returns the next line without its line ending, reading more as
// needed. The returned slice is valid until the next call on c; the
// caller releases the buffer once it is done with the line.
func (c *conn) readLine(limit int) ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.r:c.w], '\n'); i >= 0 {
			line := c.buf[c.r : c.r+i]
			c.r += i + 1
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		}
		if c.buffered() >= limit {
			return nil, errLineTooLong
		}
		if err := c.fill(limit + 1); err != nil {
			if errors.Is(err, errHeaderTooLarge) {
				err = errLineTooLong
			}
			return nil, err
		}
	}
}

// readDirect reads into p, first from the buffer, then from the network
// when the buffer is empty. It never waits to fill p: after buffered
// bytes it only takes what the socket already holds, so a large chunk
// whose head came with the buffer still arrives in one read.
func (c *conn) readDirect(p []byte) (int, error) {
	if c.buffered() > 0 {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		c.release()
		if n < len(p) && c.raw != nil {
			n += c.readNow(p[n:])
		}
		return n, nil
	}
	n, err := c.nc.Read(p)
	if n > 0 {
		c.gotBytes = true
	}
	return n, err
}

// readNow reads what the socket holds without waiting; errors and EOF
// are left for the next blocking read to report.
func (c *conn) readNow(p []byte) int {
	c.rawP, c.rawN = p, 0
	c.raw.Read(c.readSome)
	c.rawP = nil
	return c.rawN
}

func (c *conn) rawReadSome(fd uintptr) bool {
	if n, err := ignoringEINTR(fd, c.rawP); err == nil {
		c.rawN = n
	}
	return true
}

// waitReadable blocks until the socket has data, EOF or an error, without
// holding a buffer. Closing the connection wakes it.
func (c *conn) waitReadable() error {
	if c.buffered() > 0 || c.raw == nil {
		return nil
	}
	c.woken = false
	return c.raw.Read(c.peekOrPark)
}

// rawPeekOrPark is waitReadable's check: true once the socket holds data,
// EOF or an error (the next Read reports which), false to park.
func (c *conn) rawPeekOrPark(fd uintptr) bool {
	if c.woken {
		// The poller saw the socket become readable since the peek
		// found it empty. A rare spurious wake only means the Read that
		// follows blocks with its buffer, which is still correct.
		return true
	}
	if err := peek(fd); err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR {
		// The poller is edge-triggered: parking is safe only after a
		// check found nothing, as here.
		c.woken = true
		return false
	}
	return true
}

// peek looks for a byte to read without taking it or waiting, and
// returns the error: nil with data or at EOF, EAGAIN (EWOULDBLOCK) when
// there is nothing yet.
func peek(fd uintptr) error {
	var one [1]byte
	_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err
}

// stale reports whether an idle connection is unusable: the upstream
// closed it (EOF), sent bytes nobody asked for, or it failed.
func (c *conn) stale() bool {
	if c.buffered() > 0 {
		return true
	}
	if c.raw == nil {
		return false
	}
	c.rawErr = nil
	err := c.raw.Control(c.peekIdle)
	return err != nil || c.rawErr != nil
}

// rawPeekIdle sets rawErr unless the socket has nothing to read: only
// "nothing yet" means an idle connection is still good.
func (c *conn) rawPeekIdle(fd uintptr) {
	if !idleSocketEmpty(fd) {
		c.rawErr = errStale
	}
}

// idleSocketEmpty reports whether an idle connection's socket has nothing
// to read: no EOF, error or bytes nobody asked for.
func idleSocketEmpty(fd uintptr) bool {
	err := peek(fd)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}

func (c *conn) close() {
	c.nc.Close()
	c.r = c.w
	c.release()
}
