package proxy

import (
	"net/http"
	"time"

	"go.uber.org/zap"
)

// accessInfo is what an exchange learned for its access-log line.
type accessInfo struct {
	status   int
	bytesOut int64
	ttfb     time.Duration
	reason   closeReason
	upstream string // the backend that answered (the last one tried)
}

// requestLine is what the access log says of the client's request. It is
// taken when the exchange starts, so that a long stream does not keep the
// whole request (its struct, URL and header map, ~800 bytes) for its log
// line: nothing else holds it once the response head is out.
type requestLine struct {
	method, host, path, proto, remote string
}

// set fills l from r. It is not inlined: in ServeHTTP, which every held
// stream's handler sits under, its temporaries would grow the frame.
//
//go:noinline
func (l *requestLine) set(r *http.Request) {
	*l = requestLine{method: r.Method, host: r.Host, path: r.URL.Path, proto: r.Proto, remote: r.RemoteAddr}
}

// logRequest logs a request sluice answered itself, without an exchange.
func (t *table) logRequest(r *http.Request, rt *route, start time.Time, info accessInfo) {
	var line requestLine
	line.set(r)
	t.logAccess(&line, rt, start, info)
}

// logAccess writes the exchange's one access-log line. Exchanges that did
// not end cleanly are logged at Warn so they stand out.
func (t *table) logAccess(req *requestLine, rt *route, start time.Time, info accessInfo) {
	if t.access == nil {
		return
	}
	routeName, upstreamAddr := "", info.upstream
	if rt != nil {
		routeName = rt.name
	}
	fields := []zap.Field{
		zap.String("route", routeName),
		zap.String("method", req.method),
		zap.String("host", req.host),
		zap.String("path", req.path),
		zap.String("proto", req.proto),
		zap.String("remote", req.remote),
		zap.Int("status", info.status),
		zap.Int64("bytes_out", info.bytesOut),
		zap.Duration("duration", time.Since(start)),
		zap.Duration("ttfb", info.ttfb),
		zap.String("upstream", upstreamAddr),
		zap.String("close_reason", string(info.reason)),
	}
	switch info.reason {
	case reasonDone, reasonClientGone:
		t.access.Info("exchange", fields...)
	default:
		t.access.Warn("exchange", fields...)
	}
}
