package proxy

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// closeReason says how an exchange ended; it is the access log's
// close_reason field.
type closeReason string

const (
	reasonDone          closeReason = "done"
	reasonClientGone    closeReason = "client_gone"
	reasonIdleTimeout   closeReason = "idle_timeout"
	reasonTotalTimeout  closeReason = "total_timeout"
	reasonHeaderTimeout closeReason = "header_timeout"
	reasonUpstreamError closeReason = "upstream_error"
	reasonShutdown      closeReason = "shutdown"
)

// exchange is one request/response through the proxy. It is the upstream
// request's context (upctx.go), and what ends it — a timeout (kept by
// the Proxy's timing wheel, live.go), the client going, a shutdown —
// closes the upstream side at once.
type exchange struct {
	start time.Time
	rt    *route
	w     http.ResponseWriter
	line  requestLine // for the access log, so the request need not be kept

	// The upstream context's state (upctx.go). It has a lock of its own
	// because its hooks run outside it and may ask for Err. A quiet
	// stream keeps the exchange, so its fields are packed: ended, next to
	// the bools of mu, is guarded by cmu.
	parent     context.Context // the client request's context
	stopParent func() bool     // unregisters from parent; nil when w's stream holds the hook (watchClient)
	done       chan struct{}   // made on the first Done call
	hooks      *afterHook      // run when the upstream context ends
	closers    []io.Closer     // closed when the upstream context ends (CloseOnEnd); in closerBuf unless more than one
	closerBuf  [1]io.Closer
	cmu        sync.Mutex

	prev, next *exchange // in live, guarded by live.mu

	// lastActive is the time of the last byte moved in either direction,
	// as an offset from start, so touch is one atomic store.
	lastActive      atomic.Int64
	headersIn       atomic.Bool // upstream response headers arrived
	requestBodyDone atomic.Bool // client request body read to the end (or none)

	mu         sync.Mutex // guards the fields below against the sweeper and Abort
	ended      bool       // guarded by cmu: the upstream context ended
	clientLeft bool       // guarded by cmu: it ended because the client's stream or request did
	finished   bool
	headersOut bool  // response headers written to the client
	lslot      int32 // guarded by live.mu: which list of live (live.go)
	expired    closeReason
	onExpire   func() // closes hijacked connections of an upgrade
}

// newExchange starts an exchange for a request whose context is parent,
// and registers it in live, which keeps its timeouts and which Abort
// ends; finish unregisters it.
func newExchange(parent context.Context, live *liveSet, rt *route, w http.ResponseWriter, start time.Time) *exchange {
	ex := &exchange{start: start, rt: rt, w: w, parent: parent}
	ex.watchClient()
	if !live.add(ex) {
		ex.expire(reasonShutdown)
	}
	return ex
}

// touch records activity for the idle timeout. It is on the per-chunk
// path, so it is one atomic store and no timer reset.
func (ex *exchange) touch() {
	ex.lastActive.Store(int64(time.Since(ex.start)))
}

// deadline says, at now (an offset from start), whether a timeout has
// passed (reason: total, then response_header, then idle), and if not,
// when to look again (an offset from start; negative: never, no timeout
// applies any more). It reads only atomics and the route, so the timing
// wheel calls it under its lock. Waiting for response headers after the
// request body is complete is the response_header timeout's job, not
// idle's: the idle check is then put off by a whole idle period.
func (ex *exchange) deadline(now time.Duration) (at time.Duration, reason closeReason) {
	at = -1
	if total := ex.rt.total; total > 0 {
		if now >= total {
			return 0, reasonTotalTimeout
		}
		at = total
	}
	if rh := ex.rt.responseHeader; rh > 0 && !ex.headersIn.Load() {
		if now >= rh {
			return 0, reasonHeaderTimeout
		}
		if at < 0 || rh < at {
			at = rh
		}
	}
	if idle := ex.rt.idle; idle > 0 {
		var idleAt time.Duration
		if !ex.headersIn.Load() && ex.requestBodyDone.Load() {
			idleAt = now + idle
		} else {
			idleAt = time.Duration(ex.lastActive.Load()) + idle
			if now >= idleAt {
				return 0, reasonIdleTimeout
			}
		}
		if at < 0 || idleAt < at {
			at = idleAt
		}
	}
	return at, ""
}

// expire ends the exchange for reason: the upstream exchange is cancelled
// (the transport closes its connection), and if the response is already
// under way the client stream is reset at once, even when the handler is
// blocked writing to a client that stopped reading.
func (ex *exchange) expire(reason closeReason) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.finished || ex.expired != "" {
		return
	}
	ex.expired = reason
	ex.cancelUpstream()
	if ex.onExpire != nil {
		ex.onExpire()
	} else if ex.headersOut {
		_ = http.NewResponseController(ex.w).SetWriteDeadline(time.Now())
	}
}

func (ex *exchange) expiredReason() closeReason {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.expired
}

// gotHeaders records that the upstream's response head arrived (or that
// none will): the response_header timeout no longer applies.
func (ex *exchange) gotHeaders() {
	ex.headersIn.Store(true)
}

func (ex *exchange) markHeadersOut() {
	ex.mu.Lock()
	ex.headersOut = true
	ex.mu.Unlock()
}

// setOnExpire installs the close action of a hijacked upgrade; it reports
// false if the exchange already expired, in which case the caller closes.
func (ex *exchange) setOnExpire(f func()) bool {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.expired != "" {
		return false
	}
	ex.onExpire = f
	return true
}

// finish leaves live (and so its timing wheel); after it the exchange
// never touches the ResponseWriter again.
func (ex *exchange) finish(live *liveSet) {
	ex.mu.Lock()
	ex.finished = true
	ex.mu.Unlock()
	live.remove(ex)
	ex.unwatchClient()
	ex.cancelUpstream()
}

// requestBody streams the client's request body upstream and counts its
// reads as activity for the idle timeout.
type requestBody struct {
	io.ReadCloser
	ex  *exchange
	err atomic.Pointer[error] // a read error other than EOF: the client failed
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.ex.touch()
	}
	if err == io.EOF {
		b.ex.requestBodyDone.Store(true)
	} else if err != nil {
		b.err.Store(&err)
	}
	return n, err
}
