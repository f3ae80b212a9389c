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

// logAccess writes the exchange's one access-log line. Exchanges that did
// not end cleanly are logged at Warn so they stand out.
func (t *table) logAccess(r *http.Request, rt *route, start time.Time, info accessInfo) {
	if t.access == nil {
		return
	}
	routeName, upstreamAddr := "", info.upstream
	if rt != nil {
		routeName = rt.name
	}
	fields := []zap.Field{
		zap.String("route", routeName),
		zap.String("method", r.Method),
		zap.String("host", r.Host),
		zap.String("path", r.URL.Path),
		zap.String("proto", r.Proto),
		zap.String("remote", r.RemoteAddr),
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
