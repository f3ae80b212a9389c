package h1client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hookCtx is a context with its own AfterFunc, as sluice's exchanges are.
// It counts Done calls and live hooks.
type hookCtx struct {
	context.Context // values only
	mu              sync.Mutex
	done            chan struct{}
	ended           bool
	hooks           map[*func()]bool
	doneCalls       atomic.Int32
}

func newHookCtx() *hookCtx {
	return &hookCtx{Context: context.Background(), done: make(chan struct{}), hooks: map[*func()]bool{}}
}

func (c *hookCtx) Done() <-chan struct{} { c.doneCalls.Add(1); return c.done }

func (c *hookCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return context.Canceled
	}
	return nil
}

func (c *hookCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks[&f] = true
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		ok := c.hooks[&f]
		delete(c.hooks, &f)
		return ok
	}
}

func (c *hookCtx) cancel() {
	c.mu.Lock()
	c.ended = true
	close(c.done)
	hooks := c.hooks
	c.hooks = nil
	c.mu.Unlock()
	for f := range hooks {
		(*f)()
	}
}

func (c *hookCtx) liveHooks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hooks)
}

// TestAfterFuncContext: with a request context that has AfterFunc, the
// transport registers its cancel hook there, unregisters it when the
// exchange ends, never asks the context for its Done channel (a dial
// included), and the hook closes the connection mid-body.
func TestAfterFuncContext(t *testing.T) {
	s := newServer(t, respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr := s.transport()

	ctx := newHookCtx()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/"), nil)
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.liveHooks() != 1 {
		t.Fatalf("%d hooks registered during the body, want 1", ctx.liveHooks())
	}
	if readAll(t, res) != "ok" {
		t.Fatal("wrong body")
	}
	if ctx.liveHooks() != 0 || ctx.doneCalls.Load() != 0 {
		t.Fatalf("after the exchange: %d hooks left, %d Done calls; want none", ctx.liveHooks(), ctx.doneCalls.Load())
	}

	endMidBody(t, func() context.Context { ctx = newHookCtx(); return ctx }, func() { ctx.cancel() })
}

// endMidBody starts a chunked response, ends the request's context (from
// newCtx) with end after its first chunk, and checks that the body fails
// with context.Canceled and the upstream sees its connection close.
func endMidBody(t *testing.T, newCtx func() context.Context, end func()) {
	t.Helper()
	gone := make(chan struct{})
	s := newServer(t, func(t *testing.T, c net.Conn, br *bufio.Reader) {
		readReq(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
		br.ReadByte()
		close(gone)
	})
	req, _ := http.NewRequestWithContext(newCtx(), http.MethodGet, s.url("/"), nil)
	res, err := s.transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 10)
	res.Body.Read(b)
	end()
	if _, err := res.Body.Read(b); !errors.Is(err, context.Canceled) {
		t.Fatalf("body read error %v, want context.Canceled", err)
	}
	res.Body.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream connection not closed when the context ended")
	}
}

// TestAfterFuncContextDial: ending such a context ends a dial under way.
func TestAfterFuncContextDial(t *testing.T) {
	tr := &Transport{Dial: func(ctx context.Context) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	ctx := newHookCtx()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://upstream/", nil)
	time.AfterFunc(20*time.Millisecond, ctx.cancel)
	errc := make(chan error, 1)
	go func() { _, err := tr.RoundTrip(req); errc <- err }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dial not cancelled")
	}
	if ctx.doneCalls.Load() != 0 {
		t.Fatal("the dial asked the request context for its Done channel")
	}
}

// enderCtx is a hookCtx that also closes connections itself, as
// proxy's exchange does (CloseOnEnder).
type enderCtx struct {
	*hookCtx
	closers map[io.Closer]bool
}

func (c *enderCtx) CloseOnEnd(cl io.Closer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		cl.Close()
		return
	}
	c.closers[cl] = true
}

func (c *enderCtx) StopCloseOnEnd(cl io.Closer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := c.closers[cl]
	delete(c.closers, cl)
	return ok
}

func (c *enderCtx) end() {
	c.mu.Lock()
	closers := c.closers
	c.closers = map[io.Closer]bool{}
	c.mu.Unlock()
	c.cancel()
	for cl := range closers {
		cl.Close()
	}
}

func (c *enderCtx) live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.closers)
}

// TestCloseOnEndContext: with a request context that closes connections
// itself, the transport registers its connection there instead of an
// AfterFunc hook, unregisters it when the exchange ends (and the
// connection is pooled again), and ending the context mid-body closes
// the connection.
func TestCloseOnEndContext(t *testing.T) {
	s := newServer(t, respond("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr := s.transport()
	ctx := &enderCtx{hookCtx: newHookCtx(), closers: map[io.Closer]bool{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/"), nil)
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.live() != 1 || ctx.liveHooks() != 0 {
		t.Fatalf("during the body: %d connections and %d hooks registered, want 1 and 0", ctx.live(), ctx.liveHooks())
	}
	if readAll(t, res) != "ok" {
		t.Fatal("wrong body")
	}
	if ctx.live() != 0 || len(tr.idle) != 1 {
		t.Fatalf("after the exchange: %d connections registered, %d idle; want 0 and 1", ctx.live(), len(tr.idle))
	}

	endMidBody(t, func() context.Context {
		ctx = &enderCtx{hookCtx: newHookCtx(), closers: map[io.Closer]bool{}}
		return ctx
	}, func() { ctx.end() })
}
