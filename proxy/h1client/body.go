package h1client

import (
	"errors"
	"io"
	"net/http"
)

type bodyKind int

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
	bodyClose
)

// Waiter is implemented by response bodies that can wait for the next
// data without holding a buffer: Wait returns once a Read would not block
// (data, EOF or an error is there). Closing the connection wakes it.
type Waiter interface {
	Wait() error
}

const (
	chunkHeader = iota // next is a chunk-size line
	chunkData          // remain bytes of chunk data left
	chunkCRLF          // the CRLF after a chunk's data
)

// body is a response body read from the connection in the caller's
// goroutine. At a clean end it hands the connection back to the pool.
type body struct {
	ex     *exchange
	kind   bodyKind
	remain int64 // length body: bytes left; chunked: bytes left in the chunk
	state  int
	err    error // sticky: io.EOF after a clean end
	closed bool
}

var errBodyClosed = errors.New("h1client: read on closed response body")

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyClosed
	}
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	switch b.kind {
	case bodyLength:
		n, err = b.readLength(p)
	case bodyChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.ex.c.readDirect(p)
	}
	if err != nil {
		b.fail(err)
	}
	return n, b.err
}

// fail records how the body ended and ends the exchange: only a clean EOF
// can give the connection back to the pool.
func (b *body) fail(err error) {
	if err == io.EOF {
		b.err = io.EOF
		b.ex.finish(b.kind != bodyClose)
		return
	}
	b.err = b.ex.readError(err)
	b.ex.finish(false)
}

func (b *body) readLength(p []byte) (int, error) {
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.ex.c.readDirect(p)
	b.remain -= int64(n)
	if b.remain == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readChunked returns data of one chunk at most, so every upstream chunk
// reaches the caller as soon as it is there; it reads the network at most
// once when nothing is buffered.
func (b *body) readChunked(p []byte) (int, error) {
	c := b.ex.c
	for {
		switch b.state {
		case chunkHeader:
			line, err := c.readLine(maxLineBytes)
			if err != nil {
				return 0, eofIsUnexpected(err)
			}
			size, err := parseChunkSize(line)
			c.release()
			if err != nil {
				return 0, err
			}
			if size == 0 {
				return 0, b.readTrailer()
			}
			b.remain, b.state = size, chunkData
		case chunkData:
			if int64(len(p)) > b.remain {
				p = p[:b.remain]
			}
			n, err := c.readDirect(p)
			b.remain -= int64(n)
			if b.remain == 0 {
				b.state = chunkCRLF
				if c.buffered() >= 2 {
					// Consume the CRLF now so a buffered last chunk
					// is seen without another read.
					if err := b.chunkEnd(); err != nil {
						return n, err
					}
				}
			}
			if n > 0 {
				return n, nil
			}
			return 0, eofIsUnexpected(err)
		case chunkCRLF:
			if err := b.chunkEnd(); err != nil {
				return 0, err
			}
		}
	}
}

func (b *body) chunkEnd() error {
	line, err := b.ex.c.readLine(maxLineBytes)
	if err != nil {
		return eofIsUnexpected(err)
	}
	b.ex.c.release()
	if len(line) != 0 {
		return protoErr("chunk data longer than its size")
	}
	b.state = chunkHeader
	return nil
}

// readTrailer reads the trailer block after the last chunk into
// res.Trailer.
func (b *body) readTrailer() error {
	res := b.ex.res
	total := 0
	for {
		line, err := b.ex.c.readLine(maxLineBytes)
		if err != nil {
			return eofIsUnexpected(err)
		}
		if len(line) == 0 {
			b.ex.c.release()
			return io.EOF
		}
		total += len(line)
		if total > b.ex.t.maxHeaderBytes() {
			return errHeaderTooLarge
		}
		name, value, err := parseHeaderLine(string(line))
		b.ex.c.release()
		if err != nil {
			return err
		}
		if res.Trailer == nil {
			res.Trailer = make(http.Header)
		}
		res.Trailer[name] = append(res.Trailer[name], value)
	}
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Wait blocks until Read would not block, holding no buffer meanwhile.
func (b *body) Wait() error {
	if b.closed || b.err != nil {
		return nil
	}
	return b.ex.c.waitReadable()
}

// Close ends the body. Before its end it closes the connection: the rest
// of the response would have to be read before the next exchange.
func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.err == nil {
		b.err = errBodyClosed
		b.ex.finish(false)
	}
	return nil
}

// upgradeBody is the connection after a 101 response: the bytes the
// upstream sent after its head, then the connection itself both ways.
type upgradeBody struct {
	ex  *exchange
	pre []byte
}

func (u *upgradeBody) Read(p []byte) (int, error) {
	if len(u.pre) > 0 {
		n := copy(p, u.pre)
		u.pre = u.pre[n:]
		return n, nil
	}
	return u.ex.c.nc.Read(p)
}

func (u *upgradeBody) Write(p []byte) (int, error) { return u.ex.c.nc.Write(p) }

func (u *upgradeBody) Close() error {
	u.ex.unhook()
	return u.ex.c.nc.Close()
}
