package http2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// rawClient is the client side of a server connection over net.Pipe,
// driven frame by frame: a net.Pipe write blocks until the other side
// reads, so a test decides exactly when the server's writes complete.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	fr *Framer

	dec    *hpack.Decoder // the connection's, kept from response to response
	fields map[string]string
}

// serveRaw starts the server on one end of a pipe and sends the client
// preface and SETTINGS on the other; it reads nothing.
func serveRaw(t *testing.T, h http.HandlerFunc) *rawClient {
	t.Helper()
	return serveRawOn(t, nil, h)
}

// serveRawOn is serveRaw with the server's end of the pipe wrapped.
func serveRawOn(t *testing.T, wrap func(net.Conn) net.Conn, h http.HandlerFunc) *rawClient {
	t.Helper()
	return serveRawWith(t, wrap, nil, h)
}

// serveRawCtx is serveRaw with ctx as the connection's context.
func serveRawCtx(t *testing.T, ctx context.Context, h http.HandlerFunc) *rawClient {
	t.Helper()
	return serveRawWith(t, nil, ctx, h)
}

func serveRawWith(t *testing.T, wrap func(net.Conn) net.Conn, ctx context.Context, h http.HandlerFunc) *rawClient {
	t.Helper()
	c, s := net.Pipe()
	if wrap != nil {
		s = wrap(s)
	}
	srv := &Server{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeConn(s, &ServeConnOpts{Handler: h, Context: ctx})
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	rc := &rawClient{t: t, c: c, fr: NewFramer(c, c)}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// get opens stream 1 with a GET request.
func (rc *rawClient) get() { rc.getWith(nil) }

// getWith sends a GET on stream 1 with these regular fields after the
// pseudo-headers.
func (rc *rawClient) getWith(fields [][2]string) { rc.getOn(1, fields) }

// getOn sends a GET on stream id.
func (rc *rawClient) getOn(id uint32, fields [][2]string) {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for _, f := range append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.test"}, {":path", "/"}}, fields...) {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := rc.fr.WriteHeaders(HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

// postOn opens stream id with the HEADERS of a POST, leaving the stream
// open for its body.
func (rc *rawClient) postOn(id uint32) { rc.postTo(id, "/") }

// postTo is postOn with path as the request's :path.
func (rc *rawClient) postTo(id uint32, path string) {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.test"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := rc.fr.WriteHeaders(HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

// decode decodes a HEADERS frame's block into rc.fields with the
// connection's decoder, which is kept from frame to frame as HPACK needs.
func (rc *rawClient) decode(f *HeadersFrame) {
	rc.t.Helper()
	if rc.dec == nil {
		rc.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { rc.fields[f.Name] = f.Value })
	}
	if _, err := rc.dec.Write(f.HeaderBlockFragment()); err != nil {
		rc.t.Fatal(err)
	}
}

// response reads frames until stream 1 ends and returns its header
// fields (":status" included) and body.
func (rc *rawClient) response() (map[string]string, string) {
	rc.t.Helper()
	fields := map[string]string{}
	rc.fields = fields
	var body bytes.Buffer
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading the response: %v (so far: %v %q)", err, fields, body.String())
		}
		switch f := f.(type) {
		case *SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *HeadersFrame:
			rc.decode(f)
			if f.StreamEnded() {
				return fields, body.String()
			}
		case *DataFrame:
			body.Write(f.Data())
			if f.StreamEnded() {
				return fields, body.String()
			}
		case *RSTStreamFrame:
			rc.t.Fatalf("stream reset: %v", f.ErrCode)
		}
	}
}

// A held stream is quiet between flushes; the response writer gives its
// 4 KiB buffer, its header snapshot and the handler's header map back
// instead of keeping them for the life of the stream (sluice.patch; x/net
// keeps all three). A trailer set through a fresh Header() still goes out.
func TestQuietStreamHoldsNoWriterBuffer(t *testing.T) {
	errs := make(chan string, 4)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		rws := w.(*responseWriter).rws
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		if rws.bw == nil || rws.bw.Buffered() == 0 {
			errs <- "a written event is not in the writer's buffer"
		}
		w.(http.Flusher).Flush()
		if rws.bw != nil {
			errs <- "the writer kept its buffer after a flush emptied it"
		}
		if rws.snapHeader != nil {
			errs <- "the writer kept its header snapshot after the HEADERS frame"
		}
		if rws.handlerHeader != nil {
			errs <- "the writer kept the handler's header map after the HEADERS frame"
		}
		io.WriteString(w, "data: 2\n\n")
		w.(http.Flusher).Flush()
		w.Write(bytes.Repeat([]byte("x"), 3*handlerChunkWriteSize)) // past the buffer
		w.Header().Set(http.TrailerPrefix+"X-Trailer", "t")
		close(errs)
	})
	rc.get()
	fields, body := rc.response()
	for e := range errs {
		t.Error(e)
	}
	if fields[":status"] != "200" || fields["content-type"] != "text/event-stream" || fields["x-trailer"] != "t" {
		t.Errorf("header and trailer fields %v", fields)
	}
	if want := "data: 1\n\ndata: 2\n\n" + string(bytes.Repeat([]byte("x"), 3*handlerChunkWriteSize)); body != want {
		t.Errorf("body is %d bytes %.40q..., want %d bytes", len(body), body, len(want))
	}
}

