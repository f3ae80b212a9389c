// Sluice's additions to the server (server.go): a handler's DATA frame
// written on the handler's own goroutine, and a client's WINDOW_UPDATE
// or DATA frame processed on the connection's reader, when the serve
// loop is idle, or a WINDOW_UPDATE queued for whoever runs the loop's
// code; see ../UPSTREAM.md, changes 23, 24 and 29.

package http2

import (
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// The serve loop's state (everything serverConn's serveG comment calls
// owned by the serve loop, and every stream's fields it owns) is guarded
// by serverConn.serveMu. The serve goroutine holds it whenever it is not
// waiting in its select, and for good once serve returns; a handler holds
// it only in writeDataDirect, and the connection's reader only in
// processFrameDirect, where each runs the serve loop's own code for one
// frame.
//
// A frame the serve goroutine has received from wantWriteFrameCh but not
// yet queued, waiting for serveMu, is in neither the channel nor the
// write scheduler, and no frame of its stream may pass it. So a handler
// writing directly takes nothing from the channel (whatever is there was
// sent after such a frame, perhaps on the same stream; the serve
// goroutine takes it next), and writes its own frame only when no frame
// of its stream is on its way: those are counted per stream
// (stream.handedOver) from the send until the serve loop's code takes
// them (takeFromHandler).

// writeDataDirect queues wr, a DATA frame of a handler that waits for it
// to be written (writeDataFromHandler), and writes it and whatever else
// the write scheduler holds, all on the calling handler's goroutine, if
// the serve loop is idle. It reports false, having done nothing, when
// the serve loop is busy (or gone), or when an earlier frame of wr's
// stream is still on its way to it; the caller then hands wr over as
// x/net does.
//
// x/net hands every frame to the serve goroutine, which writes it and
// wakes the handler: two goroutine switches per frame, and on an idle
// process often the wake of a second OS thread (a futex call and a
// cross-CPU interrupt), on the path of every chunk a stream forwards.
// Here a chunk that finds the connection idle goes from the upstream's
// read to the client's socket without leaving the handler's goroutine,
// as it would in an event loop. Only frames a handler waits for take
// this path: the first HEADERS and the last DATA frame still go to the
// serve loop, whose yield before flushing (change 11) lets the answers
// of concurrent small requests share one write.
//
// The write itself is as on the serve loop: with a TryWriter nothing
// blocks and what the socket does not take goes to the writer goroutine
// (change 16); without one, a large frame is written by that goroutine.
// Either way the handler's wait for the result is as before.
//
// A frame larger than the handler's buffer (handlerChunkWriteSize), as
// a fast stream writes, takes this path too (optimisation 53 in
// docs/benchmarks.md): on a machine where waking a thread is dear it
// cost 8–10 % less CPU per MB than the serve loop's handoff, and on one
// where it is cheap it made no difference. A frame whose stream still
// has one on its way (most often the HEADERS frame just flushed) goes to
// the serve loop, without touching serveMu, which the serve goroutine
// receiving that frame is about to take.
//
// So do a stream's first chunk and a chunk that comes more than
// directWindow after the stream's previous one: the TLS write on the
// handler's goroutine grows its stack (from 4 to 8 KiB or more), which
// stays grown until a garbage collection shrinks it, and an event
// stream that is quiet between rare events would then hold twice the
// stack for nothing (2,000 streams with an event every 300 ms: 15.4
// against 10.7 KiB of RSS each). A stream sending chunks that often is
// not idle, and is the one whose chunks should not wait.
func (sc *serverConn) writeDataDirect(wr FrameWriteRequest) bool {
	st := wr.stream
	now := time.Since(monoStart)
	recent := st.lastData != 0 && now-st.lastData < directWindow
	st.lastData = now
	if !recent || st.handedOver.Load() != 0 || !sc.tryDirect() {
		return false
	}
	defer sc.endDirect()
	sc.writeFrame(wr)
	sc.maybeStartShutdownTimer()
	return true
}

// directWindow is how soon after a stream's previous chunk a chunk may
// take writeDataDirect.
const directWindow = 100 * time.Millisecond

// monoStart is the origin of stream.lastData, read on the monotonic clock.
var monoStart = time.Now()

// tryDirect takes serveMu, if it is free and the serve loop is not
// ending, for the calling goroutine to run the serve loop's code: with
// runningDirect set, so that the code neither yields before a flush nor
// takes from the handlers' channel. It reports whether it did; if so,
// the caller defers endDirect.
func (sc *serverConn) tryDirect() bool {
	if !sc.serveMu.TryLock() {
		return false
	}
	if sc.serveEnding {
		sc.serveMu.Unlock()
		return false
	}
	if DebugGoroutines {
		sc.loopServeG = sc.serveG
		sc.serveG = newGoroutineLock()
	}
	sc.runningDirect = true
	return true
}

// endDirect ends what tryDirect began. A panic in between is a bug in the
// serve loop's code, which on the serve goroutine would end the
// connection (net/http's connection goroutine recovers it and closes the
// connection); on a handler's goroutine it would be recovered as the
// handler's own, leaving the connection open with its state half
// changed, so the connection is closed (its serve loop then ends) before
// the panic goes on. (processFrameDirect recovers its own first.)
//
// Before it lets go of serveMu it processes the WINDOW_UPDATEs the reader
// queued meanwhile (updateQueue), and again if more came as it let go
// and serveMu is free.
func (sc *serverConn) endDirect() {
	if e := recover(); e != nil {
		sc.runningDirect = false
		if DebugGoroutines {
			sc.serveG = sc.loopServeG
		}
		sc.conn.Close()
		sc.serveMu.Unlock()
		panic(e)
	}
	for {
		if sc.processQueuedUpdates() {
			// The reader, which would hand the serve loop errServeEnd,
			// may be waiting for the client: closing the connection
			// ends its read, and the loop with it.
			sc.serveEnding = true
			sc.conn.Close()
		}
		if testHookBeforeDirectUnlock != nil {
			testHookBeforeDirectUnlock(sc)
		}
		sc.runningDirect = false
		if DebugGoroutines {
			sc.serveG = sc.loopServeG
		}
		sc.serveMu.Unlock()
		if sc.updates.n.Load() == 0 || !sc.tryDirect() {
			return
		}
	}
}

// testHookBeforeQueuePush, when set (by tests only), is called by
// processFrameDirect when it found serveMu held, before it queues the
// frame.
var testHookBeforeQueuePush func(*serverConn)

// testHookBeforeDirectUnlock, when set (by tests only), is called by
// endDirect after it has processed the queued updates and before it lets
// go of serveMu.
var testHookBeforeDirectUnlock func(*serverConn)

// unlockServe is the serve goroutine's endDirect: it processes the queued
// updates and lets go of serveMu before the loop waits. It reports false,
// with serveMu held, when the serve loop must end.
func (sc *serverConn) unlockServe() bool {
	for {
		if sc.processQueuedUpdates() {
			return false
		}
		sc.serveMu.Unlock()
		if sc.updates.n.Load() == 0 || !sc.serveMu.TryLock() {
			return true
		}
	}
}

// maxQueuedUpdates bounds updateQueue. A client's updates come one or two
// per DATA frame it reads; beyond this many while serveMu is held, the
// reader hands the next one to the serve loop and waits for it, as x/net
// does, which is the client's back-pressure.
const maxQueuedUpdates = 32

// An updateQueue holds the WINDOW_UPDATE frames the connection's reader
// read while serveMu was held, most often by a handler writing a large
// DATA frame (writeDataDirect): whoever holds serveMu processes them
// before it lets go (endDirect, unlockServe), and before any frame the
// reader reads after them (processFrameDirect; the serve loop's
// readFrameCh case), so they are processed in the order they came.
//
// Without it the reader hands such an update to the serve goroutine,
// which then waits for serveMu, and the handler letting go wakes it: on
// a 2 GiB stream to x/net's client, about 5,000 wakes of a second OS
// thread (futex calls from sync.Mutex.Unlock), each followed by the
// serve goroutine waking the reader again.
//
// No update is left queued with serveMu free. A releaser that finds the
// queue empty lets go and looks again, and takes serveMu back if an
// update came; the reader, once it has queued one, tries serveMu again
// and processes the queue itself if it is free. Of the holder's second
// look and the reader's second try, whichever comes later sees the
// other's step: either the holder sees the update, or the reader finds
// serveMu let go. (The reader's first TryLock failing says only that the
// lock was held then; the holder may let go, and look, before the push.)
type updateQueue struct {
	n  atomic.Int32 // len(q), read without mu
	mu sync.Mutex
	q  [maxQueuedUpdates]queuedUpdate

	// f is the frame a queued update is processed as; owned by the
	// serve loop's code, reused so that processing allocates nothing.
	f WindowUpdateFrame
}

type queuedUpdate struct{ streamID, incr uint32 }

// push queues f, which the reader's next ReadFrame reuses, and reports
// whether there was room.
func (q *updateQueue) push(f *WindowUpdateFrame) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.n.Load()
	if n == maxQueuedUpdates {
		return false
	}
	q.q[n] = queuedUpdate{f.StreamID, f.Increment}
	q.n.Store(n + 1)
	return true
}

