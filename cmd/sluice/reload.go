package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/admin"
	"github.com/sluiceproxy/sluice/config"
	"github.com/sluiceproxy/sluice/h2"
	"github.com/sluiceproxy/sluice/metrics"
	"github.com/sluiceproxy/sluice/proxy"
	"github.com/sluiceproxy/sluice/service"
	sluicetls "github.com/sluiceproxy/sluice/tls"
)

// reloader applies a new config file to the running parts. Reloads run
// one at a time on serve's loop: SIGHUP, or POST /reload on the admin
// listener through requests.
type reloader struct {
	path     string
	cfg      *config.Config // the running config; only serve's loop touches it
	proxy    *proxy.Proxy
	srv      *h2.Server
	metrics  *metrics.Metrics
	level    zap.AtomicLevel
	notify   *service.Notifier
	acme     *sluicetls.ACME // nil without tls.acme
	log      *zap.Logger
	requests chan chan error
	stopping chan struct{}
}

func newReloader(cfg *config.Config, path string, p *proxy.Proxy, m *metrics.Metrics, level zap.AtomicLevel, n *service.Notifier, log *zap.Logger) *reloader {
	return &reloader{path: path, cfg: cfg, proxy: p, metrics: m, level: level, notify: n, log: log,
		requests: make(chan chan error), stopping: make(chan struct{})}
}

// reload loads the config file and, if it is valid and its new listeners
// can be opened, swaps it in for new requests: exchanges already open
// keep the routes they started with, unchanged listeners stay open, and
// moved ones are opened before the old ones close. Otherwise nothing
// changes, and the error is logged, counted and reported to systemd.
func (rl *reloader) reload() error {
	rl.notify.Reloading("reloading " + rl.path)
	if err := rl.apply(); err != nil {
		rl.metrics.Reloaded(false)
		rl.log.Error("reload refused: the running config stays", zap.String("config", rl.path), zap.Error(err))
		rl.notify.Ready("reload failed, still serving the previous config: " + err.Error())
		return err
	}
	rl.metrics.Reloaded(true)
	rl.notify.Ready(rl.status())
	return nil
}

func (rl *reloader) apply() error {
	cfg, err := config.Load(rl.path)
	if err != nil {
		return err
	}
	if needsRestart(rl.cfg, cfg) {
		rl.log.Warn("reload: server limits (timeouts, header and stream limits, max_connections) and log.format take effect only after a restart; listeners, certificates, routes, timeouts and log level are applied now")
	}
	// Certificate files are read again even when their names did not
	// change: a renewed certificate is picked up by a reload. With none
	// configured, the self-signed certificate stays.
	var tc *tls.Config
	if rl.acme != nil {
		// The certmagic manager holds the file certificates it defers to
		// and the names it manages; it is built once, at start.
		if !slices.Equal(cfg.TLS.Certificates, rl.cfg.TLS.Certificates) || !reflect.DeepEqual(cfg.TLS.ACME, rl.cfg.TLS.ACME) {
			rl.log.Warn("reload: with tls.acme on, changes to tls.certificates and tls.acme take effect only after a restart")
		}
	} else if len(cfg.TLS.Certificates) > 0 || len(rl.cfg.TLS.Certificates) > 0 {
		if tc, err = sluicetls.NewConfig(cfg.TLS.Certificates, rl.log.Named("tls")); err != nil {
			return certError(cfg, rl.path, err)
		}
	}
	change, err := rl.srv.Prepare(cfg.Listen, cfg.Admin)
	if err != nil {
		return err
	}
	rl.proxy.Update(cfg)
	change.Commit()
	if tc != nil {
		rl.srv.SetTLS(tc)
		rl.metrics.SetCertificates(tc.Certificates)
	}
	_ = rl.level.UnmarshalText([]byte(cfg.Log.Level)) // validated by Load
	if cfg.PIDFile != rl.cfg.PIDFile {
		if rl.cfg.PIDFile != "" {
			service.RemovePIDFile(rl.cfg.PIDFile)
		}
		if cfg.PIDFile != "" {
			if err := service.WritePIDFile(cfg.PIDFile); err != nil {
				rl.log.Error("cannot write the pid file", zap.Error(err))
			}
		}
	}
	rl.cfg = cfg
	rl.log.Info("config reloaded", zap.String("config", rl.path), zap.Int("routes", len(cfg.Routes)))
	return nil
}

// request asks serve's loop for a reload (POST /reload) and waits for it.
func (rl *reloader) request(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case rl.requests <- reply:
	case <-rl.stopping:
		return errors.New("sluice is stopping")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ready is /readyz: listeners up (a config is loaded once they are).
func (rl *reloader) ready() error {
	if rl.srv == nil || !rl.srv.Serving() {
		return errors.New("listeners are not serving")
	}
	return nil
}

// status is the one-line STATUS= systemd shows while serving.
func (rl *reloader) status() string {
	https, plain := rl.srv.Addrs()
	s := fmt.Sprintf("serving %d route(s) on https %s", len(rl.cfg.Routes), https)
	if plain != "" {
		s += ", http " + plain
	}
	if a := rl.srv.Addr(h2.NameAdmin); a != "" {
		s += ", admin " + a
	}
	return s
}

// needsRestart reports whether b changes settings that the listeners took
// at start.
func needsRestart(a, b *config.Config) bool {
	as, bs := a.Server, b.Server
	return as.ReadHeaderTimeout != bs.ReadHeaderTimeout || as.IdleTimeout != bs.IdleTimeout ||
		as.MaxHeaderBytes != bs.MaxHeaderBytes || as.MaxConcurrentStreams != bs.MaxConcurrentStreams ||
		as.MaxConnections != bs.MaxConnections || as.MaxConnectionsPerIP != bs.MaxConnectionsPerIP ||
		a.Log.Format != b.Log.Format
}

// reloadCommand is `sluice reload`: it checks the config file, then asks
// the running sluice to reload it — through the admin listener when one
// is configured (the answer says whether the reload worked), else by
// sending SIGHUP to the process in pid_file.
func reloadCommand(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, err)
		fmt.Fprintln(stderr, "sluice reload: not sent: the running sluice would refuse this config")
		return exitConfig
	}
	if cfg.Admin != "" {
		err := admin.RequestReload(cfg.Admin, 60*time.Second)
		if err == nil {
			fmt.Fprintf(stdout, "sluice reload: reloaded %s (admin %s)\n", path, cfg.Admin)
			return exitOK
		}
		if !errors.Is(err, admin.ErrUnreachable) || cfg.PIDFile == "" {
			fmt.Fprintf(stderr, "sluice reload: %s\n", strings.TrimSpace(err.Error()))
			return exitConfig
		}
	}
	if cfg.PIDFile != "" {
		pid, err := service.SignalPIDFile(cfg.PIDFile, syscall.SIGHUP)
		if err != nil {
			fmt.Fprintf(stderr, "sluice reload: %v\n", err)
			return exitConfig
		}
		fmt.Fprintf(stdout, "sluice reload: sent SIGHUP to process %d (%s); its log says whether the reload worked\n", pid, cfg.PIDFile)
		return exitOK
	}
	fmt.Fprintf(stderr, "sluice reload: %s sets neither admin nor pid_file: send SIGHUP yourself (systemctl reload sluice)\n", path)
	return exitConfig
}