// A handler's first flush queues the HEADERS frame and goes on, without
// waiting for the connection to take it: the writer owns the header
// snapshot the frame is encoded from. Here the client reads nothing, so
// no write to the connection can finish while the handler flushes.
func TestFlushDoesNotWaitForHeadersWrite(t *testing.T) {
	flushed := make(chan struct{})
	release := make(chan struct{})
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "1")
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		close(flushed)
		<-release
		io.WriteString(w, "done")
	})
	rc.get()
	select {
	case <-flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("Flush waited for the HEADERS frame to be written")
	}
	close(release)
	fields, body := rc.response()
	if fields[":status"] != "202" || fields["x-test"] != "1" || body != "done" {
		t.Errorf("response %v %q", fields, body)
	}
}

// deadlineConn records the write deadlines set on it; its writes fail
// with a timeout while stalled is set.
type deadlineConn struct {
	net.Conn
	deadlines []time.Time
	stalled   bool
	written   int
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.stalled {
		return 0, os.ErrDeadlineExceeded
	}
	c.written += len(p)
	return len(p), nil
}

// The connection's write deadline is armed once for a run of writes
// rather than set and cleared around each one, and a peer that takes no
// bytes still fails the write.
func TestWriteDeadlineMovesRarely(t *testing.T) {
	const timeout = time.Minute
	c := &deadlineConn{}
	w := (*bufferedWriterTimeoutWriter)(newBufferedWriter(c, timeout))
	start := time.Now()
	for i := 0; i < 1000; i++ {
		if _, err := w.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.deadlines) != 1 || c.written != 100000 {
		t.Fatalf("1000 writes set %d deadlines (want 1) and wrote %d bytes", len(c.deadlines), c.written)
	}
	if d := c.deadlines[0].Sub(start); d < timeout || d > timeout+time.Second {
		t.Errorf("deadline %v after the first write, want %v", d, timeout)
	}

	// Once less than 7/8 of the timeout is left, the next write moves it.
	w.writeDeadline = time.Now().Add(timeout / 2)
	w.Write([]byte("x"))
	if len(c.deadlines) != 2 || time.Until(c.deadlines[1]) < timeout-time.Second {
		t.Errorf("a write with half the timeout left did not move the deadline: %v", c.deadlines)
	}

	c.stalled = true
	if _, err := w.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write to a stalled peer: %v, want a deadline error", err)
	}
}

// resetAndCollect sends a GET on stream 1, resets it once the handler has
// registered its hooks, and checks that exactly the want hooks run and
// that the handler reported no errors.
func resetAndCollect(t *testing.T, rc *rawClient, registered <-chan struct{}, ran <-chan string, errs <-chan string, want ...string) {
	t.Helper()
	rc.get()
	<-registered
	if err := rc.fr.WriteRSTStream(1, ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < len(want) {
		select {
		case s := <-ran:
			got[s] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("after the reset only %v ran", got)
		}
	}
	for e := range errs {
		t.Error(e)
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("ran %v, want %v", got, want)
		}
	}
	select {
	case s := <-ran:
		t.Errorf("%s ran as well", s)
	case <-time.After(50 * time.Millisecond):
	}
}

