package proxy

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

func testExchange(parent context.Context, live *liveSet) *exchange {
	return newExchange(parent, live, &route{}, httptest.NewRecorder(), time.Now())
}

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: context not done", what)
	}
}

// TestExchangeContextHooks: hooks registered with AfterFunc run once when
// sluice ends the exchange, a stopped hook does not, and no Done channel
// is made for them.
func TestExchangeContextHooks(t *testing.T) {
	var live liveSet
	ex := testExchange(context.Background(), &live)
	ran := 0
	ex.AfterFunc(func() { ran++ })
	stopped := ex.AfterFunc(func() { t.Error("stopped hook ran") })
	if !stopped() || stopped() {
		t.Fatal("stop: want true once, then false")
	}
	if ex.done != nil {
		t.Fatal("a Done channel was made without a Done call")
	}
	if ex.Err() != nil {
		t.Fatalf("Err %v before the end", ex.Err())
	}
	ex.expire(reasonIdleTimeout)
	ex.expire(reasonTotalTimeout)
	if ran != 1 {
		t.Fatalf("hook ran %d times, want 1", ran)
	}
	if !errors.Is(ex.Err(), context.Canceled) || context.Cause(ex) != context.Canceled {
		t.Fatalf("Err %v, Cause %v, want context.Canceled", ex.Err(), context.Cause(ex))
	}
	waitDone(t, ex, "after expire")
	late := make(chan struct{})
	if ex.AfterFunc(func() { close(late) })() {
		t.Fatal("stop of a hook registered after the end reported true")
	}
	select {
	case <-late:
	case <-time.After(5 * time.Second):
		t.Fatal("hook registered after the end never ran")
	}
	ex.finish(&live)
}

// TestExchangeContextClientGone: the client request's context ending ends
// the exchange's, and contexts derived from it, at once; its values are
// seen through it.
func TestExchangeContextClientGone(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	var live liveSet
	ex := testExchange(parent, &live)
	defer ex.finish(&live)
	child, stopChild := context.WithTimeout(ex, time.Hour)
	defer stopChild()
	if ex.Value(key{}) != "v" || child.Value(key{}) != "v" {
		t.Fatal("client context's value not seen")
	}
	hook := make(chan struct{})
	ex.AfterFunc(func() { close(hook) })
	cancel()
	waitDone(t, ex, "exchange")
	waitDone(t, child, "derived context")
	select {
	case <-hook:
	case <-time.After(5 * time.Second):
		t.Fatal("hook did not run when the client went")
	}
	if ex.expiredReason() != "" {
		t.Fatalf("client going set expired %q", ex.expiredReason())
	}
}

// TestExchangeContextFinish: finish ends the upstream context and leaves
// the client request's context, which then holds no hook of it.
func TestExchangeContextFinish(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	var live liveSet
	ex := testExchange(parent, &live)
	done := ex.Done()
	ex.finish(&live)
	select {
	case <-done:
	default:
		t.Fatal("finish did not end the upstream context")
	}
	if ex.stopParent() {
		t.Fatal("the exchange's hook in the client context outlived finish")
	}
}

// TestAbort: Abort ends every open exchange with reason shutdown, leaves
// alone those that finished, and ends at once those that start after it.
func TestAbort(t *testing.T) {
	p := &Proxy{}
	var exs []*exchange
	for range 5 {
		exs = append(exs, testExchange(context.Background(), &p.live))
	}
	for _, i := range []int{0, 2, 4} {
		exs[i].finish(&p.live)
	}
	p.Abort()
	for i, ex := range exs {
		if i%2 == 1 {
			waitDone(t, ex, "open exchange after Abort")
			if got := ex.expiredReason(); got != reasonShutdown {
				t.Errorf("exchange %d: expired %q, want shutdown", i, got)
			}
		} else if ex.expiredReason() != "" {
			t.Errorf("finished exchange %d: expired %q", i, ex.expiredReason())
		}
	}
	late := testExchange(context.Background(), &p.live)
	if late.expiredReason() != reasonShutdown || late.Err() == nil {
		t.Fatal("an exchange started after Abort was not ended")
	}
	for _, ex := range append(exs, late) {
		ex.finish(&p.live)
	}
	if p.live.untimed != nil || p.live.timed != 0 {
		t.Fatal("exchanges left in the set")
	}
}

