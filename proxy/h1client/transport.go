// Package h1client is an HTTP/1.1 client transport that runs each exchange
// in the caller's goroutine: no reader or writer goroutine per connection,
// a read buffer taken from a pool only while bytes are buffered, and a
// response body that can wait for data without any buffer. A goroutine is
// started only to stream a request body, so the response can be read
// while the body still goes up.
package h1client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults for the zero values of Transport's fields.
const (
	DefaultMaxIdleConns           = 256
	DefaultIdleConnTimeout        = 90 * time.Second
	DefaultExpectContinueTimeout  = time.Second
	DefaultMaxResponseHeaderBytes = 1 << 20
)

// maxWriteWait is how long a finished response waits for its request body
// to be written before the connection is given up rather than reused, as
// net/http's maxWriteWaitBeforeConnReuse.
const maxWriteWait = 50 * time.Millisecond

// Transport sends HTTP/1.1 requests over connections from Dial and keeps
// them alive in a LIFO pool. It is safe for concurrent use.
type Transport struct {
	// Dial opens a connection to the upstream. Its error is returned
	// unchanged (wrapped with %w at most), so the caller can tell that
	// nothing was sent.
	Dial func(ctx context.Context) (net.Conn, error)
	// MaxIdleConns bounds the idle pool. Default: 256.
	MaxIdleConns int
	// IdleConnTimeout closes a connection idle in the pool for this long.
	// Default: 90s.
	IdleConnTimeout time.Duration
	// ExpectContinueTimeout is how long a request with Expect:
	// 100-continue waits for the 100 before sending its body anyway.
	// Default: 1s.
	ExpectContinueTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response head and a trailer block.
	// Default: 1 MiB.
	MaxResponseHeaderBytes int

	mu      sync.Mutex
	idle    []*conn // oldest first; taken from the end
	janitor *time.Timer
}

func (t *Transport) maxHeaderBytes() int {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return DefaultMaxResponseHeaderBytes
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout > 0 {
		return t.IdleConnTimeout
	}
	return DefaultIdleConnTimeout
}

// CloseIdleConnections closes every connection in the idle pool.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.janitor != nil {
		t.janitor.Stop()
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// getIdle takes the most recently used idle connection that still works.
// For a request that sendHead can write, the peek that finds a dead
// socket is left to sendHead, which does it in the same turn as the write.
func (t *Transport) getIdle(req *http.Request) *conn {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			return nil
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if time.Since(c.idleAt) > t.idleTimeout() || c.buffered() > 0 || !c.sendsHead(req) && c.stale() {
			c.close()
			continue
		}
		return c
	}
}

// putIdle returns c to the pool, closing the oldest connection if the pool
// is full.
func (t *Transport) putIdle(c *conn) {
	c.idleAt = time.Now()
	max := t.MaxIdleConns
	if max <= 0 {
		max = DefaultMaxIdleConns
	}
	var evict *conn
	t.mu.Lock()
	if len(t.idle) >= max {
		evict = t.idle[0]
		copy(t.idle, t.idle[1:])
		t.idle[len(t.idle)-1] = c
	} else {
		t.idle = append(t.idle, c)
	}
	if len(t.idle) == 1 {
		t.armJanitor(t.idleTimeout())
	}
	t.mu.Unlock()
	if evict != nil {
		evict.close()
	}
}

// armJanitor schedules the one timer that closes expired idle connections;
// t.mu is held.
func (t *Transport) armJanitor(d time.Duration) {
	if t.janitor == nil {
		t.janitor = time.AfterFunc(d, t.closeExpired)
		return
	}
	t.janitor.Reset(d)
}

