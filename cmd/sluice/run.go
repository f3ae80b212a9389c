package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/admin"
	"github.com/sluiceproxy/sluice/config"
	"github.com/sluiceproxy/sluice/demo"
	"github.com/sluiceproxy/sluice/h2"
	"github.com/sluiceproxy/sluice/metrics"
	"github.com/sluiceproxy/sluice/proxy"
	"github.com/sluiceproxy/sluice/service"
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
	if err := sluicetls.CheckACME(cfg.TLS.ACME); err != nil {
		printConfigError(stderr, acmeError(cfg, path, err))
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s: ok: %d route(s); %s\n", path, len(cfg.Routes), listenSummary(cfg))
	return exitOK
}

// listenSummary says in a few words what a config will serve.
func listenSummary(cfg *config.Config) string {
	s := "https on " + cfg.Listen.HTTPS
	if cfg.Listen.HTTP3 {
		s += " (+HTTP/3)"
	}
	if cfg.Listen.HTTP != "" {
		s += ", http redirect on " + cfg.Listen.HTTP
	}
	if cfg.Admin != "" {
		s += ", admin on " + cfg.Admin
	}
	switch {
	case cfg.TLS.ACME != nil:
		s += ", certificates by ACME"
	case len(cfg.TLS.Certificates) == 0:
		s += ", self-signed localhost certificate"
	}
	return s
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
	// Caught from the start: SIGHUP's default action would kill sluice.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)
	notify := service.NewNotifier(log.Named("systemd"))
	sockets, err := h2.Activated()
	if err != nil {
		log.Error("cannot use the sockets systemd passed", zap.Error(err))
		return exitConfig
	}

	tlsConfig, acme, err := setupTLS(cfg, log.Named("tls"))
	if err != nil {
		printConfigError(stderr, acmeError(cfg, path, err))
		return exitConfig
	}
	m := metrics.New()
	m.SetCertificates(tlsConfig.Certificates)
	p := proxy.New(cfg, log.Named("proxy"))
	p.SetObserver(m)
	rl := newReloader(cfg, path, p, m, level, notify, log)
	rl.acme = acme
	srv, err := h2.New(h2.Options{
		Listen: cfg.Listen, Limits: cfg.Server, TLS: tlsConfig, Handler: p, Log: log.Named("h2"),
		ACMEHTTP:  acmeHTTP(acme),
		AdminAddr: cfg.Admin, AdminHandler: admin.Handler(admin.Options{
			Gatherer: m.Registry(), Ready: rl.ready, Reload: rl.request, Log: log.Named("admin"),
		}),
		Activated: sockets,
	})
	if err != nil {
		log.Error("setting up listeners", zap.Error(err))
		return exitConfig
	}
	rl.srv = srv
	if err := srv.Listen(cfg.Listen); err != nil {
		log.Error("cannot listen", zap.Error(err))
		return exitConfig
	}
	if unused := sockets.Unused(); len(unused) > 0 {
		log.Warn("sockets passed by systemd match no listener: name them https, http or admin (FileDescriptorName=) or configure their addresses", zap.Strings("sockets", unused))
	}
	if cfg.PIDFile != "" {
		if err := service.WritePIDFile(cfg.PIDFile); err != nil {
			log.Error("cannot write the pid file", zap.Error(err))
			return exitConfig
		}
		defer func() { service.RemovePIDFile(rl.cfg.PIDFile) }()
	}

	srv.Serve()
	stopACME := startACME(acme, log.Named("tls"))
	defer stopACME()
	httpsAddr, _ := srv.Addrs()
	// GOMAXPROCS is logged because it matters on a small machine shared
	// with the app (README, "Tuning").
	log.Info("sluice started", zap.String("version", getVersion()), zap.String("config", path), zap.Int("routes", len(cfg.Routes)), zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
	notify.Ready(rl.status())
	if iv := notify.WatchdogInterval(); iv > 0 {
		stop := watchdog(notify, iv)
		defer stop()
	}
	ready(log, httpsAddr)

	for stopping := false; !stopping; {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = rl.reload()
				continue
			}
			log.Info("stopping: draining open exchanges", zap.String("signal", sig.String()), zap.Duration("shutdown_timeout", rl.cfg.Server.ShutdownTimeout.D()))
			stopping = true
		case reply := <-rl.requests:
			reply <- rl.reload()
		}
	}
	close(rl.stopping)
	notify.Stopping(fmt.Sprintf("stopping: draining open exchanges for up to %s", rl.cfg.Server.ShutdownTimeout.D()))
	shutdown(srv, p, rl.cfg.Server.ShutdownTimeout.D(), log)
	log.Info("stopped")
	return exitOK
}

// watchdog pings systemd every interval until stop is called; the pings
// go on while draining, which may outlast WatchdogSec.
func watchdog(n *service.Notifier, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	n.Watchdog()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				n.Watchdog()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
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
