// sluice's addition to the x/net copy (see ../UPSTREAM.md, changes 6 and
// 15): a hook that runs when a stream closes, for handlers that need
// nothing else from the request's context.

package http2

import "sync"

// CloseHook is what OnClose registers: StreamClosed runs, in a goroutine
// of its own, once the stream is closed.
type CloseHook = interface{ StreamClosed() }

// streamHook holds the hook OnClose registered for a stream; a stream has
// room for one. Handlers set it and the serve loop runs it.
type streamHook struct {
	mu   sync.Mutex
	h    CloseHook
	done bool // the stream has closed
}

// closed runs the registered hook, if any, in a goroutine of its own, and
// makes later registrations run at once. The serve loop calls it when the
// stream closes.
func (s *streamHook) closed() {
	s.mu.Lock()
	h := s.h
	s.h, s.done = nil, true
	s.mu.Unlock()
	if h != nil {
		go h.StreamClosed()
	}
}

// OnClose arranges for h's StreamClosed to run, in a goroutine of its
// own, once the stream is closed: reset by the client, its connection
// gone, or its response complete (at once if it already is). StopOnClose
// unregisters it. It reports false, registering nothing, if the stream's
// room is taken.
//
// It does the job of context.AfterFunc(r.Context(), f) for a running
// handler (x/net cancels the request's context when it closes the
// stream, and when the handler returns), without what that costs a quiet
// stream for its life: the hook's context, the children map and Done
// channel it makes in the request's context, about 400 bytes. And it
// allocates nothing: a handler that keeps its per-request state in one
// struct registers that struct, where a function hook would take a
// method value and return a stop closure (change 15).
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
	case s.h != nil:
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
