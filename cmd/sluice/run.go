package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
	"github.com/sluiceproxy/sluice/demo"
	"github.com/sluiceproxy/sluice/h2"
	"github.com/sluiceproxy/sluice/proxy"
	sluicetls "github.com/sluiceproxy/sluice/tls"
)

// validate checks a config file, and the certificate files it names.
func validate(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	if len(cfg.TLS.Certificates) > 0 {
		if _, err := sluicetls.NewConfig(cfg.TLS.Certificates, zap.NewNop()); err != nil {
			printConfigError(stderr, certError(cfg, path, err))
			return exitConfig
		}
	}
	fmt.Fprintf(stdout, "%s: ok: %d route(s); https on %s%s\n", path, len(cfg.Routes), cfg.Listen.HTTPS, plainSummary(cfg))
	return exitOK
}

func plainSummary(cfg *config.Config) string {
	if cfg.Listen.HTTP == "" {
		return ""
	}
	return ", http redirect on " + cfg.Listen.HTTP
}

// certError places a certificate problem at its config key.
func certError(cfg *config.Config, path string, err error) error {
	var ce *sluicetls.CertError
	if errors.As(err, &ce) {
		return cfg.ErrorAt(path, fmt.Sprintf("tls.certificates[%d]", ce.Index), "%v", ce.Err)
	}
	return err
}

func run(path string, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, err)
		return exitConfig
	}
	return serve(cfg, path, func(*zap.Logger, string) {}, stderr)
}

// serve runs sluice with cfg until SIGTERM or SIGINT, then stops
// gracefully. ready is called once the listeners are bound.
func serve(cfg *config.Config, path string, ready func(log *zap.Logger, httpsAddr string), stderr io.Writer) int {
	level := zap.NewAtomicLevel()
	log, err := newLogger(cfg.Log, level, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return exitConfig
	}
	defer log.Sync()

	tlsConfig, err := sluicetls.NewConfig(cfg.TLS.Certificates, log.Named("tls"))
	if err != nil {
		printConfigError(stderr, certError(cfg, path, err))
		return exitConfig
	}
	p := proxy.New(cfg, log.Named("proxy"))
	srv, err := h2.New(h2.Options{Listen: cfg.Listen, Limits: cfg.Server, TLS: tlsConfig, Handler: p, Log: log.Named("h2")})
	if err != nil {
		log.Error("setting up listeners", zap.Error(err))
		return exitConfig
	}
	if err := srv.Listen(cfg.Listen); err != nil {
		log.Error("cannot listen", zap.Error(err))
		return exitConfig
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)

	srv.Serve()
	httpsAddr, _ := srv.Addrs()
	log.Info("sluice started", zap.String("version", getVersion()), zap.String("config", path), zap.Int("routes", len(cfg.Routes)))
	ready(log, httpsAddr)

	for sig := range signals {
		if sig == syscall.SIGHUP {
			cfg = reload(cfg, path, p, level, log)
			continue
		}
		log.Info("stopping: draining open exchanges", zap.String("signal", sig.String()), zap.Duration("shutdown_timeout", cfg.Server.ShutdownTimeout.D()))
		break
	}
	shutdown(srv, p, cfg.Server.ShutdownTimeout.D(), log)
	log.Info("stopped")
	return exitOK
}

// shutdown stops accepting, lets open exchanges finish for up to drain,
// then ends the rest (close_reason shutdown) and closes everything.
func shutdown(srv *h2.Server, p *proxy.Proxy, drain time.Duration, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	err := srv.Shutdown(ctx)
	cancel()
	if err != nil {
		log.Warn("drain time over: ending open exchanges", zap.Duration("shutdown_timeout", drain))
		p.Abort()
		// Give the aborted handlers a moment to reset their streams and
		// write their access-log lines before the connections close.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
	}
	srv.Close()
	p.Close()
}

// reload loads the config file again and swaps in its routes, timeouts
// and log level for new requests. A bad file changes nothing.
func reload(old *config.Config, path string, p *proxy.Proxy, level zap.AtomicLevel, log *zap.Logger) *config.Config {
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("reload refused: config has errors; the running config stays", zap.String("config", path), zap.Error(err))
		return old
	}
	if needsRestart(old, cfg) {
		log.Warn("reload: listener, server and tls settings take effect only after a restart; routes, timeouts and log level are applied now")
	}
	p.Update(cfg)
	_ = level.UnmarshalText([]byte(cfg.Log.Level)) // validated by Load
	log.Info("config reloaded", zap.String("config", path), zap.Int("routes", len(cfg.Routes)))
	return cfg
}

// needsRestart reports whether b changes settings that the listeners took
// at start.
func needsRestart(a, b *config.Config) bool {
	as, bs := a.Server, b.Server
	return a.Listen != b.Listen || a.Admin != b.Admin ||
		as.ReadHeaderTimeout != bs.ReadHeaderTimeout || as.IdleTimeout != bs.IdleTimeout ||
		as.MaxHeaderBytes != bs.MaxHeaderBytes || as.MaxConcurrentStreams != bs.MaxConcurrentStreams ||
		as.MaxConnections != bs.MaxConnections || as.MaxConnectionsPerIP != bs.MaxConnectionsPerIP ||
		!slices.Equal(a.TLS.Certificates, b.TLS.Certificates) || a.Log.Format != b.Log.Format
}

func runDemo(listen string, stdout, stderr io.Writer) int {
	upstream, stop, err := demo.Serve()
	if err != nil {
		fmt.Fprintf(stderr, "sluice demo: starting the demo app: %v\n", err)
		return exitConfig
	}
	defer stop()
	cfg, err := config.Parse("demo config", []byte(demo.Config(listen, upstream)))
	if err != nil {
		fmt.Fprintf(stderr, "sluice demo: %v\n", err)
		return exitUsage
	}
	return serve(cfg, "demo config", func(log *zap.Logger, addr string) {
		base := "https://" + addr
		if h, port, err := net.SplitHostPort(addr); err == nil && (h == "127.0.0.1" || h == "::1") {
			base = "https://localhost:" + port
		}
		fmt.Fprintf(stdout, `
sluice demo is running (self-signed certificate for localhost; press Ctrl-C to stop)

  page         %[1]s/
  SSE clock    %[1]s/events
  slow CSV     %[1]s/export.csv

Watch a stream arrive chunk by chunk over HTTP/2:

  curl -N -k --http2 %[1]s/events

`, base)
	}, stderr)
}
