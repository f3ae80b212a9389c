package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// recordSize is the size of one latency record: the upstream's write time
// in Unix nanoseconds and a sequence number, padded, newline-terminated.
const recordSize = 64

// upstream is the one backend every peer forwards to: a Go HTTP/1.1
// server on loopback with an endpoint per workload.
type upstream struct {
	srv  *http.Server
	ln   net.Listener
	addr string

	sseOpen  atomic.Int64 // open /sse exchanges
	accepted atomic.Int64 // connections accepted, for connection reuse

	mu       sync.Mutex
	cancels  map[string]chan time.Time // /cancel id -> time the upstream saw the close
	held     chan struct{}             // closed to end every /sse exchange
	heldOnce *sync.Once
}

func startUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{ln: ln, addr: ln.Addr().String(), cancels: map[string]chan time.Time{}}
	u.resetHeld()
	mux := http.NewServeMux()
	mux.HandleFunc("/chunks", u.chunks)
	mux.HandleFunc("/sse", u.sse)
	mux.HandleFunc("/small", serveSmall)
	mux.HandleFunc("/big", u.big)
	mux.HandleFunc("/upload", serveUpload)
	mux.HandleFunc("/cancel", u.cancel)
	mux.HandleFunc("/ttfb", u.ttfb)
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.accepted.Add(1)
			}
		}}
	go u.srv.Serve(ln)
	return u, nil
}

func (u *upstream) close() { u.srv.Close() }

func (u *upstream) resetHeld() {
	u.mu.Lock()
	u.held = make(chan struct{})
	u.heldOnce = new(sync.Once)
	u.mu.Unlock()
}

// releaseHeld ends every open /sse exchange from the upstream side.
func (u *upstream) releaseHeld() {
	u.mu.Lock()
	ch, once := u.held, u.heldOnce
	u.mu.Unlock()
	once.Do(func() { close(ch) })
}

func intParam(r *http.Request, name string, def int64) int64 {
	if v, err := strconv.ParseInt(r.URL.Query().Get(name), 10, 64); err == nil && v >= 0 {
		return v
	}
	return def
}

// chunks writes n records, gap apart, each flushed on its own, carrying
// the time just before its write.
func (u *upstream) chunks(w http.ResponseWriter, r *http.Request) {
	n := intParam(r, "n", 300)
	gap := time.Duration(intParam(r, "gap_us", 5000)) * time.Microsecond
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	f.Flush()
	rec := make([]byte, recordSize)
	for i := int64(0); i < n; i++ {
		if i > 0 {
			time.Sleep(gap)
		}
		encodeRecord(rec, time.Now().UnixNano(), i)
		if _, err := w.Write(rec); err != nil {
			return
		}
		f.Flush()
	}
}

func encodeRecord(rec []byte, ts, seq int64) {
	s := fmt.Sprintf("%020d %08d ", ts, seq)
	copy(rec, s)
	for i := len(s); i < recordSize-1; i++ {
		rec[i] = 'x'
	}
	rec[recordSize-1] = '\n'
}

func decodeRecord(rec []byte) (ts, seq int64, err error) {
	if len(rec) < 29 || rec[recordSize-1] != '\n' {
		return 0, 0, fmt.Errorf("bad record %q", rec)
	}
	ts, err = strconv.ParseInt(string(rec[:20]), 10, 64)
	if err != nil {
		return 0, 0, err
	}
	seq, err = strconv.ParseInt(string(rec[21:29]), 10, 64)
	return ts, seq, err
}

// sse opens an event stream, sends one comment so the client knows it is
// open, then stays silent until the client or the bench ends it.
func (u *upstream) sse(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	held := u.held
	u.mu.Unlock()
	u.sseOpen.Add(1)
	defer u.sseOpen.Add(-1)
	w.Header().Set("Cache-Control", "no-cache")
	if !writeHeld(w, r, held) {
		return
	}
	select {
	case <-r.Context().Done():
	case <-held:
	case <-time.After(10 * time.Minute):
	}
}

// heldEventGap is the time between a held stream's events (-held-events).
const heldEventGap = 300 * time.Millisecond

// writeHeld opens a held stream: the head and one comment, then the
// events its request asks for (?events=N), heldEventGap apart, each
// flushed on its own. It reports whether the stream is still open.
func writeHeld(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) bool {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, heldComment); err != nil {
		return false
	}
	w.(http.Flusher).Flush()
	for i := range int(intParam(r, "events", 0)) {
		select {
		case <-r.Context().Done():
			return false
		case <-stop:
			return false
		case <-time.After(heldEventGap):
		}
		if _, err := io.WriteString(w, heldEvent(i)); err != nil {
			return false
		}
		w.(http.Flusher).Flush()
	}
	return true
}

const heldComment = ": open\n\n"

func heldEvent(i int) string { return fmt.Sprintf("data: %d\n\n", i) }

// heldBytes is what a held stream with n events sends before it is quiet.
func heldBytes(n int) int {
	size := len(heldComment)
	for i := range n {
		size += len(heldEvent(i))
	}
	return size
}

// heldTraffic says what a held stream gets before it is quiet.
func heldTraffic(events int) string {
	if events == 0 {
		return "one comment"
	}
	return fmt.Sprintf("one comment and %d events %v apart", events, heldEventGap)
}

const (
	cancelBody = "data: first\n\n"
	ttfbBody   = "data: hello\n\n"
)

var smallBody = []byte("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456\n\n\n")

// serveSmall answers a small request: the upstream's answer, and the
// h2floor experiment's own.
func serveSmall(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(smallBody)))
	w.Write(smallBody)
}

// big sends bytes (default 2 GiB) as a chunked response in writes of
// write bytes (default 64 KiB).
func (u *upstream) big(w http.ResponseWriter, r *http.Request) {
	total := intParam(r, "bytes", 2<<30)
	size := intParam(r, "write", 64<<10)
	if size < 1 || size > 16<<20 {
		size = 64 << 10
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	for total > 0 {
		n := int64(len(buf))
		if n > total {
			n = total
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return
		}
		total -= n
	}
}

// serveUpload reads a request body to its end and answers with the
// number of bytes it read, which the client checks against what it sent.
// It reads in large pieces, as a Django or Go handler saving an upload
// would, so the upstream is not what limits the transfer.
func serveUpload(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := r.Body.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("after %d bytes: %v", n, err), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, strconv.FormatInt(n, 10))
}

// expectCancel registers id; the returned channel gets the time the
// upstream saw that exchange's connection close.
func (u *upstream) expectCancel(id string) chan time.Time {
	ch := make(chan time.Time, 1)
	u.mu.Lock()
	u.cancels[id] = ch
	u.mu.Unlock()
	return ch
}

func (u *upstream) forgetCancel(id string) {
	u.mu.Lock()
	delete(u.cancels, id)
	u.mu.Unlock()
}

// cancel streams one chunk, then waits for the exchange to be closed by
// the peer, and records when. net/http cancels the request context as
// soon as its background read sees the connection close.
func (u *upstream) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(cancelBody))
	w.(http.Flusher).Flush()
	ctx, stop := context.WithTimeout(r.Context(), 30*time.Second)
	defer stop()
	<-ctx.Done()
	if r.Context().Err() == nil {
		return
	}
	seen := time.Now()
	u.mu.Lock()
	ch := u.cancels[id]
	u.mu.Unlock()
	if ch != nil {
		ch <- seen
	}
}

// ttfb answers at once with a streamed (chunked) body of one chunk.
func (u *upstream) ttfb(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(ttfbBody))
	w.(http.Flusher).Flush()
}