// A handler that releases its request while its stream stays open (as
// sluice's does once the response head is out) lets the request be
// collected: the server keeps no other reference to it. Push then fails.
func TestServerDoesNotKeepTheRequest(t *testing.T) {
	collected := make(chan struct{})
	release := make(chan struct{})
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		runtime.AddCleanup(r, func(ch chan struct{}) { close(ch) }, collected)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		w.(interface{ ReleaseRequest() }).ReleaseRequest()
		r = nil
		if err := w.(http.Pusher).Push("/other", nil); err == nil || !strings.Contains(err.Error(), "released") {
			t.Errorf("Push after the request was released: %v, want the error that says so", err)
		}
		<-release
	})
	rc.get()
	defer close(release)
	deadline := time.After(5 * time.Second)
	for {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-deadline:
			t.Fatal("the request was not collected while its stream stayed open")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestRequestHeaderValuesShareOneArray checks change 13: the request's
// header values are slices of one array, so repeated fields, cookie
// crumbs and many fields must come out as net/http's Header.Add would
// make them, and appending to one field's values must not change
// another's.
func TestRequestHeaderValuesShareOneArray(t *testing.T) {
	var fields [][2]string
	want := http.Header{}
	for i := range 40 {
		name := fmt.Sprintf("x-f%d", i%13)
		fields = append(fields, [2]string{name, fmt.Sprint(i)})
		want.Add(name, fmt.Sprint(i))
	}
	fields = append(fields, [2]string{"cookie", "a=1"}, [2]string{"x-one", "1"}, [2]string{"cookie", "b=2"})
	want.Set("Cookie", "a=1; b=2")
	want.Set("X-One", "1")
	got := make(chan string, 1)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		if !reflect.DeepEqual(r.Header, want) {
			got <- fmt.Sprintf("header %v, want %v", r.Header, want)
			return
		}
		for k := range r.Header {
			r.Header[k] = append(r.Header[k], "appended")
		}
		for k, vv := range r.Header {
			if !reflect.DeepEqual(vv[:len(vv)-1], want[k]) {
				got <- fmt.Sprintf("appending changed %s to %v, want %v", k, vv[:len(vv)-1], want[k])
				return
			}
		}
		got <- ""
	})
	rc.getWith(fields)
	rc.response()
	if msg := <-got; msg != "" {
		t.Error(msg)
	}
}

// TestAdoptHeader checks change 14: an adopted map is the response's
// header, trailers it declares still go out, and a map is not adopted
// once Header() was called or the header written.
func TestAdoptHeader(t *testing.T) {
	results := make(chan []bool, 1)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		a := w.(interface{ AdoptHeader(http.Header) bool })
		h := http.Header{"X-Adopted": {"1"}, "Trailer": {"X-T"}}
		first := a.AdoptHeader(h)
		again := a.AdoptHeader(http.Header{"X-Second": {"1"}})
		w.Header().Set("X-Added", "2") // the adopted map, through Header()
		w.WriteHeader(http.StatusAccepted)
		afterWrite := a.AdoptHeader(http.Header{"X-Late": {"1"}})
		w.Write([]byte("body"))
		w.Header().Set("X-T", "t")
		results <- []bool{first, again, afterWrite}
	})
	rc.get()
	fields, body := rc.response()
	got := <-results
	if !got[0] || got[1] || got[2] {
		t.Errorf("AdoptHeader results %v, want [true false false]", got)
	}
	if fields[":status"] != "202" || fields["x-adopted"] != "1" || fields["x-added"] != "2" || fields["x-second"] != "" || fields["x-late"] != "" {
		t.Errorf("head %v", fields)
	}
	if fields["x-t"] != "t" || body != "body" {
		t.Errorf("trailer and body: %v %q", fields, body)
	}

	// Header() first: the handler's own map stays, nothing is adopted.
	adopted := make(chan bool, 1)
	rc = serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Own", "1")
		adopted <- w.(interface{ AdoptHeader(http.Header) bool }).AdoptHeader(http.Header{"X-Other": {"1"}})
	})
	rc.get()
	fields, _ = rc.response()
	if <-adopted || fields["x-own"] != "1" || fields["x-other"] != "" {
		t.Errorf("after Header(): adopted, head %v", fields)
	}
}

type hookFunc func()

func (f hookFunc) StreamClosed() { f() }

