// Package admin is the admin listener's handler: /healthz, /readyz,
// /metrics (Prometheus text format) and POST /reload. It is meant for
// loopback or a private network: it has no authentication.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Options configure the admin handler.
type Options struct {
	// Gatherer is what /metrics serves.
	Gatherer prometheus.Gatherer
	// Ready returns nil when sluice serves: listeners up, config loaded.
	Ready func() error
	// Reload reloads the config file, as SIGHUP does, and returns its
	// error. ctx ends when the client goes away.
	Reload func(ctx context.Context) error
	Log    *zap.Logger
}

// Handler returns the admin endpoints:
//
//	GET  /healthz  200 while the process runs
//	GET  /readyz   200 when listeners are up and a config is loaded, else 503
//	GET  /metrics  Prometheus metrics
//	POST /reload   reload the config file; 200, or 500 with the errors
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := o.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(o.Log), ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if err := o.Reload(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "reloaded\n")
	})
	return mux
}

// ErrUnreachable wraps a failure to reach the admin listener at all (as
// opposed to a reload it refused).
var ErrUnreachable = errors.New("admin listener unreachable")

// RequestReload asks the sluice whose admin listener is at addr to reload
// its config, and returns the reload's error. A wildcard or empty host is
// reached on loopback.
func RequestReload(addr string, timeout time.Duration) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	url := "http://" + net.JoinHostPort(host, port) + "/reload"
	client := &http.Client{Timeout: timeout}
	res, err := client.Post(url, "text/plain", nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("reload refused (%s): %s", res.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
