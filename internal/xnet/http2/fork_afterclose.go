// sluice's addition to the x/net copy (see ../UPSTREAM.md, changes 6 and
// 15): a hook that runs when a stream closes, for handlers that need
// nothing else from the request's context.

package http2

import (
	"context"
	"sync"
)

// CloseHook is what OnClose registers: StreamClosed runs, in a goroutine
// of its own, once the stream is closed.
type CloseHook = interface{ StreamClosed() }

// streamHook holds the function AfterClose or the hook OnClose
// registered for a stream; a stream has room for one. Handlers set it
// and the serve loop runs it.
type streamHook struct {
	mu   sync.Mutex
	f    func()    // AfterClose's
	h    CloseHook // OnClose's
	gen  uint64    // counts AfterClose registrations, for their stop
	done bool      // the stream has closed
}

// closed runs the registered function or hook, if any, in a goroutine of
// its own, and makes later registrations run at once. The serve loop
// calls it when the stream closes.
func (s *streamHook) closed() {
	s.mu.Lock()
	f, h := s.f, s.h
	s.f, s.h, s.done = nil, nil, true
	s.mu.Unlock()
	if f != nil {
		go f()
	}
	if h != nil {
		go h.StreamClosed()
	}
}

// AfterClose arranges for f to run, in a goroutine of its own, once the
// stream is closed: reset by the client, its connection gone, or its
// response complete. If the stream's room is taken, f is registered with
// context.AfterFunc on the request's context.
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
	s := &rws.stream.onClose
	s.mu.Lock()
	switch {
	case s.done:
		s.mu.Unlock()
		go f()
		return func() bool { return false }
	case s.f != nil || s.h != nil:
		s.mu.Unlock()
		return context.AfterFunc(rws.stream.ctx, f)
	}
	s.f = f
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.f != nil && s.gen == gen {
			s.f = nil
			return true
		}
		return false
	}
}

// OnClose is AfterClose without an allocation: h's StreamClosed runs, in
// a goroutine of its own, once the stream is closed (at once if it
// already is), and StopOnClose unregisters it. A handler that keeps its
// per-request state in one struct registers that struct, where
// AfterClose would take a method value and return a closure, three
// allocations per request (change 15). It reports false, registering
// nothing, if the stream's room is taken.
func (w *responseWriter) OnClose(h CloseHook) bool {
	rws := w.rws
	if rws == nil {
		panic("OnClose called after Handler finished")
	}
	s := &rws.stream.onClose
	s.mu.Lock()
	switch {
	case s.done:
		s.mu.Unlock()
		go h.StreamClosed()
		return true
	case s.f != nil || s.h != nil:
		s.mu.Unlock()
		return false
	}
	s.h = h
	s.mu.Unlock()
	return true
}

// StopOnClose unregisters the hook OnClose registered and reports
// whether it did so before the hook started.
func (w *responseWriter) StopOnClose() bool {
	rws := w.rws
	if rws == nil {
		return false
	}
	s := &rws.stream.onClose
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return false
	}
	s.h = nil
	return true
}
