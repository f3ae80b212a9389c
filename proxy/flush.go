package proxy

import (
	"net/http"
	"strings"

	"github.com/sluiceproxy/sluice/config"
)

// shouldStream decides whether a response is flushed to the client after
// every upstream read (true) or copied in large writes (false).
//
// With auto, a response streams when it has no Content-Length (chunked or
// read to close), when its type is one that only makes sense as a stream
// (server-sent events, NDJSON, gRPC), or when the upstream asks with
// X-Accel-Buffering: no. X-Accel-Buffering: yes asks for buffering and
// wins over the rest, as it does in nginx.
func shouldStream(mode config.Streaming, res *http.Response) bool {
	switch mode {
	case config.StreamAlways:
		return true
	case config.StreamNever:
		return false
	}
	switch strings.ToLower(strings.TrimSpace(res.Header.Get("X-Accel-Buffering"))) {
	case "no":
		return true
	case "yes":
		return false
	}
	if res.ContentLength < 0 {
		return true
	}
	return streamingType(res.Header.Get("Content-Type"))
}

// streamingType reports whether the media type of a Content-Type value
// is one that only makes sense as a stream. Only the type is read, not
// its parameters, and nothing is allocated: mime.ParseMediaType, which
// makes a map for the parameters, was 2 % of a small request's
// allocations.
func streamingType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	switch {
	case strings.EqualFold(mt, "text/event-stream"), strings.EqualFold(mt, "application/x-ndjson"),
		strings.EqualFold(mt, "application/grpc"):
		return true
	case len(mt) > len("application/grpc+") && strings.EqualFold(mt[:len("application/grpc+")], "application/grpc+"):
		return true
	}
	return false
}
