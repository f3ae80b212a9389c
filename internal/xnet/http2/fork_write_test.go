package http2

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// boundContext is a writeContext that records what a frame writer wrote.
type boundContext struct {
	out bytes.Buffer
	fr  *Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newBoundContext() *boundContext {
	c := &boundContext{}
	c.fr = NewFramer(&c.out, nil)
	c.enc = hpack.NewEncoder(&c.hb)
	return c
}

func (c *boundContext) Framer() *Framer  { return c.fr }
func (c *boundContext) Flush() error     { return nil }
func (c *boundContext) CloseConn() error { return nil }
func (c *boundContext) HeaderEncoder() (*hpack.Encoder, *bytes.Buffer) {
	return c.enc, &c.hb
}

// The serve loop writes a HEADERS frame itself when writeResHeaders.bound
// says it fits the connection's buffer, so the bound must never be below
// what writeFrame writes: whatever the fields, their sizes, bytes that
// Huffman coding makes longer, fields the dynamic table already holds,
// blocks that need CONTINUATION frames and table size updates.
func TestResHeadersBoundIsAnUpperBound(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	// Each string is of one kind: letters (Huffman shortens them), any
	// visible byte, or bytes with long Huffman codes (sent as they are).
	str := func(n int) string {
		var b strings.Builder
		kind := rnd.IntN(3)
		for range n {
			switch kind {
			case 0:
				b.WriteByte(byte('a' + rnd.IntN(26)))
			case 1:
				b.WriteByte(byte(0x21 + rnd.IntN(0x5e)))
			default:
				b.WriteByte("~^|\\{}"[rnd.IntN(6)])
			}
		}
		return b.String()
	}
	sizes := []int{0, 1, 5, 30, 126, 127, 128, 200, 1000, 5000, 20000}
	c := newBoundContext()
	for i := range 1000 {
		w := &writeResHeaders{streamID: 1, httpResCode: 100 + rnd.IntN(500), endStream: rnd.IntN(2) == 0}
		h := http.Header{}
		for range rnd.IntN(40) {
			k := "X-" + str(1+rnd.IntN(20))
			for range 1 + rnd.IntN(3) {
				h[k] = append(h[k], str(sizes[rnd.IntN(len(sizes))]))
			}
		}
		if rnd.IntN(4) == 0 {
			h["Cache-Control"] = []string{"no-cache"} // in the static table
		}
		w.h = h
		if rnd.IntN(2) == 0 {
			w.date = "Tue, 24 Nov 2026 07:00:00 GMT"
			w.contentType = "text/event-stream"
			w.contentLength = "12345"
		}
		if rnd.IntN(10) == 0 {
			// A table size update precedes the block (startFrameWrite).
			c.enc.SetMaxDynamicTableSize(uint32(rnd.IntN(4096)))
			c.enc.SetMaxDynamicTableSize(4096)
		}
		// And field by field, where the slack is not diluted by the
		// block's: a fresh encoder indexes nothing yet.
		for k, vv := range h {
			var one bytes.Buffer
			enc := hpack.NewEncoder(&one)
			for _, v := range vv {
				one.Reset()
				enc.WriteField(hpack.HeaderField{Name: strings.ToLower(k), Value: v})
				if one.Len() > len(k)+len(v)+headerFieldSlack {
					t.Fatalf("field of %d+%d bytes encoded in %d", len(k), len(v), one.Len())
				}
			}
		}
		c.out.Reset()
		if err := w.writeFrame(c); err != nil {
			t.Fatal(err)
		}
		if got, bound := c.out.Len(), w.bound(); got > bound {
			t.Fatalf("case %d: wrote %d bytes, bound %d (%d fields)", i, got, bound, len(h))
		}
	}
}

// Large DATA frames go to the connection through one writer goroutine
// for the connection's life, not a goroutine each, and that goroutine
// ends with the connection.
func TestAsyncWriterIsReusedAndEnds(t *testing.T) {
	rc, n := serveFourChunks(t, serveRaw)
	if n != 1 {
		t.Errorf("%d writer goroutines while the stream was written, want 1", n)
	}
	rc.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for countGoroutines("asyncWriter") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer goroutine outlived its connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countGoroutines counts the goroutines with fn on their stack.
func countGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("http2.(*serverConn)."+fn)) {
			n++
		}
	}
	return n
}