// TestOnClose: StopOnClose unregisters a hook that has not run; a second
// OnClose is refused while the room is taken; after the client resets
// the stream, the hook runs, and one registered after the close runs at
// once.
func TestOnClose(t *testing.T) {
	ran := make(chan string, 4)
	errs := make(chan string, 4)
	registered := make(chan struct{})
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		oc := w.(interface {
			OnClose(CloseHook) bool
			StopOnClose() bool
		})
		if !oc.OnClose(hookFunc(func() { ran <- "stopped" })) || !oc.StopOnClose() {
			errs <- "StopOnClose did not unregister a hook that had not run"
		}
		if oc.StopOnClose() {
			errs <- "StopOnClose with no hook reported true"
		}
		if !oc.OnClose(hookFunc(func() { ran <- "hook" })) {
			errs <- "OnClose refused an empty room"
		}
		if oc.OnClose(hookFunc(func() { ran <- "second" })) {
			errs <- "OnClose took a taken room"
		}
		close(registered)
		<-r.Context().Done()
		if !oc.OnClose(hookFunc(func() { ran <- "late" })) {
			errs <- "OnClose after the close refused"
		}
		close(errs)
	})
	resetAndCollect(t, rc, registered, ran, errs, "hook", "late")
}

// handlersOf returns a function that reads sc.curHandlers on its serve
// loop.
func handlersOf(sc *serverConn) func() int {
	return func() int {
		ch := make(chan int, 1)
		sc.sendServeMsg(func(sc *serverConn) { ch <- int(sc.curHandlers) })
		return <-ch
	}
}

// A finished handler's last DATA frame is queued without a wait: while
// the client has read nothing (so no write to the connection can
// finish), the serve loop already counts the handler done. The body
// still arrives whole, and the count stays right over more requests
// (a handler counted twice would wrap it below zero).
func TestFinishedHandlerDoesNotWaitForLastFrame(t *testing.T) {
	conns := make(chan *serverConn, 4)
	body := strings.Repeat("b", 1000)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		conns <- w.(*responseWriter).rws.conn
		io.WriteString(w, body)
	})
	rc.get()
	handlers := handlersOf(<-conns)
	deadline := time.Now().Add(5 * time.Second)
	for handlers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the finished handler is still counted: it waits for its last frame to be written")
		}
		time.Sleep(time.Millisecond)
	}
	if fields, got := rc.response(); fields[":status"] != "200" || got != body {
		t.Fatalf("response %v, body of %d bytes %.20q...", fields, len(got), got)
	}
	for id := uint32(3); id <= 9; id += 2 {
		rc.getOn(id, nil)
		<-conns
		if _, got := rc.response(); got != body {
			t.Fatalf("stream %d: body of %d bytes", id, len(got))
		}
	}
	if n := handlers(); n != 0 {
		t.Errorf("%d handlers counted after 5 finished ones", n)
	}
}

// A finished handler's last frame that flow control splits keeps the
// handler's buffer until its last part is written: the buffer goes back
// to the pool only then, so the handlers that finish meanwhile (and take
// buffers from that pool) cannot write over what is still to be sent.
func TestFinishedHandlerLastFrameSplitByFlowControl(t *testing.T) {
	const size = 3000
	done := make(chan struct{}, 8)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		fill := r.URL.Query().Get("fill")
		io.WriteString(w, strings.Repeat(fill, size))
		done <- struct{}{}
	})
	if err := rc.fr.WriteSettings(Setting{ID: SettingInitialWindowSize, Val: 10}); err != nil {
		t.Fatal(err)
	}
	fills := map[uint32]string{1: "a", 3: "b", 5: "c", 7: "d"}
	for id := uint32(1); id <= 7; id += 2 {
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.test"}, {":path", "/?fill=" + fills[id]}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := rc.fr.WriteHeaders(HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	bodies := map[uint32]*bytes.Buffer{}
	ended := 0
	opened := false
	for ended < len(fills) {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		switch f := f.(type) {
		case *SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *DataFrame:
			id := f.Header().StreamID
			if bodies[id] == nil {
				bodies[id] = new(bytes.Buffer)
			}
			bodies[id].Write(f.Data())
			if f.StreamEnded() {
				ended++
				continue
			}
			if !opened {
				// Let every handler finish before the rest of any
				// body may go.
				opened = true
				for range fills {
					<-done
				}
				for id := range fills {
					rc.fr.WriteWindowUpdate(id, size)
				}
			}
		case *RSTStreamFrame:
			t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		}
	}
	for id, fill := range fills {
		if got := bodies[id].String(); got != strings.Repeat(fill, size) {
			t.Errorf("stream %d: body of %d bytes %.20q..., want %d bytes of %q", id, len(got), got, size, fill)
		}
	}
}

