package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var ready, reloadErr error
	h := Handler(Options{
		Gatherer: reg,
		Ready:    func() error { return ready },
		Reload:   func(context.Context) error { return reloadErr },
		Log:      zap.NewNop(),
	})
	do := func(method, path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	for _, c := range []struct {
		name         string
		setup        func()
		method, path string
		code         int
		body         string
	}{
		{"healthz", func() {}, "GET", "/healthz", 200, "ok\n"},
		{"ready", func() {}, "GET", "/readyz", 200, "ready\n"},
		{"not ready", func() { ready = errors.New("listeners are not serving") }, "GET", "/readyz", 503, "not ready: listeners are not serving"},
		{"metrics", func() {}, "GET", "/metrics", 200, "test_total 3"},
		{"reload", func() {}, "POST", "/reload", 200, "reloaded\n"},
		{"reload refused", func() { reloadErr = errors.New("config.yaml:3:1: bad") }, "POST", "/reload", 500, "config.yaml:3:1: bad"},
		{"reload needs POST", func() {}, "GET", "/reload", 405, ""},
		{"unknown", func() {}, "GET", "/nope", 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			code, body := do(c.method, c.path)
			if code != c.code || !strings.Contains(body, c.body) {
				t.Fatalf("%s %s = %d %q, want %d containing %q", c.method, c.path, code, body, c.code, c.body)
			}
		})
	}
}

func TestRequestReload(t *testing.T) {
	var fail atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(Options{
		Gatherer: prometheus.NewRegistry(), Ready: func() error { return nil }, Log: zap.NewNop(),
		Reload: func(context.Context) error {
			if fail.Load() {
				return errors.New("bad config")
			}
			return nil
		},
	})}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	// A wildcard host is reached on loopback.
	for _, addr := range []string{"127.0.0.1:" + port, ":" + port, "0.0.0.0:" + port} {
		if err := RequestReload(addr, 5*time.Second); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
	}
	fail.Store(true)
	if err := RequestReload(ln.Addr().String(), 5*time.Second); err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("refused reload: %v", err)
	}
	srv.Close()
	if err := RequestReload(ln.Addr().String(), 5*time.Second); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("closed admin: %v", err)
	}
}
