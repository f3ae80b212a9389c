package http2

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// readData reads frames until a DATA frame and returns its payload. It
// notes in answered each stream whose final (non-1xx) HEADERS it has
// read, and fails the test on a DATA frame before that, or on a reset.
func (rc *rawClient) readData(answered map[uint32]bool) string {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading a DATA frame: %v", err)
		}
		switch f := f.(type) {
		case *SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *HeadersFrame:
			rc.fields = map[string]string{}
			rc.decode(f)
			if s := rc.fields[":status"]; len(s) == 3 && s[0] != '1' {
				answered[f.StreamID] = true
			}
		case *DataFrame:
			if !answered[f.StreamID] {
				rc.t.Fatalf("stream %d: DATA frame %q before the response's HEADERS", f.StreamID, f.Data())
			}
			return string(f.Data())
		case *RSTStreamFrame:
			rc.t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		}
	}
}

// On an idle connection, a handler's flushed chunk is written on the
// handler's own goroutine, without a trip through the serve loop (see
// ../UPSTREAM.md, 23). Each chunk is written once the client has read
// the one before, so the serve loop has nothing to do; a write made while
// it is busy still goes through it, which is why not every chunk is
// required to take the direct path.
func TestIdleConnectionDataIsWrittenByItsHandler(t *testing.T) {
	const chunks = 10
	cs := serveChunks(t, chunks, 0)
	for i := range chunks {
		cs.next(i)
	}
	if direct := cs.direct(); direct < chunks/2 {
		t.Errorf("%d of %d chunks written on the handler's goroutine, want at least %d", direct, chunks, chunks/2)
	}
}

// So is a chunk larger than the handler's buffer (handlerChunkWriteSize),
// as a fast stream's are (optimisation 53 in docs/benchmarks.md): 5 KiB
// each here, twelve of them to stay within the client's initial windows.
func TestIdleConnectionLargeDataIsWrittenByItsHandler(t *testing.T) {
	const chunks, size = 12, 5 << 10
	cs := serveChunks(t, chunks, size)
	for i := range chunks {
		cs.next(i)
	}
	if direct := cs.direct(); direct < chunks/3 {
		t.Errorf("%d of %d large chunks written on the handler's goroutine, want at least %d", direct, chunks, chunks/3)
	}
}

// chunkServer serves one stream whose handler flushes its head and then
// writes and flushes a chunk ("chunk 0", "chunk 1", …, padded to size
// bytes if size is not 0) each time the test says so, over a connection
// that records which goroutine made each write.
type chunkServer struct {
	t        *testing.T
	size     int
	rc       *rawClient
	tp       *tryPipe
	resume   chan struct{}
	handler  uint64
	answered map[uint32]bool
}

func serveChunks(t *testing.T, chunks, size int) *chunkServer {
	t.Helper()
	cs := &chunkServer{t: t, size: size, tp: &tryPipe{take: true}, resume: make(chan struct{}), answered: map[uint32]bool{}}
	started := make(chan uint64, 1)
	cs.rc = serveRawOn(t, func(c net.Conn) net.Conn { cs.tp.Conn = c; return cs.tp }, func(w http.ResponseWriter, r *http.Request) {
		started <- curGoroutineID()
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range chunks {
			<-cs.resume
			w.Write([]byte(cs.chunk(i))) // Write, not WriteString: a large one bypasses the 4 KiB buffer, as the proxy's do
			w.(http.Flusher).Flush()
		}
	})
	cs.rc.get()
	cs.handler = <-started
	return cs
}

// next has the handler write chunk i, which the client then reads.
func (cs *chunkServer) next(i int) {
	cs.t.Helper()
	cs.resume <- struct{}{}
	want := cs.chunk(i)
	got := cs.rc.readData(cs.answered)
	for len(got) < len(want) {
		// A chunk larger than a frame comes in several.
		got += cs.rc.readData(cs.answered)
	}
	if got != want {
		cs.t.Fatalf("got %d bytes (%.20q…), want %d (%.20q…)", len(got), got, len(want), want)
	}
}

// chunk is the text of chunk i.
func (cs *chunkServer) chunk(i int) string {
	c := fmt.Sprintf("chunk %d", i)
	if len(c) < cs.size {
		c += strings.Repeat(".", cs.size-len(c))
	}
	return c
}

// direct counts the writes made on the handler's goroutine.
func (cs *chunkServer) direct() int {
	cs.tp.mu.Lock()
	defer cs.tp.mu.Unlock()
	n := 0
	for _, w := range cs.tp.writers {
		if w == cs.handler {
			n++
		}
	}
	return n
}