// nextOn reads frames until stream id is answered: its response head's
// ":status", or "reset CODE" for an RST_STREAM; a GOAWAY fails the test.
func (rc *rawClient) nextOn(id uint32) string {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading the answer to stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *GoAwayFrame:
			rc.t.Fatalf("connection closed (GOAWAY %v) waiting for stream %d", f.ErrCode, id)
		case *RSTStreamFrame:
			if f.StreamID == id {
				return "reset " + f.ErrCode.String()
			}
		case *HeadersFrame:
			rc.fields = map[string]string{}
			rc.decode(f)
			if f.StreamID == id {
				return rc.fields[":status"]
			}
		}
	}
}

// RFC 9113, 8.2.2: a request with a connection-specific field, or with a
// TE other than "trailers", is malformed: a stream error of type
// PROTOCOL_ERROR, not a request for the handler (x/net answered it with a
// 400). The connection goes on. h2spec 8.1.2.2 checks the same.
func TestConnectionSpecificFieldIsAStreamError(t *testing.T) {
	ran := make(chan string, 10)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		ran <- r.Header.Get("Te")
	})
	id := uint32(1)
	for _, c := range []struct {
		field [2]string
		want  string
	}{
		{[2]string{"connection", "keep-alive"}, "reset PROTOCOL_ERROR"},
		{[2]string{"keep-alive", "timeout=5"}, "reset PROTOCOL_ERROR"},
		{[2]string{"proxy-connection", "keep-alive"}, "reset PROTOCOL_ERROR"},
		{[2]string{"transfer-encoding", "chunked"}, "reset PROTOCOL_ERROR"},
		{[2]string{"upgrade", "websocket"}, "reset PROTOCOL_ERROR"},
		{[2]string{"te", "gzip"}, "reset PROTOCOL_ERROR"},
		{[2]string{"te", "trailers"}, "200"},
		{[2]string{"x-other", "1"}, "200"},
	} {
		rc.getOn(id, [][2]string{c.field})
		if got := rc.nextOn(id); got != c.want {
			t.Errorf("%s: %s: got %s, want %s", c.field[0], c.field[1], got, c.want)
		}
		id += 2
	}
	if len(ran) != 2 {
		t.Errorf("the handler ran %d times, want 2 (the valid requests only)", len(ran))
	}
}

// RFC 9113, 6.5.3: the values of a SETTINGS frame are processed in the
// order they appear, so a parameter may repeat and the last value holds
// (x/net closed the connection). Here the stream window ends at 3 bytes
// after 100, so the response's first DATA frame carries 3.
func TestRepeatedSettingIsProcessedInOrder(t *testing.T) {
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world")
	})
	if err := rc.fr.WriteSettings(Setting{ID: SettingInitialWindowSize, Val: 100}, Setting{ID: SettingInitialWindowSize, Val: 3}); err != nil {
		t.Fatal(err)
	}
	rc.get()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		switch f := f.(type) {
		case *GoAwayFrame:
			t.Fatalf("connection closed (GOAWAY %v)", f.ErrCode)
		case *SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *DataFrame:
			if got := string(f.Data()); got != "hel" {
				t.Fatalf("first DATA frame %q, want %q (a window of 3)", got, "hel")
			}
			return
		}
	}
}

type ctxKey struct{}