// WriteHeader hands the handler's header map to the HEADERS frame
// instead of copying it (change 12): Header() then returns a fresh map,
// whose changes do not reach the sent head, and trailers still work,
// declared (the map is kept) or set with http.TrailerPrefix.
func TestWriteHeaderHandsOverTheHeaderMap(t *testing.T) {
	for _, declared := range []bool{false, true} {
		seen := make(chan bool, 1)
		rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Before", "1")
			if declared {
				h.Set("Trailer", "X-Declared")
			}
			w.WriteHeader(http.StatusOK)
			seen <- len(w.Header()) == 0
			w.Header().Set("X-After", "1")
			w.Write([]byte("body"))
			if declared {
				w.Header().Set("X-Declared", "d")
			}
			w.Header().Set(http.TrailerPrefix+"X-Promoted", "p")
		})
		rc.get()
		fields, body := rc.response()
		fresh := <-seen
		if fresh == declared {
			t.Errorf("declared=%v: Header() after WriteHeader fresh=%v", declared, fresh)
		}
		if fields["x-before"] != "1" || fields["x-after"] != "" || body != "body" {
			t.Errorf("declared=%v: head and body %v %q", declared, fields, body)
		}
		if fields["x-promoted"] != "p" || declared && fields["x-declared"] != "d" {
			t.Errorf("declared=%v: trailers missing: %v", declared, fields)
		}
	}
}

// tryPipe is the server's end of a pipe with writes that need not block
// (TryWriter). With take set it is a socket with room: every write is
// queued and a pump writes the queue to the pipe. Without it, a try keeps
// everything, as a socket whose client reads nothing would, and Drain
// writes it, blocking until the client reads. With hold set, a try holds
// what it is given until Release, as combineConn holds corked records.
type tryPipe struct {
	net.Conn
	take bool
	hold bool

	mu       sync.Mutex
	trying   bool
	pend     []byte
	held     []byte
	tries    int
	drains   int
	releases int
	writes   int           // writes queued, with take
	maxWrite int           // the largest of them
	queue    chan []byte   // with take
	writers  []uint64      // the goroutine of each Write
	reader   atomic.Uint64 // the goroutine of the latest Read (not under mu, which a drain holds while it blocks)
}

func (c *tryPipe) TryWriter() TryWriter { return c }

func (c *tryPipe) BeginTry() {
	c.mu.Lock()
	c.trying = true
	c.tries++
	c.mu.Unlock()
}

func (c *tryPipe) EndTry() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trying = false
	return len(c.pend) > 0
}

func (c *tryPipe) Drain() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drains++
	return c.drainLocked()
}

func (c *tryPipe) drainLocked() error {
	p := c.pend
	c.pend = nil
	_, err := c.Conn.Write(p)
	return err
}

func (c *tryPipe) Held() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held) > 0
}

func (c *tryPipe) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releases++
	return c.releaseLocked()
}

func (c *tryPipe) releaseLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	p := c.held
	c.held = nil
	_, err := c.out(p)
	return err
}

func (c *tryPipe) Read(p []byte) (int, error) {
	c.reader.Store(curGoroutineID())
	return c.Conn.Read(p)
}

