package proxy

import (
	"mime"
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
	ct := res.Header.Get("Content-Type")
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "text/event-stream", mt == "application/x-ndjson":
		return true
	case mt == "application/grpc", strings.HasPrefix(mt, "application/grpc+"):
		return true
	}
	return false
}