// take moves the queued updates to dst and returns them.
func (q *updateQueue) take(dst *[maxQueuedUpdates]queuedUpdate) []queuedUpdate {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := copy(dst[:], q.q[:q.n.Load()])
	q.n.Store(0)
	return dst[:n]
}

// processQueuedUpdates processes the queued WINDOW_UPDATEs as the serve
// loop processes frames from the reader, with serveMu held, and reports
// whether the serve loop must end: too many control frames queued, or a
// panic in the loop's code, which it recovers and logs as
// processFrameDirect does.
func (sc *serverConn) processQueuedUpdates() (end bool) {
	if sc.updates.n.Load() == 0 {
		return false
	}
	return sc.processQueuedUpdatesSlow()
}

func (sc *serverConn) processQueuedUpdatesSlow() (end bool) {
	defer func() {
		if e := recover(); e != nil {
			sc.logf("http2: panic processing a frame from %v: %v\n%s", sc.conn.RemoteAddr(), e, debug.Stack())
			end = true
		}
	}()
	var buf [maxQueuedUpdates]queuedUpdate
	f := &sc.updates.f
	for _, u := range sc.updates.take(&buf) {
		*f = WindowUpdateFrame{
			FrameHeader: FrameHeader{valid: true, Type: FrameWindowUpdate, Length: 4, StreamID: u.streamID},
			Increment:   u.incr,
		}
		if testHookProcessFrameDirect != nil {
			testHookProcessFrameDirect(f)
		}
		sc.lastFrameTime = time.Now()
		sc.takeWrittenFrame()
		// A WINDOW_UPDATE's errors are handled there (GOAWAY, RST_STREAM):
		// it always reports true.
		sc.processFrameFromReader(readFrameResult{f: f})
		if sc.tooManyControlFrames() {
			return true
		}
	}
	sc.maybeStartShutdownTimer()
	return false
}

