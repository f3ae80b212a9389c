// sluice's addition to the x/net copy (see ../UPSTREAM.md, change 20): a
// stream's context without context.WithCancel's allocations.

package http2

import (
	"context"
	"slices"
	"sync"
	"time"
)

// streamContext is a stream's context, the one its request carries. It
// is done once the stream closes or its handler returns (cancelCtx), or
// once the connection's context is done, as x/net's was.
//
// x/net made it with context.WithCancel of the connection's context: a
// cancelCtx and its cancel function allocated for every stream, and the
// stream added to and removed from the connection context's children
// map under that context's lock (about 3 % of a small request's CPU in
// sluice's profile). This one lives inside the stream, makes its Done
// channel only when asked, and is registered with the connection's
// context only while something waits on it: a Done channel, or a hook or
// derived context (AfterFunc, which the context package uses for
// contexts derived from this one). A stream that nobody waits on, as in
// sluice, whose proxy watches the stream through OnClose, costs nothing
// beyond its fields.
type streamContext struct {
	parent context.Context // the connection's

	mu    sync.Mutex
	done  chan struct{} // made by the first Done; closed by cancel
	err   error         // set once, by cancel
	hooks []*streamContextHook
	stop  func() bool // undoes the registration with parent; nil if none
}

type streamContextHook struct{ f func() }

var _ context.Context = (*streamContext)(nil)

// cancelCtx ends the stream's context, as x/net's cancel function did.
func (st *stream) cancelCtx() { st.ctx.cancel(context.Canceled) }

// Deadline is the connection context's.
func (c *streamContext) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Done returns a channel closed once the context is done.
func (c *streamContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		} else {
			c.watchParentLocked()
		}
	}
	return c.done
}

// Err is context.Canceled once the stream ended, or the connection
// context's error once that is done; nil before.
func (c *streamContext) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	// Nothing may be registered with the parent to have cancelled this
	// context already: a parent that is done ends it now, so that Err and
	// Done agree from here on.
	if err := c.parent.Err(); err != nil {
		c.cancel(err)
		return c.Err()
	}
	return nil
}

// Value is the connection context's value for key. It is looked up
// through context.WithoutCancel, so that context.Cause of this context
// does not find the connection context's cause (which is not this one's)
// and reports Err instead.
func (c *streamContext) Value(key any) any {
	return context.WithoutCancel(c.parent).Value(key)
}

// AfterFunc arranges for f to run, in a goroutine of its own, once the
// context is done, as context.AfterFunc does; the context package uses
// this method for contexts derived from this one, instead of a goroutine
// that waits on Done. stop unregisters f and reports whether it did so
// before f was started.
func (c *streamContext) AfterFunc(f func()) (stop func() bool) {
	h := &streamContextHook{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.hooks = append(c.hooks, h)
	c.watchParentLocked()
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if i := slices.Index(c.hooks, h); i >= 0 {
			c.hooks = slices.Delete(c.hooks, i, i+1)
			return true
		}
		return false
	}
}

// watchParentLocked registers the context with its parent, once, so that
// the parent's end reaches those who wait on this one.
func (c *streamContext) watchParentLocked() {
	if c.stop == nil && c.parent.Done() != nil {
		c.stop = context.AfterFunc(c.parent, c.parentDone)
	}
}

func (c *streamContext) parentDone() { c.cancel(c.parent.Err()) }

// cancel ends the context with err, once: it closes Done, starts the
// hooks and unregisters from the parent.
func (c *streamContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	hooks, stop := c.hooks, c.stop
	c.hooks, c.stop = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	for _, h := range hooks {
		go h.f()
	}
}

// String names the context, as the context package's own types do.
func (c *streamContext) String() string { return "http2.streamContext" }
