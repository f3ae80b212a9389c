package h2

import (
	"net"
	"sync"
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
// The buffer comes from a pool only while a write is in progress: a quiet
// connection holds none. Deadlines pass through to the TCP connection
// and apply to the combined write. A failed combined write leaves part of
// a record on the wire, so the error sticks, as crypto/tls's own write
// errors do.
type combineConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	want   int     // bytes of plaintext the corked write carries
	buf    *[]byte // nil unless corked with records collected
	err    error
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

func putCombineBuf(b *[]byte) {
	*b = (*b)[:0]
	if cap(*b) == combineSmall {
		combinePools[0].Put(b)
	} else {
		combinePools[1].Put(b)
	}
}

func newCombineConn(c net.Conn) *combineConn { return &combineConn{Conn: c} }

func (c *combineConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.write(p)
	}
	if c.buf != nil && len(*c.buf)+len(p) > cap(*c.buf) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) > combineSize {
		return c.write(p)
	}
	if c.buf == nil {
		c.buf = getCombineBuf(max(c.want+c.want/16, len(p)))
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// write writes p to the socket and makes an error stick.
func (c *combineConn) write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// cork starts collecting the records of a write of n bytes.
func (c *combineConn) cork(n int) {
	c.mu.Lock()
	c.corked, c.want = true, n
	c.mu.Unlock()
}

// uncork writes what was collected, gives the buffer back and stops
// collecting.
func (c *combineConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *combineConn) flushLocked() error {
	b := c.buf
	if b == nil {
		return c.err
	}
	c.buf = nil
	_, err := c.write(*b)
	putCombineBuf(b)
	return err
}
