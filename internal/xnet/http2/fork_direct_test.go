package http2

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

// readData reads frames until a DATA frame of stream 1 and returns its
// payload; it fails the test on a DATA frame before the stream's final
// HEADERS, or on a reset.
func (rc *rawClient) readData(sawHeaders *bool) string {
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
				*sawHeaders = true
			}
		case *DataFrame:
			if !*sawHeaders {
				rc.t.Fatalf("DATA frame %q before the response's HEADERS", f.Data())
			}
			return string(f.Data())
		case *RSTStreamFrame:
			rc.t.Fatalf("stream reset: %v", f.ErrCode)
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
	tp := &tryPipe{take: true}
	next := make(chan struct{})
	handler := make(chan uint64, 1)
	rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, func(w http.ResponseWriter, r *http.Request) {
		handler <- curGoroutineID()
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range chunks {
			<-next
			fmt.Fprintf(w, "chunk %d", i)
			w.(http.Flusher).Flush()
		}
	})
	rc.get()
	var sawHeaders bool
	for i := range chunks {
		next <- struct{}{}
		if got, want := rc.readData(&sawHeaders), fmt.Sprintf("chunk %d", i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	g := <-handler
	tp.mu.Lock()
	direct := 0
	for _, w := range tp.writers {
		if w == g {
			direct++
		}
	}
	tp.mu.Unlock()
	if direct < chunks/2 {
		t.Errorf("%d of %d chunks written on the handler's goroutine, want at least %d", direct, chunks, chunks/2)
	}
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
		var sawHeaders bool
		var got []string
		for range 3 {
			got = append(got, rc.readData(&sawHeaders))
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
	headers := map[uint32]bool{}
	for data := 0; data < streams*events; {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d streams' events: %v", data, err)
		}
		switch f := f.(type) {
		case *SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *HeadersFrame:
			rc.fields = map[string]string{}
			rc.decode(f)
			headers[f.StreamID] = true
		case *DataFrame:
			if !headers[f.StreamID] {
				t.Fatalf("stream %d: DATA %q before its HEADERS", f.StreamID, f.Data())
			}
			data++
		case *RSTStreamFrame:
			t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		}
	}
}

// A stream's first chunk, and a chunk after a quiet spell longer than
// directWindow, go through the serve loop: an event stream that is idle
// between rare events keeps its handler's stack small.
func TestQuietStreamChunkGoesThroughTheServeLoop(t *testing.T) {
	tp := &tryPipe{take: true}
	next := make(chan struct{})
	handler := make(chan uint64, 1)
	rc := serveRawOn(t, func(c net.Conn) net.Conn { tp.Conn = c; return tp }, func(w http.ResponseWriter, r *http.Request) {
		handler <- curGoroutineID()
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range 3 {
			<-next
			fmt.Fprintf(w, "chunk %d", i)
			w.(http.Flusher).Flush()
		}
	})
	rc.get()
	g := <-handler
	direct := func() int {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		n := 0
		for _, w := range tp.writers {
			if w == g {
				n++
			}
		}
		return n
	}
	var sawHeaders bool
	for i := range 3 {
		if i == 2 {
			time.Sleep(directWindow + 50*time.Millisecond)
		}
		before := direct()
		next <- struct{}{}
		if got, want := rc.readData(&sawHeaders), fmt.Sprintf("chunk %d", i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if i != 1 && direct() != before {
			t.Errorf("chunk %d was written on the handler's goroutine", i)
		}
	}
}