// A chunk written directly never passes a frame of its stream that the
// serve loop has been handed but not yet queued: here the final HEADERS,
// which the handler does not wait for (change 3), after a 103 it does
// wait for. The DATA frame follows at once, while the serve goroutine
// that received the HEADERS may not have run yet.
func TestDirectDataFollowsItsHeaders(t *testing.T) {
	for i := range 50 {
		tp := &tryPipe{take: true}
		rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, func(w http.ResponseWriter, r *http.Request) {
			if i%2 == 0 {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
			}
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for j := range 3 {
				fmt.Fprintf(w, "%d", j)
				w.(http.Flusher).Flush()
			}
		})
		rc.get()
		answered := map[uint32]bool{}
		var got []string
		for range 3 {
			got = append(got, rc.readData(answered))
		}
		if !slices.Equal(got, []string{"0", "1", "2"}) {
			t.Fatalf("run %d: chunks %q", i, got)
		}
	}
}

// Many streams opening at once on one connection, as the bench's held
// streams do: each handler flushes its head and then a first event, and
// the client must see every stream's HEADERS before its DATA.
func TestDirectDataFollowsItsHeadersManyStreams(t *testing.T) {
	const streams, events = 100, 3
	tp := &tryPipe{take: true}
	rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	rc.fr.WriteWindowUpdate(0, 1<<20)
	for i := range streams {
		rc.getOn(uint32(2*i+1), nil)
	}
	answered := map[uint32]bool{}
	for range streams * events {
		rc.readData(answered)
	}
}

// A stream's first chunk, and a chunk after a quiet spell longer than
// directWindow, go through the serve loop: an event stream that is idle
// between rare events keeps its handler's stack small.
func TestQuietStreamChunkGoesThroughTheServeLoop(t *testing.T) {
	cs := serveChunks(t, 3, 0)
	for i := range 3 {
		if i == 2 {
			time.Sleep(directWindow + 50*time.Millisecond)
		}
		before := cs.direct()
		cs.next(i)
		if i != 1 && cs.direct() != before {
			t.Errorf("chunk %d was written on the handler's goroutine", i)
		}
	}
}

// A WINDOW_UPDATE that lets a stream's data go out is processed on the
// connection's reader goroutine when the serve loop is idle, and the
// data is written there (see ../UPSTREAM.md, 24). The client's window
// is 10 bytes, so each tenth of the response waits for its own update.
func TestWindowUpdateIsProcessedByTheReader(t *testing.T) {
	const window, parts = 10, 10
	body := strings.Repeat("w", window*parts)
	tp := &tryPipe{take: true}
	rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})
	if err := rc.fr.WriteSettings(Setting{SettingInitialWindowSize, window}); err != nil {
		t.Fatal(err)
	}
	rc.get()
	answered := map[uint32]bool{}
	got := rc.readData(answered)
	byReader := 0
	for range parts - 1 {
		tp.mu.Lock()
		before := len(tp.writers)
		tp.mu.Unlock()
		if err := rc.fr.WriteWindowUpdate(1, window); err != nil {
			t.Fatal(err)
		}
		got += rc.readData(answered)
		tp.mu.Lock()
		if slices.Contains(tp.writers[before:], tp.reader.Load()) {
			byReader++
		}
		tp.mu.Unlock()
	}
	if got != body {
		t.Fatalf("body %q, want %q", got, body)
	}
	if byReader < parts/2 {
		t.Errorf("%d of %d WINDOW_UPDATEs had their data written by the reader, want at least %d", byReader, parts-1, parts/2)
	}
}

// A WINDOW_UPDATE the reader processes can leave the connection with
// more control frames queued than the server allows, as one the serve
// loop processes can; the connection must then close as it would there.
// Here the client reads nothing, so a response's write blocks and the
// RST_STREAM an overflowing WINDOW_UPDATE causes stays queued.
func TestWindowUpdateOnTheReaderCanEndTheConnection(t *testing.T) {
	scs := make(chan *serverConn, 1)
	testHookGetServerConn = func(sc *serverConn) { scs <- sc }
	defer func() { testHookGetServerConn = nil }()
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	sc := <-scs
	rc.get()
	// Let the serve loop start the response's write, which blocks, and
	// then bring its count of queued control frames to the limit.
	time.Sleep(50 * time.Millisecond)
	atLimit := make(chan bool, 1)
	sc.sendServeMsg(func(sc *serverConn) {
		sc.queuedControlFrames = maxQueuedControlFrames
		atLimit <- sc.writingFrameAsync
	})
	if !<-atLimit {
		t.Fatal("the response's write is not blocked; the test needs it to be")
	}
	if err := rc.fr.WriteWindowUpdate(1, 1<<31-1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sc.doneServing:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection is still served with too many control frames queued")
	}
}

