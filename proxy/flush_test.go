package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluiceproxy/sluice/config"
)

// res is an upstream response with a Content-Length (-1: none) and the
// headers kv, name then value.
func res(length int64, kv ...string) *http.Response {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return &http.Response{ContentLength: length, Header: h}
}

func TestShouldStream(t *testing.T) {
	for _, c := range []struct {
		name string
		mode config.Streaming
		res  *http.Response
		want bool
	}{
		{"chunked", config.StreamAuto, res(-1), true},
		{"fixed length html", config.StreamAuto, res(100, "Content-Type", "text/html"), false},
		{"sse with charset", config.StreamAuto, res(100, "Content-Type", "text/event-stream; charset=utf-8"), true},
		{"SSE upper case", config.StreamAuto, res(100, "Content-Type", "Text/Event-Stream"), true},
		{"ndjson", config.StreamAuto, res(100, "Content-Type", "application/x-ndjson"), true},
		{"grpc", config.StreamAuto, res(100, "Content-Type", "application/grpc"), true},
		{"grpc+proto", config.StreamAuto, res(100, "Content-Type", "application/grpc+proto"), true},
		{"grpc-web is not grpc", config.StreamAuto, res(100, "Content-Type", "application/grpc-web"), false},
		{"json", config.StreamAuto, res(100, "Content-Type", "application/json"), false},
		{"bad content type", config.StreamAuto, res(100, "Content-Type", ";;;"), false},
		{"accel no", config.StreamAuto, res(100, "X-Accel-Buffering", "no"), true},
		{"accel yes beats chunked", config.StreamAuto, res(-1, "X-Accel-Buffering", "yes"), false},
		{"accel yes beats sse", config.StreamAuto, res(-1, "Content-Type", "text/event-stream", "X-Accel-Buffering", "Yes"), false},
		{"always", config.StreamAlways, res(100, "Content-Type", "text/html", "X-Accel-Buffering", "yes"), true},
		{"never", config.StreamNever, res(-1, "Content-Type", "text/event-stream"), false},
	} {
		if got := shouldStream(c.mode, c.res); got != c.want {
			t.Errorf("%s: shouldStream = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestNextBufSize(t *testing.T) {
	if nextBufSize(smallBufSize, smallBufSize) != largeBufSize {
		t.Error("a full small read should move to the large buffer")
	}
	if nextBufSize(100, largeBufSize) != smallBufSize {
		t.Error("a short read should move back to the small buffer")
	}
	if nextBufSize(largeBufSize, largeBufSize) != largeBufSize {
		t.Error("full large reads should stay large")
	}
	if nextBufSize(smallBufSize+1, largeBufSize) != largeBufSize {
		t.Error("a large read of more than the small buffer holds should stay large")
	}
	if nextBufSize(smallBufSize-1, largeBufSize) != smallBufSize {
		t.Error("a large read of less than the small buffer holds should move back")
	}
}

// TestWriteHeadFollowsAccelBuffering: the upstream's X-Accel-Buffering
// decides whether the response streams, although it is not forwarded.
func TestWriteHeadFollowsAccelBuffering(t *testing.T) {
	for _, c := range []struct {
		name   string
		res    *http.Response
		stream bool
	}{
		{"no on a sized body", res(100, "Content-Type", "text/html", "X-Accel-Buffering", "no"), true},
		{"yes on an event stream", res(-1, "Content-Type", "text/event-stream", "X-Accel-Buffering", "yes"), false},
	} {
		c.res.StatusCode = http.StatusOK
		var live liveSet
		ex := newExchange(context.Background(), &live, &route{streaming: config.StreamAuto}, httptest.NewRecorder(), time.Now())
		w := httptest.NewRecorder()
		_, flusher, _ := (&Proxy{}).writeHead(ex, w, httptest.NewRequest("GET", "/", nil), &answer{res: c.res}, &accessInfo{})
		if (flusher != nil) != c.stream {
			t.Errorf("%s: streams %v, want %v", c.name, flusher != nil, c.stream)
		}
		if w.Header().Get("X-Accel-Buffering") != "" {
			t.Errorf("%s: X-Accel-Buffering forwarded", c.name)
		}
		ex.finish(&live)
	}
}

// releasingWriter records when the handler releases its request, as
// sluice's HTTP/2 server lets it (internal/xnet's ReleaseRequest).
type releasingWriter struct {
	*httptest.ResponseRecorder
	released      bool
	headOutBefore bool // the head was written when the request was released
}

func (w *releasingWriter) ReleaseRequest() {
	w.released, w.headOutBefore = true, w.ResponseRecorder.Code != 0 && w.ResponseRecorder.Flushed
}

// TestWriteHeadReleasesRequest: once the head is out (flushed, for a
// stream), the server is told the handler is done with the request, so
// that a long stream does not keep it.
func TestWriteHeadReleasesRequest(t *testing.T) {
	var live liveSet
	ex := newExchange(context.Background(), &live, &route{streaming: config.StreamAuto}, httptest.NewRecorder(), time.Now())
	r := res(-1, "Content-Type", "text/event-stream")
	r.StatusCode = http.StatusOK
	w := &releasingWriter{ResponseRecorder: httptest.NewRecorder()}
	(&Proxy{}).writeHead(ex, w, httptest.NewRequest("GET", "/", nil), &answer{res: r}, &accessInfo{})
	if !w.released || !w.headOutBefore {
		t.Errorf("released %v, with the head out and flushed %v; want both", w.released, w.headOutBefore)
	}
	ex.finish(&live)
}
