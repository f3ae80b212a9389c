package http2

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// A windowUpdate is one WINDOW_UPDATE frame the server wrote, and which of
// its writes to the connection carried it.
type windowUpdate struct {
	write    int
	streamID uint32
	incr     uint32
}

// updateRecorder is a tryPipe that notes the WINDOW_UPDATE frames in each
// write the server makes to the connection.
type updateRecorder struct {
	*tryPipe
	mu      sync.Mutex
	writes  int
	updates []windowUpdate
}

func (r *updateRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes++
	// A write is whole frames here: the server writes no frame larger
	// than its buffer in these tests.
	for b := p; len(b) >= frameHeaderLen; {
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if len(b) < frameHeaderLen+n {
			break
		}
		if FrameType(b[3]) == FrameWindowUpdate && n == 4 {
			r.updates = append(r.updates, windowUpdate{
				write:    r.writes,
				streamID: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
				incr:     binary.BigEndian.Uint32(b[9:13]) & (1<<31 - 1),
			})
		}
		b = b[frameHeaderLen+n:]
	}
	r.mu.Unlock()
	return r.tryPipe.Write(p)
}

// awaitWindow reads frames until the server's WINDOW_UPDATEs for stream id
// add up to at least n bytes.
func (rc *rawClient) awaitWindow(id uint32, n int) {
	rc.t.Helper()
	for back := 0; back < n; {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("reading the updates (%d bytes back): %v", back, err)
		}
		if wu, ok := f.(*WindowUpdateFrame); ok && wu.StreamID == id {
			back += int(wu.Increment)
		}
	}
}

// A handler reading an upload 16 KiB at a time gets the client's window
// back in updates of inflowMinRefresh bytes, and each connection update
// goes out in the same write as the stream's. x/net sent both after every
// read (each covered 16 KiB, over its 4 KiB minimum), and each took a
// write of its own once frames were written without the writer goroutine:
// 64 writes for this upload where there are now 8.
func TestBodyReadWindowUpdatesAreFewAndShareAWrite(t *testing.T) {
	const frame, total = 16 << 10, 512 << 10
	rec := &updateRecorder{tryPipe: &tryPipe{take: true}}
	handlerErr := make(chan error, 1)
	rc := serveRawOn(t, func(c net.Conn) net.Conn { rec.Conn = c; return rec }, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, frame)
		var err error
		for got := 0; got < total && err == nil; {
			var n int
			n, err = io.ReadFull(r.Body, buf)
			got += n
		}
		if err == nil {
			_, err = io.Copy(io.Discard, r.Body)
		}
		handlerErr <- err
	})
	rc.postOn(1)
	// Within the server's initial windows (1 MiB each), so the client
	// needs none of the updates to send it all.
	payload := bytes.Repeat([]byte("u"), frame)
	for range total / frame {
		if err := rc.fr.WriteData(1, false, payload); err != nil {
			t.Fatal(err)
		}
	}
	// The stream stays open until the client has its window back: an
	// update made after END_STREAM is only the connection's.
	want := total / inflowMinRefresh
	rc.awaitWindow(1, total)
	rc.fr.WriteData(1, true, nil)
	rc.response()
	if err := <-handlerErr; err != nil {
		t.Fatalf("handler: %v", err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var stream, conn []windowUpdate
	for _, u := range rec.updates {
		if u.streamID == 1 {
			stream = append(stream, u)
		} else if u.streamID == 0 && u.incr < 1<<20-65535 {
			// Not the update that opens the connection's window.
			conn = append(conn, u)
		}
	}
	if len(stream) != want || len(conn) != want {
		t.Fatalf("%d stream and %d connection updates for %d KiB read, want %d each: %v", len(stream), len(conn), total>>10, want, rec.updates)
	}
	for i, u := range stream {
		if u.incr != inflowMinRefresh || conn[i].incr != inflowMinRefresh {
			t.Errorf("update %d: stream %d, connection %d bytes, want %d", i, u.incr, conn[i].incr, inflowMinRefresh)
		}
		if conn[i].write != u.write {
			t.Errorf("update %d: the stream's went in write %d, the connection's in write %d", i, u.write, conn[i].write)
		}
	}
}

// When either of a body read's updates is due, the other's unsent bytes
// go with it, in the same write. Here a second upload starts while the
// connection already holds 48 KiB of unsent window from the first, so the
// connection's updates fall due three reads before the stream's. Sent
// only when due, each update took a write of its own from then on, and
// the stream's doubling rule (sent early when the client's window runs
// low) put real uploads out of step in the same way: 30k writes of one
// update each for 1 GiB, where there are now 17k of two.
func TestBodyReadUpdatesGoTogether(t *testing.T) {
	const frame, held, total = 16 << 10, 48 << 10, 256 << 10
	rec := &updateRecorder{tryPipe: &tryPipe{take: true}}
	holding := make(chan struct{})
	handlerErr := make(chan error, 2)
	rc := serveRawOn(t, func(c net.Conn) net.Conn { rec.Conn = c; return rec }, func(w http.ResponseWriter, r *http.Request) {
		n := total
		if r.URL.Path == "/hold" {
			n = held
		}
		buf := make([]byte, frame)
		var err error
		for got := 0; got < n && err == nil; got += frame {
			_, err = io.ReadFull(r.Body, buf)
		}
		if r.URL.Path == "/hold" {
			close(holding)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, r.Body)
		}
		handlerErr <- err
	})
	payload := bytes.Repeat([]byte("u"), frame)
	send := func(id uint32, n int) {
		t.Helper()
		for range n / frame {
			if err := rc.fr.WriteData(id, false, payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	rc.postTo(1, "/hold")
	send(1, held)
	<-holding
	rc.postTo(3, "/")
	send(3, total)
	// The connection's update is due at stream 3's first read (48 + 16
	// KiB), and then every fourth read, as is the stream's if it goes
	// along: 16 + 3*64 KiB back to stream 3. Sent only when due, the
	// stream's 4*64 KiB cover that too.
	rc.awaitWindow(3, frame+3*inflowMinRefresh)
	rc.fr.WriteData(3, true, nil)
	rc.fr.WriteData(1, true, nil)
	rc.response()
	for range 2 {
		if err := <-handlerErr; err != nil {
			t.Fatalf("handler: %v", err)
		}
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	byWrite := map[int][]windowUpdate{}
	var writes []int
	for _, u := range rec.updates {
		if u.streamID == 0 && u.incr >= 1<<20-65535 {
			continue // the update that opens the connection's window
		}
		if byWrite[u.write] == nil {
			writes = append(writes, u.write)
		}
		byWrite[u.write] = append(byWrite[u.write], u)
	}
	if len(writes) < 4 {
		t.Fatalf("updates in %d writes, want at least 4: %v", len(writes), rec.updates)
	}
	for _, w := range writes[:4] {
		us := byWrite[w]
		if len(us) != 2 || us[0].streamID != 0 || us[1].streamID != 3 {
			t.Errorf("write %d carried %v, want the connection's update and stream 3's", w, us)
		}
	}
	if first := byWrite[writes[0]]; len(first) == 2 && (first[0].incr != held+frame || first[1].incr != frame) {
		t.Errorf("first updates: %v, want %d bytes for the connection and %d for stream 3", first, held+frame, frame)
	}
}