// A panic while the reader processes a frame (a bug in the serve loop's
// code) is logged and ends the connection, as net/http's recovery does
// for one on the serve goroutine, rather than the process.
func TestPanicOnTheReaderEndsTheConnection(t *testing.T) {
	scs := make(chan *serverConn, 1)
	var logged bytes.Buffer
	testHookGetServerConn = func(sc *serverConn) {
		sc.hs.ErrorLog = log.New(&logged, "", 0)
		scs <- sc
	}
	testHookProcessFrameDirect = func(Frame) { panic("a bug") }
	defer func() { testHookGetServerConn, testHookProcessFrameDirect = nil, nil }()
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {})
	sc := <-scs
	// Once the serve loop has processed the client's SETTINGS, a
	// WINDOW_UPDATE takes the reader's path.
	awaitFirstSettings(sc)
	// The reader takes a frame only when the serve loop is idle, so a
	// WINDOW_UPDATE may go to the serve loop instead (and not panic);
	// send them until one has ended the connection.
	ended := false
	for range 100 {
		if err := rc.fr.WriteWindowUpdate(0, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-sc.doneServing:
			ended = true
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	if !ended {
		t.Fatal("the connection is still served after a panic on its reader")
	}
	// The log was written before the serve loop was told to end.
	if got := logged.String(); !strings.Contains(got, "panic processing a frame") || !strings.Contains(got, "a bug") {
		t.Errorf("log %q, want the panic and its value", got)
	}
}

// A request body's DATA frames are processed on the connection's reader
// when the serve loop is idle, and the body reaches the handler whole and
// in order. Each frame is sent once the handler has read the one before,
// so the serve loop has nothing to do.
func TestRequestDataIsProcessedByTheReader(t *testing.T) {
	const parts = 10
	var mu sync.Mutex
	onReader := 0
	testHookProcessFrameDirect = func(f Frame) {
		if _, ok := f.(*DataFrame); ok {
			mu.Lock()
			onReader++
			mu.Unlock()
		}
	}
	defer func() { testHookProcessFrameDirect = nil }()
	read := make(chan string)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				read <- string(buf[:n])
			}
			if err != nil {
				close(read)
				return
			}
		}
	})
	rc.postOn(1)
	var got []string
	for i := range parts {
		if err := rc.fr.WriteData(1, i == parts-1, []byte(fmt.Sprintf("part %d", i))); err != nil {
			t.Fatal(err)
		}
		got = append(got, <-read)
	}
	if _, open := <-read; open {
		t.Fatal("the handler read more than was sent")
	}
	for i, g := range got {
		if want := fmt.Sprintf("part %d", i); g != want {
			t.Fatalf("read %q, want %q", g, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if onReader < parts/2 {
		t.Errorf("%d of %d DATA frames processed on the reader, want at least %d", onReader, parts, parts/2)
	}
}

// serveForUpdates starts a connection whose stream 1, once opened, waits
// in its handler until the test ends, and returns it once the serve loop
// has processed the client's SETTINGS, after which a WINDOW_UPDATE may
// take the reader's path.
func serveForUpdates(t *testing.T) (*rawClient, *serverConn) {
	t.Helper()
	scs := make(chan *serverConn, 1)
	testHookGetServerConn = func(sc *serverConn) { scs <- sc }
	t.Cleanup(func() { testHookGetServerConn = nil })
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	sc := <-scs
	awaitFirstSettings(sc)
	return rc, sc
}

// awaitFirstSettings waits until sc's serve loop has processed the
// client's first SETTINGS frame.
func awaitFirstSettings(sc *serverConn) {
	for {
		seen := make(chan bool, 1)
		sc.sendServeMsg(func(sc *serverConn) { seen <- sc.sawFirstSettings })
		if <-seen {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitQueued waits until sc's reader has queued n WINDOW_UPDATEs.
func awaitQueued(t *testing.T, sc *serverConn, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for sc.updates.n.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d updates queued, want %d", sc.updates.n.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// connWindow returns the connection's send window, read on the serve loop.
func connWindow(sc *serverConn) int32 {
	w := make(chan int32, 1)
	sc.sendServeMsg(func(sc *serverConn) { w <- sc.flow.n })
	return <-w
}

// A WINDOW_UPDATE that the reader reads while a handler runs the serve
// loop's code (writeDataDirect, here the test itself) is queued rather
// than handed to the serve goroutine, which would then wait for the
// handler to let go: the handler processes it before it lets go. Past
// maxQueuedUpdates the reader hands the next one over, as x/net does,
// and waits until it is processed, so a client cannot queue more.
func TestUpdatesQueueWhileTheLoopsCodeRunsElsewhere(t *testing.T) {
	rc, sc := serveForUpdates(t)
	before := connWindow(sc)
	for !sc.tryDirect() {
		time.Sleep(time.Millisecond)
	}
	const n = maxQueuedUpdates + 1
	for range n {
		if err := rc.fr.WriteWindowUpdate(0, 1000); err != nil {
			sc.endDirect()
			t.Fatal(err)
		}
	}
	awaitQueued(t, sc, maxQueuedUpdates)
	// The one over the limit went to the serve loop: a frame after it is
	// not read until it has been processed.
	sent := make(chan error, 1)
	go func() { sent <- rc.fr.WriteWindowUpdate(0, 1000) }()
	select {
	case err := <-sent:
		sc.endDirect()
		t.Fatalf("the reader read past a full queue (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	sc.endDirect()
	if q := sc.updates.n.Load(); q > 1 {
		t.Errorf("%d updates still queued after the holder let go", q)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	want := before + (n+1)*1000
	deadline := time.Now().Add(5 * time.Second)
	for got := connWindow(sc); got != want; got = connWindow(sc) {
		if time.Now().After(deadline) {
			t.Fatalf("connection window %d, want %d", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// Queued updates are processed before any frame the reader read after
// them, even when that frame reaches the serve goroutine while they wait
// (their holder having looked at the queue just before they came, as the
// test's plain Unlock stands for). Here the order decides the error: the
// update brings stream 1's window to the largest allowed, so the SETTINGS
// frame's growth of 1 then overflows it, a connection error (GOAWAY)
// that x/net finds at the stream's next update; the other way round the
// update overflows it, a stream error (RST_STREAM).
func TestQueuedUpdatesComeBeforeTheNextFrame(t *testing.T) {
	rc, sc := serveForUpdates(t)
	rc.get()
	for {
		open := make(chan bool, 1)
		sc.sendServeMsg(func(sc *serverConn) { open <- sc.streams[1] != nil })
		if <-open {
			break
		}
		time.Sleep(time.Millisecond)
	}
	sc.serveMu.Lock()
	if err := rc.fr.WriteWindowUpdate(1, 1<<31-1-initialWindowSize); err != nil {
		sc.serveMu.Unlock()
		t.Fatal(err)
	}
	awaitQueued(t, sc, 1)
	if err := rc.fr.WriteSettings(Setting{SettingInitialWindowSize, initialWindowSize + 1}); err != nil {
		sc.serveMu.Unlock()
		t.Fatal(err)
	}
	// Let the reader hand the SETTINGS over before the lock goes.
	time.Sleep(20 * time.Millisecond)
	sc.serveMu.Unlock()
	if err := rc.fr.WriteWindowUpdate(1, 1); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's answer: %v", err)
		}
		switch f := f.(type) {
		case *GoAwayFrame:
			if f.ErrCode != ErrCodeFlowControl {
				t.Fatalf("GOAWAY %v, want %v", f.ErrCode, ErrCodeFlowControl)
			}
			return
		case *RSTStreamFrame:
			t.Fatalf("RST_STREAM %v on stream %d: the SETTINGS frame was processed before the update", f.ErrCode, f.StreamID)
		}
	}
}

// slowWrites is a tryPipe whose writes take a while, as a large TLS
// write does, so that a handler writing directly holds serveMu long
// enough for the client's updates to find it held.
type slowWrites struct{ *tryPipe }

func (c slowWrites) Write(p []byte) (int, error) {
	time.Sleep(50 * time.Microsecond)
	return c.tryPipe.Write(p)
}

// A fast stream whose client gives its window back one DATA frame at a
// time, with a window of 16 frames: the handler writes its frames itself
// (flushing each), and the updates that arrive meanwhile are queued. No
// update may be lost between the reader, the queue and the handler, or
// the window runs out and the stream stalls. Run with -race.
func TestStreamWithUpdatesQueuedArrivesWhole(t *testing.T) {
	const frame, total = 1 << 10, 1 << 20
	tp := &tryPipe{take: true}
	rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return slowWrites{tp} }, func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, frame)
		for i := 0; i < total; i += frame {
			for j := range b {
				b[j] = byte(i/frame + j)
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	if err := rc.fr.WriteSettings(Setting{SettingInitialWindowSize, 16 * frame}); err != nil {
		t.Fatal(err)
	}
	rc.get()
	// The updates are written on their own goroutine: over net.Pipe a
	// write waits for the server's reader, which may wait for the serve
	// loop, which may wait for the client to read.
	updates := make(chan uint32, total/frame)
	writeErr := make(chan error, 1)
	go func() {
		for n := range updates {
			if err := rc.fr.WriteWindowUpdate(0, n); err != nil {
				writeErr <- err
				return
			}
			if err := rc.fr.WriteWindowUpdate(1, n); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	got := 0
	var first error
	for got < total {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", got, total, err)
		}
		d, ok := f.(*DataFrame)
		if !ok || d.StreamID != 1 {
			continue
		}
		for j, c := range d.Data() {
			if i := got + j; c != byte(i/frame+i%frame) && first == nil {
				first = fmt.Errorf("byte %d is %d, want %d", i, c, byte(i/frame+i%frame))
			}
		}
		got += len(d.Data())
		if len(d.Data()) > 0 {
			updates <- uint32(len(d.Data()))
		}
	}
	close(updates)
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if first != nil {
		t.Fatal(first)
	}
}

// An update queued just after the holder of serveMu looked at the queue
// and before it let go (the reader's TryLock failing in between) is not
// left behind: the holder looks again once it has let go, and takes
// serveMu back to process it, since no one else holds it. Without that
// look, it would wait for the next frame or write, which for a stream
// waiting for that very update never comes.
func TestUpdateQueuedAsTheHolderLetsGoIsProcessed(t *testing.T) {
	_, sc := serveForUpdates(t)
	before := connWindow(sc)
	testHookBeforeDirectUnlock = func(sc *serverConn) {
		testHookBeforeDirectUnlock = nil
		sc.updates.push(&WindowUpdateFrame{FrameHeader: FrameHeader{Type: FrameWindowUpdate}, Increment: 1000})
	}
	defer func() { testHookBeforeDirectUnlock = nil }()
	for !sc.tryDirect() {
		time.Sleep(time.Millisecond)
	}
	sc.endDirect()
	if q := sc.updates.n.Load(); q != 0 {
		t.Fatalf("%d updates still queued after the holder let go", q)
	}
	if got, want := connWindow(sc), before+1000; got != want {
		t.Fatalf("connection window %d, want %d", got, want)
	}
}

// An update the reader queues after the holder of serveMu has looked at
// the queue for the last time and let go (the reader's TryLock having
// failed just before the holder let go) is not left behind: the reader
// takes serveMu itself once it has queued the update, and processes it.
// Without that, it waited for the next frame from the client or a write
// of the server's: h2spec's 6.9.2/2, which sends SETTINGS and then the
// WINDOW_UPDATE that lets its stream's last byte out, timed out when the
// serve loop, still holding serveMu after the SETTINGS, let go in
// between (about once in a few hundred runs).
func TestUpdateQueuedAfterTheHoldersLastLookIsProcessed(t *testing.T) {
	rc, sc := serveForUpdates(t)
	before := connWindow(sc)
	failed, letGo := make(chan struct{}), make(chan struct{})
	processed := make(chan struct{}, 1)
	testHookBeforeQueuePush = func(*serverConn) {
		testHookBeforeQueuePush = nil
		close(failed)
		<-letGo
	}
	testHookProcessFrameDirect = func(f Frame) {
		if wu, ok := f.(*WindowUpdateFrame); ok && wu.Increment == 1000 {
			processed <- struct{}{}
		}
	}
	defer func() { testHookBeforeQueuePush, testHookProcessFrameDirect = nil, nil }()
	for !sc.tryDirect() {
		time.Sleep(time.Millisecond)
	}
	if err := rc.fr.WriteWindowUpdate(0, 1000); err != nil {
		sc.endDirect()
		t.Fatal(err)
	}
	<-failed
	sc.endDirect() // finds the queue empty, lets go and looks again
	close(letGo)
	// Nothing else may run the serve loop's code meanwhile: a serve
	// message (connWindow) would have the loop process the queue.
	select {
	case <-processed:
	case <-time.After(time.Second):
		t.Fatalf("the update stayed queued with serveMu free (%d queued)", sc.updates.n.Load())
	}
	if got, want := connWindow(sc), before+1000; got != want {
		t.Fatalf("connection window %d, want %d", got, want)
	}
}
