package proxy

import (
	"context"
	"io"
	"time"
)

// The exchange is the context of its upstream request. A derived
// context.WithCancelCause, with the shutdown and transport hooks that
// context.AfterFunc registers in it, cost a quiet stream about a kilobyte
// for as long as it stays open (a cancelCtx, its Done channel, and a
// children map in each context that a hook or child is registered in).
// Here the exchange holds the state itself: its Done channel is made only
// for a transport that asks for it, and hooks registered through AfterFunc
// (h1client registers its own so) are a short list in the exchange.
// Its only registration elsewhere is one hook on the client's stream or
// request (watchClient), so that the client going ends it.

var _ context.Context = (*exchange)(nil)

// Deadline is the client request's deadline.
func (ex *exchange) Deadline() (time.Time, bool) { return ex.parent.Deadline() }

// Done returns a channel closed when the upstream request ends.
func (ex *exchange) Done() <-chan struct{} {
	ex.cmu.Lock()
	defer ex.cmu.Unlock()
	if ex.done == nil {
		ex.done = make(chan struct{})
		if ex.ended {
			close(ex.done)
		}
	}
	return ex.done
}

// Err is context.Canceled once the upstream request ended, for whatever
// reason (the client's request context has no deadline), and nil before.
func (ex *exchange) Err() error {
	ex.cmu.Lock()
	defer ex.cmu.Unlock()
	if ex.ended {
		return context.Canceled
	}
	return nil
}

// Value is the client request context's value for key. It is looked up
// through context.WithoutCancel so that context.Cause of the exchange does
// not find the client context's cause, which is not the exchange's.
func (ex *exchange) Value(key any) any {
	return context.WithoutCancel(ex.parent).Value(key)
}

// AfterFunc arranges for f to run when the upstream request ends, in the
// goroutine that ends it (or in a goroutine of its own if it has already
// ended), as context.AfterFunc would but without its allocations: the
// context package and h1client use this method when a context has it. f
// must not block. stop unregisters f and reports whether it did so before
// f was started.
func (ex *exchange) AfterFunc(f func()) (stop func() bool) {
	h := &afterHook{ex: ex, f: f}
	ex.cmu.Lock()
	if ex.ended {
		ex.cmu.Unlock()
		go f()
		return func() bool { return false }
	}
	h.next = ex.hooks
	ex.hooks = h
	ex.cmu.Unlock()
	return h.stop
}

// CloseOnEnd arranges for c to be closed when the upstream request ends,
// at once if it has: h1client's hook on its connection, registered
// without a function or the stop function AfterFunc returns (two
// allocations per request).
func (ex *exchange) CloseOnEnd(c io.Closer) {
	ex.cmu.Lock()
	if ex.ended {
		ex.cmu.Unlock()
		c.Close()
		return
	}
	if ex.closers == nil {
		ex.closers = ex.closerBuf[:0]
	}
	ex.closers = append(ex.closers, c)
	ex.cmu.Unlock()
}

// StopCloseOnEnd unregisters c and reports whether it did so before the
// upstream request ended.
func (ex *exchange) StopCloseOnEnd(c io.Closer) bool {
	ex.cmu.Lock()
	defer ex.cmu.Unlock()
	for i, x := range ex.closers {
		if x == c {
			n := len(ex.closers)
			copy(ex.closers[i:], ex.closers[i+1:])
			ex.closers[n-1] = nil // the exchange must not keep the connection
			ex.closers = ex.closers[:n-1]
			return true
		}
	}
	return false
}

// afterHook is one function registered with exchange.AfterFunc.
type afterHook struct {
	ex   *exchange
	f    func()
	next *afterHook
}

func (h *afterHook) stop() bool {
	ex := h.ex
	ex.cmu.Lock()
	defer ex.cmu.Unlock()
	for p := &ex.hooks; *p != nil; p = &(*p).next {
		if *p == h {
			*p = h.next
			return true
		}
	}
	return false
}

// cancelUpstream ends the upstream request, once: Done closes and the
// hooks run, outside cmu since a hook of a derived context asks for Err.
func (ex *exchange) cancelUpstream() {
	ex.cmu.Lock()
	if ex.ended {
		ex.cmu.Unlock()
		return
	}
	ex.ended = true
	if ex.done != nil {
		close(ex.done)
	}
	hooks := ex.hooks
	ex.hooks = nil
	// Closing a connection calls back into nothing of the exchange, so
	// it is done under cmu, and the exchange drops them at once.
	for _, c := range ex.closers {
		c.Close()
	}
	ex.closers, ex.closerBuf = nil, [1]io.Closer{}
	ex.cmu.Unlock()
	for h := hooks; h != nil; h = h.next {
		h.f()
	}
}

// watchClient makes the client going (an HTTP/2 reset, a closed
// connection) end the upstream request at once. sluice's HTTP/2 server
// runs a hook when the stream closes (internal/xnet's OnClose): the
// exchange registers itself there, which allocates nothing and keeps
// nothing more for a quiet stream. context.AfterFunc, which HTTP/1.1 and
// HTTP/3 use, keeps a context and, in the request's context, a children
// map and a Done channel: ~400 bytes for as long as the stream is open.
func (ex *exchange) watchClient() {
	if oc, ok := ex.w.(onCloser); ok && oc.OnClose(ex) {
		return // stopParent stays nil: unwatchClient asks ex.w
	}
	ex.stopParent = context.AfterFunc(ex.parent, ex.StreamClosed)
}

// unwatchClient undoes watchClient.
func (ex *exchange) unwatchClient() {
	if ex.stopParent == nil {
		ex.w.(onCloser).StopOnClose()
		return
	}
	ex.stopParent()
}

// onCloser is a response writer whose stream runs a hook when it closes.
type onCloser interface {
	OnClose(h interface{ StreamClosed() }) bool
	StopOnClose() bool
}

// StreamClosed is the exchange's hook on its client stream (or request
// context). It records that the client left before ending the upstream
// request: the HTTP/2 server runs the hook before it cancels the request's
// context, so a handler woken by the closed upstream may not yet see that
// context done, and classify asks the exchange instead.
func (ex *exchange) StreamClosed() {
	ex.cmu.Lock()
	ex.clientLeft = true
	ex.cmu.Unlock()
	ex.cancelUpstream()
}

// clientGone reports whether the client's stream or request has closed.
func (ex *exchange) clientGone() bool {
	ex.cmu.Lock()
	left := ex.clientLeft
	ex.cmu.Unlock()
	return left || ex.parent.Err() != nil
}