// The request's context (change 20, a stream context without
// context.WithCancel) behaves as x/net's: values come from the
// connection's context; it is live while the handler runs; a client's
// RST_STREAM ends it, and with it Done, Err, contexts derived from it and
// context.AfterFunc hooks, while a stopped hook does not run; the
// connection's context ending ends it too; once the handler returns it
// is done.
func TestStreamContext(t *testing.T) {
	connCtx, cancelConn := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "conn value"))
	defer cancelConn()
	type seen struct {
		value        any
		errBefore    error
		done, derive bool
		hookRan      bool
		stoppedRan   bool
		errAfter     error
		cause        error
	}
	results := make(chan seen, 2)
	started := make(chan context.Context, 2)
	rc := serveRawCtx(t, connCtx, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var s seen
		s.value, s.errBefore = ctx.Value(ctxKey{}), ctx.Err()
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		hook := make(chan struct{})
		context.AfterFunc(ctx, func() { close(hook) })
		stoppedRan := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { close(stoppedRan) })
		if !stop() {
			t.Error("stop of a registered hook reported false")
		}
		started <- ctx
		select {
		case <-ctx.Done():
			s.done = true
		case <-time.After(5 * time.Second):
		}
		select {
		case <-derived.Done():
			s.derive = true
		case <-time.After(5 * time.Second):
		}
		select {
		case <-hook:
			s.hookRan = true
		case <-time.After(5 * time.Second):
		}
		select {
		case <-stoppedRan:
			s.stoppedRan = true
		case <-time.After(20 * time.Millisecond):
		}
		s.errAfter, s.cause = ctx.Err(), context.Cause(ctx)
		results <- s
	})

	// Stream 1 ends by the client's reset.
	rc.getOn(1, nil)
	ctx1 := <-started
	if err := rc.fr.WriteRSTStream(1, ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	s := <-results
	want := seen{value: "conn value", done: true, derive: true, hookRan: true, errAfter: context.Canceled, cause: context.Canceled}
	if s != want {
		t.Errorf("reset stream: %+v, want %+v", s, want)
	}

	// Stream 3 ends by the connection's context.
	rc.getOn(3, nil)
	<-started
	cancelConn()
	s = <-results
	if s != want {
		t.Errorf("connection context cancelled: %+v, want %+v", s, want)
	}
	if err := ctx1.Err(); err != context.Canceled {
		t.Errorf("after the handler returned, Err() = %v", err)
	}
	select {
	case <-ctx1.Done():
	default:
		t.Error("after the handler returned, Done() is open")
	}
}

// A handler that never waits on its context (sluice's) registers nothing
// with the connection's: its stream context ends with the handler, and
// Err says so though the connection lives on.
func TestStreamContextUnwatched(t *testing.T) {
	got := make(chan context.Context, 1)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Context()
	})
	rc.get()
	if _, body := rc.response(); body != "" {
		t.Fatalf("body %q", body)
	}
	ctx := <-got
	sc := ctx.(*streamContext)
	sc.mu.Lock()
	registered := sc.stop != nil || sc.done != nil
	sc.mu.Unlock()
	if registered {
		t.Error("an unwatched stream context made a Done channel or registered with its parent")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if ctx.Err() != context.Canceled {
		t.Errorf("Err() = %v after the handler returned", ctx.Err())
	}
}

