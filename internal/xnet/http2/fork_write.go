// Sluice's additions to the frame writers (write.go); see ../UPSTREAM.md,
// change 8.

package http2

import "net"

// headerFieldSlack is more than HPACK ever adds to a header field beyond
// the bytes of its name and value: one byte of representation and two
// string-length prefixes of at most five bytes each (RFC 7541, Sections
// 5.1, 5.2 and 6.2). Huffman coding is used only when it is shorter, and
// an indexed field is shorter still.
const headerFieldSlack = 16

// headerBlockSlack covers what a block carries besides its fields: up to
// two dynamic table size updates (the smallest size, then the latest;
// see startFrameWrite) and the :status field.
const headerBlockSlack = 2*6 + len(":status") + 3 + headerFieldSlack

// bound returns an upper bound of the bytes that writeFrame puts in the
// connection's buffer: the encoded header block and the headers of the
// HEADERS and CONTINUATION frames that carry it. It counts every key of
// h, even those writeFrame skips (trailers not listed, invalid fields),
// since an upper bound is all startFrameWrite needs.
func (w *writeResHeaders) bound() int {
	n := headerBlockSlack
	for k, vv := range w.h {
		for _, v := range vv {
			n += len(k) + len(v) + headerFieldSlack
		}
	}
	for _, v := range [...]string{w.contentType, w.contentLength, w.date} {
		if v != "" {
			n += len("content-length") + len(v) + headerFieldSlack
		}
	}
	// splitHeaderBlock cuts the block into frames of 16,384 bytes.
	return n + frameHeaderLen*(1+n/16384)
}

// flushesNothing reports whether wr is a flush of an empty buffer,
// which the serve loop can do itself: it makes no system call. After a
// DATA frame larger than the buffer (written through it, straight to the
// connection, by writeFrameAsync) the flush that follows is one of
// these, and a goroutine started for it is a goroutine for nothing.
func (sc *serverConn) flushesNothing(wr FrameWriteRequest) bool {
	_, flush := wr.write.(flushFrameWriter)
	return flush && (sc.bw.bw == nil || sc.bw.bw.Buffered() == 0) &&
		(sc.tw == nil || !sc.tw.Held())
}

// asyncWrite is one frame write handed to the connection's writer
// goroutine; wd is set for a DATA frame the serve loop already encoded.
type asyncWrite struct {
	wr FrameWriteRequest
	wd *writeData
}

// writeAsync has the connection's writer goroutine write wr, where x/net
// starts a goroutine for every such write. A new goroutine starts with a
// small stack, and the TLS write grows it (crypto/tls's handshake check
// alone has a large frame), so each write copied its stack once: 7 % of
// a fast stream's CPU. The writer keeps its stack from write to write.
// It is started on the first write and ends with the serve loop
// (stopAsyncWriter); as before, at most one write is in flight, and its
// result comes back on wroteFrameCh.
func (sc *serverConn) writeAsync(wr FrameWriteRequest, wd *writeData) {
	if sc.asyncWrites == nil {
		sc.asyncWrites = make(chan asyncWrite, 1)
		go sc.asyncWriter(sc.asyncWrites)
	}
	sc.asyncWrites <- asyncWrite{wr: wr, wd: wd}
}

func (sc *serverConn) asyncWriter(ch <-chan asyncWrite) {
	for w := range ch {
		sc.writeFrameAsync(w.wr, w.wd)
	}
}

// stopAsyncWriter ends the writer goroutine once it has finished the
// write in flight, if any (its result lands in wroteFrameCh's buffer).
func (sc *serverConn) stopAsyncWriter() {
	if sc.asyncWrites != nil {
		close(sc.asyncWrites)
	}
}

// TryWriter is a connection whose writes can be made without waiting
// for the socket (sluice's h2.combineConn). Between BeginTry and EndTry
// every write returns at once: what the socket does not take is kept, in
// order, and EndTry reports it; Drain writes it, blocking as a write
// does. Writes made outside a try first drain what tries left.
//
// A try may also hold what it was given, not yet written, so that the
// frames the serve loop writes in one turn share a system call: Held
// reports it, and Release (which the serve loop's Flush calls, in a try)
// writes it as a try would. Writes made outside a try write it first.
type TryWriter interface {
	BeginTry()
	EndTry() (pending bool)
	Drain() error
	Held() bool
	Release() error
}

// tryWriterOf returns c's TryWriter, if it offers one through a
// TryWriter method (which may return nil: then it has none).
func tryWriterOf(c net.Conn) TryWriter {
	if t, ok := c.(interface{ TryWriter() TryWriter }); ok {
		return t.TryWriter()
	}
	return nil
}

// drainWrite marks the writer goroutine's write of what a try left.
var drainWrite = new(writeData)

// writeTrying writes wr on the serve loop with a connection that can
// write without blocking, where x/net hands every write that may block
// to another goroutine: a handoff there and a result back, each a
// goroutine wake-up and often an OS thread's, for a write the socket
// usually takes at once. Only what the socket did not take (a client
// that reads slowly) goes to the writer goroutine, which writes it
// blocking while the serve loop goes on; as before, no other write
// starts until it is done. The frame is wholly encoded and sealed here,
// so nothing refers to a handler's data afterwards (go.dev/issue/58446).
func (sc *serverConn) writeTrying(wr FrameWriteRequest) {
	sc.tw.BeginTry()
	err := wr.write.writeFrame(sc)
	if sc.tw.EndTry() && err == nil {
		sc.writingFrameAsync = true
		sc.writeAsync(wr, drainWrite)
		return
	}
	sc.writingFrameAsync = false
	sc.wroteFrame(frameWriteResult{wr: wr, err: err})
}