// takeFromHandler queues a frame received from wantWriteFrameCh.
func (sc *serverConn) takeFromHandler(wr FrameWriteRequest) {
	if wr.stream != nil {
		wr.stream.handedOver.Add(-1)
	}
	if se, ok := wr.write.(StreamError); ok {
		sc.resetStream(se)
		return
	}
	sc.writeFrame(wr)
}

// maybeStartShutdownTimer starts the shutdown timer once a GOAWAY is
// sent. When sending GOAWAY with no error code (graceful shutdown), the
// timer does not start until all open streams have completed.
func (sc *serverConn) maybeStartShutdownTimer() {
	sentGoAway := sc.inGoAway && !sc.needToSendGoAway && !sc.writingFrame
	gracefulShutdownComplete := sc.goAwayCode == ErrCodeNo && sc.curOpenStreams() == 0
	if sentGoAway && sc.shutdownTimer == nil && (sc.goAwayCode != ErrCodeNo || gracefulShutdownComplete) {
		sc.shutDownIn(goAwayTimeout)
	}
}

// testHookProcessFrameDirect, when set (by tests only), is called with
// each frame processFrameDirect processes.
var testHookProcessFrameDirect func(Frame)

// errServeEnd is the read result with which the connection's reader ends
// the serve loop after processFrameDirect found that it must end.
var errServeEnd = errors.New("http2: connection ended by a frame its reader processed")