func (c *tryPipe) Write(p []byte) (int, error) {
	g := curGoroutineID()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writers = append(c.writers, g)
	if c.hold && c.trying && len(c.pend) == 0 {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if err := c.releaseLocked(); err != nil {
		return 0, err
	}
	return c.out(p)
}

// out writes p as the socket would take it.
func (c *tryPipe) out(p []byte) (int, error) {
	if c.take {
		c.writes++
		c.maxWrite = max(c.maxWrite, len(p))
		if c.queue == nil {
			c.queue = make(chan []byte, 1024)
			go func() {
				for b := range c.queue {
					if _, err := c.Conn.Write(b); err != nil {
						return
					}
				}
			}()
		}
		c.queue <- bytes.Clone(p)
		return len(p), nil
	}
	if c.trying {
		c.pend = append(c.pend, p...)
		return len(p), nil
	}
	if err := c.drainLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *tryPipe) Close() error {
	c.mu.Lock()
	if c.queue != nil {
		close(c.queue)
		c.queue = nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// TestTryWriteHeldFramesShareOneWrite: the DATA frames of one handler
// write, which the serve loop writes one by one in a turn, are held by the
// connection and go out together when the loop flushes; the client gets
// the whole response, so nothing is left held. Not held, they go out as
// the connection's buffer fills: several frames a write, so that
// crypto/tls seals full records (../UPSTREAM.md, change 27), and no write
// larger than the buffer.
func TestTryWriteHeldFramesShareOneWrite(t *testing.T) {
	for _, hold := range []bool{false, true} {
		chunk := bytes.Repeat([]byte("h"), 160<<10)
		tp := &tryPipe{take: true, hold: hold}
		rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, func(w http.ResponseWriter, r *http.Request) {
			w.Write(chunk)
		})
		// Room for the whole body at once, past the 64 KiB windows.
		rc.fr.WriteSettings(Setting{SettingInitialWindowSize, uint32(len(chunk))})
		rc.fr.WriteWindowUpdate(0, uint32(len(chunk)))
		rc.get()
		_, body := rc.response()
		if body != string(chunk) {
			t.Fatalf("hold=%v: body %d bytes, want %d", hold, len(body), len(chunk))
		}
		tp.mu.Lock()
		biggest, releases, held := tp.maxWrite, tp.releases, len(tp.held)
		tp.mu.Unlock()
		// Held: one write carries all ten frames (and the head). Not
		// held: a write a buffer.
		switch {
		case hold && (biggest < len(chunk) || releases == 0 || held != 0):
			t.Errorf("held: largest write %d bytes, %d releases, %d bytes still held; want one write of the whole body", biggest, releases, held)
		case !hold && (biggest > bufWriterPoolBufferSize || biggest < 3*(16<<10+frameHeaderLen)):
			t.Errorf("not held: largest write %d bytes, want at least three frames and at most the %d-byte buffer", biggest, bufWriterPoolBufferSize)
		}
	}
}

func (c *tryPipe) counts() (tries, drains int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tries, c.drains
}

// With a connection that can write without blocking, the serve loop
// writes large DATA frames and flushes itself: a stream's whole response
// goes out with no writer goroutine.
func TestTryWriteNeedsNoWriterGoroutine(t *testing.T) {
	tp := &tryPipe{take: true}
	_, n := serveFourChunks(t, func(t *testing.T, h http.HandlerFunc) *rawClient {
		return serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, h)
	})
	if n != 0 {
		t.Errorf("%d writer goroutines, want none", n)
	}
	if tries, drains := tp.counts(); tries < 4 || drains != 0 {
		t.Errorf("%d tries and %d drains, want at least 4 tries and no drain", tries, drains)
	}
}

// What a try could not write is written by the writer goroutine, and the
// serve loop goes on meanwhile: while the client reads nothing, a stream
// it opens still starts and a reset still reaches its handler. Then the
// client reads everything, in order.
func TestTryWriteLeftoverDoesNotHoldTheServeLoop(t *testing.T) {
	chunk := bytes.Repeat([]byte("y"), 64<<10)
	started := make(chan struct{})
	reset := make(chan struct{})
	tp := &tryPipe{}
	rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Wait") != "" {
			close(started)
			select {
			case <-r.Context().Done():
				close(reset)
			case <-time.After(5 * time.Second):
			}
			return
		}
		w.Write(chunk)
	})
	rc.fr.WriteWindowUpdate(0, 1<<20)
	rc.get()
	rc.fr.WriteWindowUpdate(1, 1<<20)
	rc.getOn(3, [][2]string{{"x-wait", "1"}})
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("a stream opened while a write was pending did not start")
	}
	if err := rc.fr.WriteRSTStream(3, ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reset:
	case <-time.After(5 * time.Second):
		t.Fatal("a reset sent while a write was pending did not reach its handler")
	}
	_, body := rc.response()
	if body != string(chunk) {
		t.Fatalf("body %d bytes, want %d", len(body), len(chunk))
	}
	if _, drains := tp.counts(); drains == 0 {
		t.Error("no drain: the test did not leave a write pending")
	}
}

// serveFourChunks serves, through serve, one stream whose handler writes
// and flushes four 64 KiB chunks, reads the whole response, and returns
// the client and how many writer goroutines ran while the handler wrote.
func serveFourChunks(t *testing.T, serve func(*testing.T, http.HandlerFunc) *rawClient) (*rawClient, int) {
	t.Helper()
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	writers := make(chan int, 1)
	rc := serve(t, func(w http.ResponseWriter, r *http.Request) {
		for range 4 {
			w.Write(chunk)
			w.(http.Flusher).Flush()
		}
		writers <- countGoroutines("asyncWriter")
	})
	rc.fr.WriteWindowUpdate(0, 1<<20)
	rc.get()
	rc.fr.WriteWindowUpdate(1, 1<<20)
	_, body := rc.response()
	if len(body) != 4*len(chunk) {
		t.Fatalf("body %d bytes, want %d", len(body), 4*len(chunk))
	}
	return rc, <-writers
}
