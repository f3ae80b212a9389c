package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
	"github.com/sluiceproxy/sluice/h2"
	"github.com/sluiceproxy/sluice/proxy"
	sluicetls "github.com/sluiceproxy/sluice/tls"
)

// certFiles is the one certificate every peer serves.
type certFiles struct {
	cert, key, pem string
	pool           *x509.CertPool
}

func writeCert(dir string) (certFiles, error) {
	c, err := sluicetls.SelfSigned(sluicetls.LocalhostNames, 24*time.Hour)
	if err != nil {
		return certFiles{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return certFiles{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	f := certFiles{
		cert: filepath.Join(dir, "cert.pem"),
		key:  filepath.Join(dir, "key.pem"),
		pem:  filepath.Join(dir, "combined.pem"),
		pool: x509.NewCertPool(),
	}
	f.pool.AddCert(c.Leaf)
	for path, b := range map[string][]byte{f.cert: certPEM, f.key: keyPEM, f.pem: append(append([]byte{}, certPEM...), keyPEM...)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return certFiles{}, err
		}
	}
	return f, nil
}

// serveFlags are the flags of the in-Go peers the bench re-executes
// itself as: where to listen, the upstream, and the certificate.
type serveFlags struct{ listen, upstream, cert, key string }

func parseServeFlags(name string, args []string) serveFlags {
	var f serveFlags
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.StringVar(&f.listen, "listen", "", "address")
	fs.StringVar(&f.upstream, "upstream", "", "host:port")
	fs.StringVar(&f.cert, "cert", "", "PEM file")
	fs.StringVar(&f.key, "key", "", "PEM file")
	fs.Parse(args)
	return f
}

// serveHTTPUtil runs the baseline peer: a plain httputil.ReverseProxy
// behind net/http's TLS server (HTTP/2 by default), nothing tuned.
func serveHTTPUtil(args []string) error {
	f := parseServeFlags("serve-httputil", args)
	target := &url.URL{Scheme: "http", Host: f.upstream}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{Addr: f.listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go waitSignal(func() { srv.Close() })
	if err := srv.ListenAndServeTLS(f.cert, f.key); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// serveSluice runs sluice's proxy and listeners the way cmd/sluice does,
// in this process, writing CPU and heap profiles to dir on SIGTERM.
func serveSluice(args []string) error {
	fs := flag.NewFlagSet("serve-sluice", flag.ExitOnError)
	path := fs.String("config", "", "sluice config")
	dir := fs.String("profile", "", "directory for cpu.pprof and heap.pprof")
	memRate := fs.Int("memrate", 4096, "runtime.MemProfileRate")
	withTrace := fs.Bool("trace", false, "also write an execution trace to trace.out in the profile directory")
	fs.Parse(args)
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := zap.NewNop()
	tc, err := sluicetls.NewConfig(cfg.TLS.Certificates, log)
	if err != nil {
		return err
	}
	p := proxy.New(cfg, log)
	srv, err := h2.New(h2.Options{Listen: cfg.Listen, Limits: cfg.Server, TLS: tc, Handler: p, Log: log})
	if err != nil {
		return err
	}
	if err := srv.Listen(cfg.Listen); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(*dir, "cpu.pprof"))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	runtime.MemProfileRate = *memRate
	if *withTrace {
		tf, err := os.Create(filepath.Join(*dir, "trace.out"))
		if err != nil {
			return err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return err
		}
		defer trace.Stop()
	}
	srv.Serve()
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, sigHeapProfile)
	go func() {
		for range usr {
			writeHeap(filepath.Join(*dir, "heap-held.pprof"))
		}
	}()
	waitSignal(func() {})
	pprof.StopCPUProfile()
	cpu.Close()
	err = writeHeap(filepath.Join(*dir, "heap.pprof"))
	srv.Close()
	p.Close()
	return err
}

// sigHeapProfile asks the profiled sluice for a heap profile now (the
// bench sends it while the held streams are open).
const sigHeapProfile = syscall.SIGUSR1

func writeHeap(path string) error {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stats := fmt.Sprintf("goroutines %d\nHeapInuse %d\nHeapIdle %d\nHeapReleased %d\nStackInuse %d\nSys %d\nMSpanInuse %d\nGCSys %d\nOtherSys %d\n",
		runtime.NumGoroutine(), ms.HeapInuse, ms.HeapIdle, ms.HeapReleased, ms.StackInuse, ms.Sys, ms.MSpanInuse, ms.GCSys, ms.OtherSys)
	// New goroutines start with the average stack the last GC scanned
	// (adaptive stack start), so one deep path raises every stream's cost.
	start := []rtmetrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	rtmetrics.Read(start)
	if start[0].Value.Kind() == rtmetrics.KindUint64 {
		stats += fmt.Sprintf("StackStartingSize %d\n", start[0].Value.Uint64())
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".pprof")+"-memstats.txt", []byte(stats), 0o644); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("writing heap profile: %w", err)
	}
	return nil
}

func waitSignal(then func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	then()
}

func goVersion() string { return runtime.Version() }
