package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"
)

// requestLimits are the server-wide request checks (server.* keys).
type requestLimits struct {
	maxHeaderCount   int
	maxURILength     int
	allowUnderscores bool
}

// refusal is why a request is refused before routing: the status the
// client gets and the reason logged.
type refusal struct {
	status int
	reason string
}

// checkRequest decides whether a request may go anywhere near an
// upstream. net/http and x/net/http2 already refuse broken framing, bare
// CR/LF/NUL in values and invalid names on the wire; this repeats the
// value and name checks (both protocols, one rule) and adds sluice's own
// limits and trust rules. host is r.Host (HTTP/2: :authority), uri the
// request target as sent, h the header fields (net/http keeps Host out of
// h for HTTP/1.1; x/net leaves a Host field beside :authority in it).
//
// It is pure, for FuzzCheckRequest.
func checkRequest(l requestLimits, protoMajor int, host, uri string, h http.Header) (refusal, bool) {
	if l.maxURILength > 0 && len(uri) > l.maxURILength {
		return refusal{http.StatusRequestURITooLong, "uri longer than server.max_uri_length"}, false
	}
	// One walk of the map counts the fields and finds the first malformed
	// one; the count, then the host, are still reported before it.
	count := 0
	var malformed refusal
	for name, vv := range h {
		count += len(vv)
		if malformed.status == 0 {
			malformed = checkField(l, protoMajor, name, vv)
		}
	}
	if l.maxHeaderCount > 0 && count > l.maxHeaderCount {
		return refusal{http.StatusRequestHeaderFieldsTooLarge, "more header fields than server.max_header_count"}, false
	}
	if !validHost(host) {
		return refusal{http.StatusBadRequest, "invalid host"}, false
	}
	if malformed.status != 0 {
		return malformed, false
	}
	if hosts, ok := h["Host"]; ok {
		// RFC 9113 8.3.1: a Host field must equal :authority. HTTP/1.1
		// requests never get here with one: net/http moves it to r.Host
		// and refuses a repeated Host itself.
		if len(hosts) != 1 || !strings.EqualFold(hosts[0], host) {
			return refusal{http.StatusBadRequest, "host and :authority disagree"}, false
		}
	}
	if protoMajor >= 2 && host == "" {
		return refusal{http.StatusBadRequest, "missing :authority"}, false
	}
	return refusal{}, true
}

// checkField returns why a header field is malformed, or the zero
// refusal if it is not.
func checkField(l requestLimits, protoMajor int, name string, vv []string) refusal {
	if name == ":protocol" && protoMajor >= 2 {
		// RFC 8441 extended CONNECT: x/net hands the pseudo-header over
		// in the header map; proxy/connect.go reads it.
		return refusal{}
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return refusal{http.StatusBadRequest, "invalid header name"}
	}
	if !l.allowUnderscores && strings.IndexByte(name, '_') >= 0 {
		// WSGI and PHP map '-' and '_' both to '_': "X_Forwarded_For"
		// would pose as "X-Forwarded-For" (nginx ignores such headers by
		// default for the same reason).
		return refusal{http.StatusBadRequest, "underscore in header name"}
	}
	for _, v := range vv {
		if !httpguts.ValidHeaderFieldValue(v) {
			return refusal{http.StatusBadRequest, "invalid header value"}
		}
	}
	return refusal{}
}

// validHost accepts what may be a host with an optional port: no
// whitespace, control characters, '/', '@' or other characters that could
// make an upstream or a redirect read a different host.
func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']', c == '%':
		default:
			return false
		}
	}
	return true
}

// reasonRefused is the close_reason of a request sluice refused itself
// (limits, malformed or untrusted headers); the upstream never saw it.
const reasonRefused closeReason = "refused"

// refuse answers a request that fails checkRequest, before routing.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, t *table, rt *route, start time.Time, why refusal) {
	p.writeRefusal(w, r, rt, why)
	t.logRequest(r, rt, start, accessInfo{status: why.status, reason: reasonRefused})
}

// writeRefusal sends the error response. An HTTP/1.1 connection is closed
// after it: what follows a malformed request cannot be trusted to be the
// start of the next one.
func (p *Proxy) writeRefusal(w http.ResponseWriter, r *http.Request, rt *route, why refusal) {
	name := ""
	if rt != nil {
		name = rt.name
	}
	p.log.Debug("request refused", zap.String("reason", why.reason), zap.Int("status", why.status), zap.String("route", name), zap.String("remote", r.RemoteAddr))
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	http.Error(w, statusText(why.status), why.status)
}

// tooLarge reports whether the client's body crossed max_request_body.
func (b *requestBody) tooLarge() bool {
	if b == nil {
		return false
	}
	errp := b.err.Load()
	var mbe *http.MaxBytesError
	return errp != nil && errors.As(*errp, &mbe)
}

// malformed reports whether reading the client's body failed on its
// framing (bad chunk size, bare LF, ...) rather than on the client going
// away or a limit: net/http does not type those errors, so this is by
// elimination.
func (b *requestBody) malformed(r *http.Request) bool {
	if b == nil || r.Context().Err() != nil {
		return false
	}
	errp := b.err.Load()
	if errp == nil {
		return false
	}
	err := *errp
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe), errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF), errors.Is(err, context.Canceled), errors.Is(err, http.ErrBodyReadAfterClose):
		return false
	}
	return true
}