// TestLiveSetRemove: removing from the head, middle and tail keeps the
// list whole, and removing twice is harmless.
func TestLiveSetRemove(t *testing.T) {
	var s liveSet
	exs := make([]*exchange, 4)
	for i := range exs {
		exs[i] = &exchange{rt: &route{}}
		s.add(exs[i])
	}
	for _, i := range []int{3, 1, 0, 1} { // head (last added), middle, tail, again
		s.remove(exs[i])
	}
	if s.untimed != exs[2] || exs[2].next != nil || exs[2].prev != nil {
		t.Fatal("list broken after removals")
	}
	if got := s.abort(); len(got) != 1 || got[0] != exs[2] {
		t.Fatalf("abort returned %d exchanges, want the one left", len(got))
	}
	if s.add(&exchange{rt: &route{}}) {
		t.Fatal("add after abort succeeded")
	}
}

type closeCount struct{ n int }

func (c *closeCount) Close() error { c.n++; return nil }

// TestExchangeCloseOnEnd: connections registered with CloseOnEnd are
// closed once when the exchange ends, an unregistered one is not, one
// registered after the end is closed at once, and the exchange keeps no
// reference to them afterwards.
func TestExchangeCloseOnEnd(t *testing.T) {
	var live liveSet
	ex := testExchange(context.Background(), &live)
	a, b, c := &closeCount{}, &closeCount{}, &closeCount{}
	ex.CloseOnEnd(a)
	ex.CloseOnEnd(b) // a second one spills out of closerBuf
	ex.CloseOnEnd(c)
	if !ex.StopCloseOnEnd(b) || ex.StopCloseOnEnd(b) {
		t.Fatal("StopCloseOnEnd: want true once, then false")
	}
	ex.expire(reasonIdleTimeout)
	if a.n != 1 || b.n != 0 || c.n != 1 {
		t.Fatalf("closed a %d, b %d, c %d times; want 1, 0, 1", a.n, b.n, c.n)
	}
	if ex.StopCloseOnEnd(a) {
		t.Fatal("StopCloseOnEnd after the end reported true")
	}
	if ex.closers != nil || ex.closerBuf[0] != nil {
		t.Fatal("the exchange still refers to its connections")
	}
	late := &closeCount{}
	ex.CloseOnEnd(late)
	if late.n != 1 {
		t.Fatal("a connection registered after the end was not closed")
	}
	ex.finish(&live)
	if a.n != 1 || c.n != 1 {
		t.Fatal("closed again by finish")
	}

	// One connection, stopped before the end, is never closed and not kept.
	ex = testExchange(context.Background(), &live)
	d := &closeCount{}
	ex.CloseOnEnd(d)
	if !ex.StopCloseOnEnd(d) || ex.closerBuf[0] != nil {
		t.Fatal("stop did not clear the slot")
	}
	ex.finish(&live)
	if d.n != 0 {
		t.Fatal("a stopped connection was closed")
	}
}

// hookWriter is a response writer whose stream runs a close hook, as
// internal/xnet's HTTP/2 server's does.
type hookWriter struct {
	*httptest.ResponseRecorder
	hook interface{ StreamClosed() }
}

func (w *hookWriter) OnClose(h interface{ StreamClosed() }) bool { w.hook = h; return true }
func (w *hookWriter) StopOnClose() bool                          { ok := w.hook != nil; w.hook = nil; return ok }

// TestClientGoneBeforeContext: the HTTP/2 server runs the stream's close
// hook before it cancels the request's context. An upstream error that the
// hook caused (it closes the upstream connection) is still the client's
// going, not the upstream's fault, even while the request's context is not
// yet done. (CI's TestExampleASGISSE logged upstream_error so.)
func TestClientGoneBeforeContext(t *testing.T) {
	var live liveSet
	w := &hookWriter{ResponseRecorder: httptest.NewRecorder()}
	ex := newExchange(context.Background(), &live, &route{}, w, time.Now())
	defer ex.finish(&live)
	var p *Proxy
	upErr := errors.New("read: use of closed network connection")
	if got := p.classify(ex, nil, upErr); got != reasonUpstreamError {
		t.Fatalf("before the client left: %q, want %q", got, reasonUpstreamError)
	}
	if w.hook == nil {
		t.Fatal("the exchange did not register its close hook")
	}
	w.hook.StreamClosed()
	waitDone(t, ex, "after the close hook")
	if got := p.classify(ex, nil, upErr); got != reasonClientGone {
		t.Fatalf("after the close hook: %q, want %q", got, reasonClientGone)
	}
}

// TestClientGoneContext: over HTTP/1.1 and HTTP/3 the request's context
// ending is the client's going.
func TestClientGoneContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	var live liveSet
	ex := testExchange(parent, &live)
	defer ex.finish(&live)
	cancel()
	waitDone(t, ex, "after cancel")
	var p *Proxy
	if got := p.classify(ex, nil, errors.New("upstream reset")); got != reasonClientGone {
		t.Fatalf("%q, want %q", got, reasonClientGone)
	}
}