// processFrameDirect processes f, a frame the connection's reader has
// just read, on the reader's goroutine if f is a WINDOW_UPDATE or DATA
// frame and the serve loop is idle. A WINDOW_UPDATE that finds serveMu
// held is queued instead, for the holder to process (updateQueue), and
// counts as done. It reports done false, having done nothing, otherwise
// (or before the serve loop has processed the client's first SETTINGS
// frame, which stops its settings timer, or when the queue is full); the
// reader then hands f over as x/net does. It reports end true when the serve loop must
// end, as it would have on returning from f; the reader then hands it
// errServeEnd, whose processing ends it, and no handler writes directly
// in the meantime (serveEnding).
//
// x/net's reader hands every frame to the serve goroutine and waits for
// it to be processed before it reads the next: a goroutine switch there
// and one back per frame. A stream sending faster than its client reads
// waits for the client's WINDOW_UPDATEs, and each one that lets data go
// out costs those two switches, often with a second OS thread woken, on
// top of the write it starts; an upload pays them for every DATA frame
// of its body. The reader waits for the frame to be processed either
// way (a queued update is processed before any later frame), so
// processing it itself changes no order.
//
// Only those two types: with every frame processed here, the HEADERS
// frames of small requests among them, sluice answered fewer of them
// (lower in 6 of 6 paired rounds); see ../UPSTREAM.md, change 24.
//
// As in writeDataDirect, the loop's code runs with runningDirect set
// (tryDirect).
func (sc *serverConn) processFrameDirect(f Frame) (done, end bool) {
	wu, isUpdate := f.(*WindowUpdateFrame)
	if _, isData := f.(*DataFrame); !isUpdate && !isData {
		return false, false
	}
	if !sc.tryDirect() {
		if !isUpdate {
			return false, false
		}
		if testHookBeforeQueuePush != nil {
			testHookBeforeQueuePush(sc)
		}
		if !sc.updates.push(wu) {
			return false, false
		}
		// The holder may have let go, after its last look at the queue,
		// between the TryLock and the push. serveMu taken now means it
		// did: the update is processed here (endDirect). Held, its
		// holder has yet to look again (endDirect, unlockServe).
		if sc.tryDirect() {
			sc.endDirect()
		}
		return true, false
	}
	defer sc.endDirect()
	// A panic in the serve loop's code is a bug. On the serve goroutine
	// net/http's connection goroutine recovers it, logs it and closes the
	// connection; on the reader's it would end the process. So it is
	// recovered and logged here, and the serve loop ended.
	defer func() {
		if e := recover(); e != nil {
			sc.logf("http2: panic processing a frame from %v: %v\n%s", sc.conn.RemoteAddr(), e, debug.Stack())
			sc.serveEnding = true
			done, end = true, true
		}
	}()
	// The updates queued before f come first.
	if sc.processQueuedUpdates() {
		sc.serveEnding = true
		return true, true
	}
	if !sc.sawFirstSettings {
		return false, false
	}
	if testHookProcessFrameDirect != nil {
		testHookProcessFrameDirect(f)
	}
	sc.lastFrameTime = time.Now()
	sc.takeWrittenFrame()
	if !sc.processFrameFromReader(readFrameResult{f: f}) || sc.tooManyControlFrames() {
		sc.serveEnding = true
		return true, true
	}
	sc.maybeStartShutdownTimer()
	return true, false
}