// Change 21: the server's Framer reuses its HEADERS frames and their
// field array. Reading a header block the decoder has seen (every field
// indexed) then allocates nothing; x/net made a HeadersFrame, a
// MetaHeadersFrame and a field array for each.
func TestServerFramerReusesHeaderFrames(t *testing.T) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	var wire bytes.Buffer
	wfr := NewFramer(&wire, nil)
	for id := uint32(1); id < 400; id += 2 {
		block.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.test"}, {":path", "/x"}, {"user-agent", "test"}, {"accept", "*/*"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := wfr.WriteHeaders(HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewFramer(nil, &wire)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.SetReuseFrames()
	read := func() {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if mh := f.(*MetaHeadersFrame); mh.PseudoValue("path") != "/x" || len(mh.RegularFields()) != 2 {
			t.Fatalf("decoded %v", mh.Fields)
		}
	}
	read() // the first block fills the dynamic table
	if allocs := testing.AllocsPerRun(100, read); allocs != 0 {
		t.Errorf("%.1f allocations per header block read, want 0", allocs)
	}
}

// Change 28: the server's Framer reuses its WINDOW_UPDATE frames too,
// which a client reading a long response sends every few KiB. Reading
// one allocates nothing; x/net made a WindowUpdateFrame for each.
func TestServerFramerReusesWindowUpdateFrames(t *testing.T) {
	var wire bytes.Buffer
	wfr := NewFramer(&wire, nil)
	for i := range 200 {
		if err := wfr.WriteWindowUpdate(uint32(i%2), uint32(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewFramer(nil, &wire)
	fr.SetReuseFrames()
	i := 0
	read := func() {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if wu := f.(*WindowUpdateFrame); wu.StreamID != uint32(i%2) || wu.Increment != uint32(i+1) {
			t.Fatalf("frame %d: stream %d, increment %d", i, wu.StreamID, wu.Increment)
		}
		i++
	}
	read()
	if allocs := testing.AllocsPerRun(100, read); allocs != 0 {
		t.Errorf("%.1f allocations per WINDOW_UPDATE read, want 0", allocs)
	}
}

// Change 28: a DATA frame split for the peer's frame size or its window
// keeps the rest in its own writeData, with the writer's done channel,
// where x/net allocated a new writeData for the rest of every split: the
// part written now is the one allocation left.
func TestConsumeKeepsTheRestInItsWriteData(t *testing.T) {
	st := &stream{sc: &serverConn{maxFrameSize: 16384}}
	data := make([]byte, 40000)
	done := make(chan error, 1)
	wd := &writeData{streamID: 1, p: data, endStream: true}
	consumed, rest, n := FrameWriteRequest{write: wd, stream: st, done: done}.Consume(1 << 20)
	if n != 2 {
		t.Fatalf("Consume returned %d frames, want 2", n)
	}
	if c := consumed.write.(*writeData); len(c.p) != 16384 || c.endStream || consumed.done != nil {
		t.Errorf("consumed: %d bytes, endStream %v, done %v; want 16384, false, nil", len(c.p), c.endStream, consumed.done)
	}
	if rest.write != wd || len(wd.p) != len(data)-16384 || !wd.endStream || rest.done != done {
		t.Errorf("rest: %p with %d bytes, endStream %v; want %p with %d bytes, endStream true, and the done channel", rest.write, len(wd.p), wd.endStream, wd, len(data)-16384)
	}
	split := func() {
		wd.p = data
		FrameWriteRequest{write: wd, stream: st, done: done}.Consume(1 << 20)
	}
	if allocs := testing.AllocsPerRun(100, split); allocs != 1 {
		t.Errorf("%.1f allocations per split, want 1", allocs)
	}
}

// With the frames and the field array reused, each request still gets
// exactly its own fields: a short block after a long one (past the array
// a Framer keeps), and trailers after a request's headers.
func TestReusedHeaderFramesKeepRequestsApart(t *testing.T) {
	got := make(chan http.Header, 4)
	rc := serveRaw(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h := r.Header.Clone()
		for k, v := range r.Trailer {
			h["Trailer-"+k] = v
		}
		got <- h
	})
	var many [][2]string
	for i := range 70 {
		many = append(many, [2]string{fmt.Sprintf("x-%d", i), fmt.Sprint(i)})
	}
	cases := []struct {
		fields [][2]string
		want   http.Header
	}{
		{[][2]string{{"a", "1"}, {"b", "2"}}, http.Header{"A": {"1"}, "B": {"2"}}},
		{many, nil},
		{[][2]string{{"c", "3"}}, http.Header{"C": {"3"}}},
	}
	for i, c := range cases {
		rc.getOn(uint32(2*i+1), c.fields)
		h := <-got
		want := c.want
		if want == nil {
			want = http.Header{}
			for _, f := range many {
				want[http.CanonicalHeaderKey(f[0])] = []string{f[1]}
			}
		}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("request %d: header %v, want %v", i, h, want)
		}
	}
	// A request with a body and trailers: HEADERS, DATA, HEADERS.
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.test"}, {":path", "/"}, {"trailer", "x-sum"}, {"d", "4"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := rc.fr.WriteHeaders(HeadersFrameParam{StreamID: 7, BlockFragment: b.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteData(7, false, []byte("body")); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	enc.WriteField(hpack.HeaderField{Name: "x-sum", Value: "42"})
	if err := rc.fr.WriteHeaders(HeadersFrameParam{StreamID: 7, BlockFragment: b.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	h := <-got
	want := http.Header{"D": {"4"}, "Trailer-X-Sum": {"42"}} // the Trailer field becomes r.Trailer
	if !reflect.DeepEqual(h, want) {
		t.Errorf("request with trailers: header %v, want %v", h, want)
	}
}
