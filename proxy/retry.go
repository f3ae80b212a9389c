package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// dialError is a failure to connect to a backend: nothing of the request
// was sent, so it is safe to send it elsewhere.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connecting to upstream: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errNoBackend means every backend of the route is down.
var errNoBackend = errors.New("no healthy backend")

// sendBody is the request body as the transport sees it. It counts what
// was read, and while a retry is still possible it keeps the transport's
// Close (which it calls on every failure) from closing the client's body.
type sendBody struct {
	rc   io.ReadCloser
	read atomic.Int64

	mu        sync.Mutex
	hold      bool
	wantClose bool
}

func (b *sendBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *sendBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hold {
		b.wantClose = true
		return nil
	}
	return b.rc.Close()
}

// release ends the hold; a Close that came during it happens now.
func (b *sendBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hold = false
	if b.wantClose {
		b.rc.Close()
	}
}

// isDialError reports whether err is a dialError: nothing reached the
// backend. (Its own function: errors.As's target escapes, and in send it
// would be allocated for every request.)
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// send sends out to a backend of the route's pool and returns the
// response, retrying on another backend while the route's retry policy
// allows it. The caller releases the returned backend when the exchange
// ends. A nil backend comes with errNoBackend.
func (p *Proxy) send(ex *exchange, r, out *http.Request, sb *sendBody) (*http.Response, *backend, string, error) {
	rt := ex.rt
	pl := rt.pool
	var tried []*backend
	if sb != nil {
		sb.hold = rt.retryTries > 1
		defer sb.release()
	}
	b, setCookie := pl.pick(r, nil)
	if b == nil {
		return nil, nil, "", errNoBackend
	}
	for {
		tried = append(tried, b)
		b.active.Add(1)
		out.URL.Host = b.up.urlHost
		res, err := b.up.transport.RoundTrip(out)

		canRetry := len(tried) < rt.retryTries && time.Since(ex.start) < rt.retryWithin &&
			ex.expiredReason() == "" && !ex.clientGone()
		switch {
		case err == nil && res.StatusCode != http.StatusBadGateway && res.StatusCode != http.StatusServiceUnavailable:
			if res.StatusCode == http.StatusGatewayTimeout {
				pl.failed(b, "status 504")
			}
			return res, b, setCookie, nil
		case err == nil:
			pl.failed(b, "status "+res.Status)
			// A body, even one fully sent, is gone: it is not kept.
			if !canRetry || !idempotent(out.Method) || sb != nil {
				return res, b, setCookie, nil
			}
		case isDialError(err):
			pl.failed(b, err.Error())
			if !canRetry || (sb != nil && sb.read.Load() > 0) {
				return nil, b, "", err
			}
		default:
			if ex.expiredReason() == "" && !ex.clientGone() {
				pl.failed(b, err.Error())
			}
			return nil, b, "", err
		}
		next, nextCookie := pl.pick(r, tried)
		if next == nil {
			// No other healthy backend: the client gets this answer.
			return res, b, setCookie, err
		}
		if res != nil {
			res.Body.Close()
		}
		b.active.Add(-1)
		p.logRetry(rt, b, next, len(tried)+1, res, err)
		b, setCookie = next, nextCookie
	}
}

// logRetry is out of line so that send's frame, which is on the stack of
// every exchange, does not carry its fields.
func (p *Proxy) logRetry(rt *route, from, next *backend, try int, res *http.Response, err error) {
	p.log.Debug("retrying on another backend", zap.String("route", rt.name),
		zap.String("upstream", from.up.name), zap.String("next", next.up.name),
		zap.Int("try", try), zap.Int("status", statusOf(res)), zap.NamedError("cause", err))
}

func statusOf(res *http.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}
