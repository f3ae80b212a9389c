package proxy

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// useH2C makes t speak HTTP/2 with prior knowledge over plain TCP, as
// gRPC servers do: request and response bodies stream both ways at once
// and trailers pass as HTTP/2 trailers.
func useH2C(t *http.Transport) {
	t.TLSNextProto = nil
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	t.Protocols = &p
	t.HTTP2 = &http.HTTP2Config{
		// A dead h2c connection is found by PING, not by a stalled stream
		// that may legitimately be silent (a quiet gRPC stream).
		SendPingTimeout: 30 * time.Second,
		PingTimeout:     15 * time.Second,
	}
}

// isGRPC reports whether r is a gRPC call.
func isGRPC(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/grpc" || strings.HasPrefix(mt, "application/grpc+"))
}

// grpcDeadlinePassed reports whether r is a gRPC call whose deadline (its
// grpc-timeout header) has passed since start. A gRPC server resets a call
// whose deadline passed, and the client must then hear DEADLINE_EXCEEDED,
// not the UNAVAILABLE an upstream reset otherwise maps to.
func grpcDeadlinePassed(r *http.Request, start time.Time) bool {
	d, ok := grpcTimeout(r.Header.Get("Grpc-Timeout"))
	return ok && isGRPC(r) && time.Since(start) >= d
}

// grpcTimeout parses a grpc-timeout value: at most 8 digits and a unit
// (PROTOCOL-HTTP2.md in grpc/grpc).
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// grpcCode maps the HTTP status sluice would answer to the gRPC status a
// gRPC client understands (grpc/doc/http-grpc-status-mapping.md).
func grpcCode(status int) int {
	switch status {
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	case http.StatusRequestEntityTooLarge:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusNotFound:
		return 12 // UNIMPLEMENTED
	case 499:
		return 1 // CANCELLED
	}
	return 2 // UNKNOWN
}

// writeError answers an error sluice generated: a plain-text status, or,
// for a gRPC call, a trailers-only response with grpc-status, which is
// what gRPC clients read (they ignore HTTP status bodies).
func writeError(w http.ResponseWriter, r *http.Request, status int) {
	if !isGRPC(r) {
		http.Error(w, statusText(status), status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(grpcCode(status)))
	h.Set("Grpc-Message", "sluice: "+statusText(status))
	w.WriteHeader(http.StatusOK)
}

// grpcTrailersOnly reports a gRPC response whose status came in its
// headers (an error without messages): it must reach the client as one
// HEADERS frame that ends the stream, or clients report a missing status.
func grpcTrailersOnly(res *http.Response) bool {
	return res.Header.Get("Grpc-Status") != ""
}
