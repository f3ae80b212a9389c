// sluice's addition to the x/net copy (see ../UPSTREAM.md): a hook that
// runs when a stream closes, for handlers that need nothing else from the
// request's context.

package http2

import (
	"context"
	"sync/atomic"
)

// closedHook marks a streamHook whose stream has closed.
var closedHook = new(func())

// streamHook holds the function AfterClose registered for a stream.
// Handlers set it and the serve loop runs it, so it is one atomic
// pointer: nil, the registered function, or closedHook.
type streamHook struct {
	f atomic.Pointer[func()]
}

// closed runs the registered function, if any, in a goroutine of its own,
// and makes later registrations run at once. The serve loop calls it when
// the stream closes.
func (h *streamHook) closed() {
	if f := h.f.Swap(closedHook); f != nil && f != closedHook {
		go (*f)()
	}
}

// AfterClose arranges for f to run, in a goroutine of its own, once the
// stream is closed: reset by the client, its connection gone, or its
// response complete. A stream has room for one function; a second one
// is registered with context.AfterFunc on the request's context.
//
// It does the job of context.AfterFunc(r.Context(), f) for a running
// handler (x/net cancels the request's context when it closes the
// stream, and when the handler returns), without what that costs a
// quiet stream for its life: the hook's context, the children map and
// Done channel it makes in the request's context, about 400 bytes.
// stop unregisters f and reports whether it did so before f started.
func (w *responseWriter) AfterClose(f func()) (stop func() bool) {
	rws := w.rws
	if rws == nil {
		panic("AfterClose called after Handler finished")
	}
	h := &rws.stream.onClose
	p := &f
	if !h.f.CompareAndSwap(nil, p) {
		if h.f.Load() == closedHook {
			go f()
			return func() bool { return false }
		}
		return context.AfterFunc(rws.stream.ctx, f)
	}
	return func() bool { return h.f.CompareAndSwap(p, nil) }
}
