package h1client

import (
	"bytes"
	"errors"
	"io"
	"net"
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
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
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
	n := 0
	c.raw.Read(func(fd uintptr) bool {
		m, err := syscall.Read(int(fd), p)
		if err == nil && m > 0 {
			n = m
		}
		return true
	})
	return n
}

// waitReadable blocks until the socket has data, EOF or an error, without
// holding a buffer. Closing the connection wakes it.
func (c *conn) waitReadable() error {
	if c.buffered() > 0 || c.raw == nil {
		return nil
	}
	var one [1]byte
	woken := false
	err := c.raw.Read(func(fd uintptr) bool {
		if woken {
			// The poller saw the socket become readable since the peek
			// below found it empty: data, EOF or an error is there. A
			// rare spurious wake only means the Read that follows
			// blocks with its buffer, which is still correct.
			return true
		}
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR {
			// The poller is edge-triggered: parking is safe only after
			// a check found nothing, as here.
			woken = true
			return false
		}
		// Data, EOF or a socket error: the next Read reports which.
		return true
	})
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
	var one [1]byte
	bad := true
	err := c.raw.Control(func(fd uintptr) {
		// Only "nothing to read yet" means the connection is still good.
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		bad = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	})
	return err != nil || bad
}

func (c *conn) close() {
	c.nc.Close()
	c.r = c.w
	c.release()
}