func (t *Transport) closeExpired() {
	timeout := t.idleTimeout()
	now := time.Now()
	var expired []*conn
	t.mu.Lock()
	i := 0
	for i < len(t.idle) && now.Sub(t.idle[i].idleAt) >= timeout {
		i++
	}
	expired = append(expired, t.idle[:i]...)
	n := copy(t.idle, t.idle[i:])
	clear(t.idle[n:])
	t.idle = t.idle[:n]
	if n > 0 {
		t.armJanitor(timeout - now.Sub(t.idle[0].idleAt))
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

// dialConn opens a new connection, unless ctx already ended.
func (t *Transport) dialConn(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nc, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(nc), nil
}

// dial runs t.Dial on a goroutine of its own. Connecting goes deep into
// the net package, and a goroutine's stack, once grown, stays grown while
// the goroutine is blocked: the caller is the handler of a stream that
// may then sit quiet for hours, and its stack is a large part of what a
// quiet stream costs. The goroutine lives only while the dial runs.
//
// The dial gets a context of its own, ended with ctx (and keeping its
// values): net.Dialer derives a deadline context from the one it gets,
// and deriving one from a request context that has its own AfterFunc
// would make that context create a Done channel, which it then keeps for
// the life of the stream.
func (t *Transport) dial(ctx context.Context) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	dctx := context.WithoutCancel(ctx)
	var cancel context.CancelFunc
	if d, ok := ctx.Deadline(); ok {
		dctx, cancel = context.WithDeadline(dctx, d)
	} else {
		dctx, cancel = context.WithCancel(dctx)
	}
	defer cancel()
	stop := afterFunc(ctx, cancel)
	defer stop()
	ch := make(chan result, 1)
	go func() {
		c, err := t.Dial(dctx)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// CloseOnEnder is a context that closes a connection when it ends,
// without the allocations a function hook costs (the hook, and the stop
// function it returns). proxy's exchange context is one. CloseOnEnd
// registers c (closing it at once if the context has ended); StopCloseOnEnd
// unregisters it and reports whether it did so before c was closed.
type CloseOnEnder interface {
	CloseOnEnd(c io.Closer)
	StopCloseOnEnd(c io.Closer) bool
}

// afterFuncer is a context that runs a function when it ends without the
// hook context that context.AfterFunc allocates (the context package
// recognises the same method).
type afterFuncer interface {
	AfterFunc(f func()) (stop func() bool)
}

// afterFunc is context.AfterFunc, through the context's own AfterFunc
// method when it has one: a quiet stream keeps its connection's hook for
// as long as it lasts.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(afterFuncer); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// RoundTrip sends req and reads the response head in the calling
// goroutine. The response body reads from the connection, which returns
// to the pool when the body was read to its end; closing it earlier
// closes the connection. Cancelling req's context closes the connection
// at once. req.Body is always closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// The head is built before a connection is taken: an invalid request
	// never dials. Its pooled buffer is held only until the head is
	// written, and not while dialling: streams opening in a burst would
	// otherwise hold one each meanwhile, and the pool keep them all.
	hp := headPool.Get().(*[]byte)
	head, err := appendHead((*hp)[:0], req)
	if err != nil {
		putHead(hp, head)
		closeReqBody(req)
		return nil, err
	}
	retried := false
	for {
		c := t.getIdle(req)
		if c != nil {
			c.reused = true
			c.gotBytes = false
		} else {
			if hp != nil {
				putHead(hp, head)
				hp = nil
			}
			if c, err = t.dialConn(ctx); err != nil {
				closeReqBody(req)
				return nil, err
			}
		}
		if hp == nil {
			hp = headPool.Get().(*[]byte)
			head, _ = appendHead((*hp)[:0], req) // it passed once
		}
		res, err := t.exchange(ctx, c, req, head, hp)
		hp = nil
		if err == errStale {
			// sendHead's peek found the idle connection dead before
			// writing anything: take the next one, as getIdle would.
			continue
		}
		var wf *writeFailed
		if err != nil && !retried && c.reused && !hasBody(req) && !c.gotBytes && ctx.Err() == nil &&
			(errors.As(err, &wf) || replayable(req)) {
			// The upstream closed an idle connection as we reused it
			// (a keep-alive timeout): nothing was processed, so try once
			// on a fresh connection, as net/http does.
			retried = true
			continue
		}
		return res, err
	}
}

// putHead returns a head buffer, grown as it may be, to headPool.
func putHead(hp *[]byte, head []byte) {
	*hp = head[:0]
	headPool.Put(hp)
}

func closeReqBody(req *http.Request) {
	if hasBody(req) {
		req.Body.Close()
	}
}

// replayable mirrors net/http: methods that are safe to send twice, or a
// request that carries an idempotency key.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, k1 := req.Header["Idempotency-Key"]
	_, k2 := req.Header["X-Idempotency-Key"]
	return k1 || k2
}

// writeFailed is a failure to write the request head: the upstream took
// nothing of the request.
type writeFailed struct{ err error }

func (e *writeFailed) Error() string { return "h1client: writing request: " + e.err.Error() }
func (e *writeFailed) Unwrap() error { return e.err }

// exchange is one request/response on one connection.
type exchange struct {
	t     *Transport
	c     *conn
	ctx   context.Context
	req   *http.Request
	res   *http.Response
	stop  func() bool  // stops the AfterFunc that closes c on cancel, unless ender is set
	ender CloseOnEnder // the context that closes c on cancel, if it is one

	// Set only when the request has a body.
	written    chan error // the body goroutine's result
	continueCh chan bool  // Expect: 100-continue: true sends the body
	signalled  bool
	bodyErr    chan error // a request body read failure, for readError

	noReuse bool
	ended   bool

	body body // the response body, allocated with the exchange
}

// exchange writes head, whose buffer hp then goes back to headPool, and
// reads the response head.
func (t *Transport) exchange(ctx context.Context, c *conn, req *http.Request, head []byte, hp *[]byte) (*http.Response, error) {
	ex := &exchange{t: t, c: c, ctx: ctx}
	if hasBody(req) {
		// Only the body goroutine needs the request after its head is
		// written; a stream does not keep it otherwise.
		ex.req = req
	}
	nc := c.nc
	if ce, ok := ctx.(CloseOnEnder); ok {
		ex.ender = ce
		ce.CloseOnEnd(nc)
	} else {
		ex.stop = afterFunc(ctx, c.closeNC)
	}
	var err error
	if c.sendsHead(req) {
		err = c.sendHead(head)
	} else {
		_, err = nc.Write(head)
	}
	putHead(hp, head)
	if err != nil {
		ex.finish(false)
		closeReqBody(req)
		if err == errStale {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &writeFailed{err}
	}
	if req.Close {
		ex.noReuse = true
	}
	if hasBody(req) {
		ex.written = make(chan error, 1)
		ex.bodyErr = make(chan error, 1)
		if expectsContinue(req) {
			ex.continueCh = make(chan bool, 1)
		}
		go ex.sendBody()
	}
	// Interim responses count against the same limit as the final head,
	// so a flood of 100s cannot keep the exchange busy for ever.
	budget := t.maxHeaderBytes()
	for {
		res, n, err := readHead(c, budget)
		budget -= n
		if err != nil {
			ex.signal(false)
			ex.finish(false)
			return nil, ex.readError(err)
		}
		res.Request = req
		if res.StatusCode == http.StatusSwitchingProtocols {
			ex.signal(false)
			ex.noReuse = true
			pre := append([]byte(nil), c.buf[c.r:c.w]...)
			c.r = c.w
			c.release()
			res.Body = &upgradeBody{ex: ex, pre: pre}
			return res, nil
		}
		if res.StatusCode/100 == 1 {
			if res.StatusCode == http.StatusContinue {
				ex.signal(true)
			}
			// 103 Early Hints and other interim answers are not
			// passed on.
			continue
		}
		if ex.continueCh != nil && !ex.signalled {
			// A final answer before 100: the body is not sent and the
			// connection cannot be reused.
			ex.signal(false)
			ex.noReuse = true
		}
		ex.res = res
		kind, err := framing(res, req.Method)
		if err != nil {
			ex.finish(false)
			return nil, err
		}
		if kind == bodyNone {
			res.Body = http.NoBody
			ex.finish(true)
			return res, nil
		}
		ex.body = body{ex: ex, kind: kind, remain: res.ContentLength}
		res.Body = &ex.body
		return res, nil
	}
}

func expectsContinue(req *http.Request) bool {
	for _, v := range req.Header["Expect"] {
		if len(v) == len("100-continue") && (v == "100-continue" || equalFold(v, "100-continue")) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

// signal tells a waiting Expect body whether to go.
func (ex *exchange) signal(send bool) {
	if ex.continueCh == nil || ex.signalled {
		return
	}
	ex.signalled = true
	ex.continueCh <- send
}

// sendBody runs in its own goroutine: the request body streams up while
// the caller reads the response.
func (ex *exchange) sendBody() {
	req := ex.req
	if ex.continueCh != nil {
		timer := time.NewTimer(ex.t.expectTimeout())
		select {
		case send := <-ex.continueCh:
			if !send {
				timer.Stop()
				req.Body.Close()
				ex.written <- errBodyNotSent
				return
			}
		case <-timer.C:
		case <-ex.ctx.Done():
		}
		timer.Stop()
	}
	err := writeBody(ex.c.nc, req)
	req.Body.Close()
	var re *bodyReadError
	if errors.As(err, &re) {
		// The client's body failed: the upstream must not take what it
		// got for a whole request, so the exchange ends here.
		ex.bodyErr <- re.err
		ex.c.nc.Close()
	}
	ex.written <- err
}

func (t *Transport) expectTimeout() time.Duration {
	if t.ExpectContinueTimeout > 0 {
		return t.ExpectContinueTimeout
	}
	return DefaultExpectContinueTimeout
}

// readError names why reading the response failed: the request's
// cancellation, the request body's failure, or the upstream's fault.
func (ex *exchange) readError(err error) error {
	if cerr := ex.ctx.Err(); cerr != nil {
		return cerr
	}
	if ex.bodyErr != nil {
		select {
		case berr := <-ex.bodyErr:
			ex.bodyErr <- berr
			return &bodyReadError{berr}
		default:
		}
	}
	if err == io.EOF {
		return errClosedEarly
	}
	return err
}

var errClosedEarly = errors.New("h1client: upstream closed the connection before the response ended")

// unhook stops the context's cancel hook on the connection and reports
// whether it had not run.
func (ex *exchange) unhook() bool {
	if ex.ender != nil {
		return ex.ender.StopCloseOnEnd(ex.c.nc)
	}
	return ex.stop()
}

// finish ends the exchange once: the connection goes back to the pool
// only if clean says its response was read to the end, nothing asked for
// close, the cancel hook never ran and the request body was fully
// written.
func (ex *exchange) finish(clean bool) {
	if ex.ended {
		return
	}
	ex.ended = true
	stopped := ex.unhook()
	reuse := clean && stopped && !ex.noReuse && ex.res != nil && !ex.res.Close && ex.c.buffered() == 0
	if reuse && ex.written != nil {
		timer := time.NewTimer(maxWriteWait)
		select {
		case err := <-ex.written:
			reuse = err == nil
		case <-timer.C:
			reuse = false
		}
		timer.Stop()
	}
	if reuse {
		ex.c.release()
		ex.t.putIdle(ex.c)
		return
	}
	ex.c.close()
}
