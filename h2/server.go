// Package h2 runs sluice's listeners: TLS with HTTP/2 (golang.org/x/net/http2)
// and HTTP/1.1 chosen by ALPN, and the plain-text listener that redirects
// to https. It sets every connection-level limit on purpose and drains
// connections on shutdown.
package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/sluiceproxy/sluice/config"
)

const (
	// A connection whose peer stops taking bytes for this long, while
	// sluice has bytes to send, is dead: close it. Streams that are merely
	// quiet send nothing and are not affected.
	writeByteTimeout = 60 * time.Second
	// An HTTP/2 connection silent for this long is probed with a PING;
	// no answer within pingTimeout closes it, which cancels its streams
	// and frees their upstreams. Catches clients that vanished without a
	// FIN (a laptop lid closed mid-stream).
	readIdleTimeout = 30 * time.Second
	pingTimeout     = 15 * time.Second
	// Frames up to 16 KiB may be read: the protocol's initial
	// SETTINGS_MAX_FRAME_SIZE. Larger ones are a FRAME_SIZE_ERROR (h2spec
	// 4.2/3, which assumes this value); the x/net default of 1 MiB would
	// only make each client DATA frame bigger.
	maxReadFrameSize = 16 << 10
	// Per-stream and per-connection receive windows for request bodies.
	maxUploadBufferPerStream = 1 << 20
	maxUploadBufferPerConn   = 4 << 20

	// The plain listener only redirects and answers ACME: strict limits.
	plainTimeout = 10 * time.Second
)

// Options configure a Server.
type Options struct {
	Listen  config.Listen
	Limits  config.Server
	TLS     *tls.Config
	Handler http.Handler
	Log     *zap.Logger
}

// Server owns the listeners and the http.Servers behind them.
type Server struct {
	log       *zap.Logger
	https     *http.Server
	plain     *http.Server
	httpsLn   net.Listener
	plainLn   net.Listener
	httpsPort string
	wg        sync.WaitGroup
	limits    config.Server
}

// New configures the servers; Listen binds them.
func New(o Options) (*Server, error) {
	l := o.Limits
	s := &Server{log: o.Log, limits: l}
	s.https = &http.Server{
		Handler:           o.Handler,
		TLSConfig:         o.TLS,
		ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
		IdleTimeout:       l.IdleTimeout.D(),
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		// ReadTimeout and WriteTimeout stay zero: they are absolute and
		// would cut every long stream. Each exchange has its own
		// deadlines instead (proxy package).
	}
	// ErrorLog lines are mostly TLS handshake noise from scanners.
	if stdLog, err := zap.NewStdLogAt(o.Log.Named("http"), zap.DebugLevel); err == nil {
		s.https.ErrorLog = stdLog
	}
	h2s := &http2.Server{
		MaxConcurrentStreams:         l.MaxConcurrentStreams,
		MaxReadFrameSize:             maxReadFrameSize,
		IdleTimeout:                  l.IdleTimeout.D(),
		ReadIdleTimeout:              readIdleTimeout,
		PingTimeout:                  pingTimeout,
		WriteByteTimeout:             writeByteTimeout,
		MaxUploadBufferPerConnection: maxUploadBufferPerConn,
		MaxUploadBufferPerStream:     maxUploadBufferPerStream,
	}
	if err := http2.ConfigureServer(s.https, h2s); err != nil {
		return nil, fmt.Errorf("configuring HTTP/2: %w", err)
	}
	// TLS is terminated below net/http (clientConn): HTTP/2 reaches it as
	// "unencrypted" HTTP/2 after ALPN h2, and goes to x/net through the
	// frame filter.
	s.https.Protocols = new(http.Protocols)
	s.https.Protocols.SetHTTP1(true)
	s.https.Protocols.SetUnencryptedHTTP2(true)
	s.https.TLSNextProto[nextProtoUnencryptedHTTP2] = serveH2(h2s, uint32(2*l.MaxHeaderBytes+8192), o.Log)
	s.https.ConnContext = connContext
	s.https.Handler = withTLSState(o.Handler)

	if o.Listen.HTTP != "" {
		s.plain = &http.Server{
			Handler:           http.HandlerFunc(s.redirect),
			ReadHeaderTimeout: plainTimeout,
			ReadTimeout:       plainTimeout,
			WriteTimeout:      plainTimeout,
			IdleTimeout:       plainTimeout,
			MaxHeaderBytes:    int(l.MaxHeaderBytes),
			ErrorLog:          s.https.ErrorLog,
		}
	}
	return s, nil
}

// Listen binds every configured address, so that a port in use is
// reported before anything is served.
func (s *Server) Listen(o config.Listen) error {
	ln, err := net.Listen("tcp", o.HTTPS)
	if err != nil {
		return fmt.Errorf("listening on %s (listen.https): %w", o.HTTPS, err)
	}
	s.httpsLn = newLimitListener(ln, s.limits.MaxConnections, s.limits.MaxConnectionsPerIP, s.log)
	if s.plain != nil {
		pl, err := net.Listen("tcp", o.HTTP)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on %s (listen.http): %w", o.HTTP, err)
		}
		s.plainLn = pl
		// With ":0" the redirect must name the port actually bound.
		_, s.httpsPort, _ = net.SplitHostPort(ln.Addr().String())
	}
	return nil
}

// Addrs returns the bound https and http addresses ("" when off).
func (s *Server) Addrs() (https, plain string) {
	if s.httpsLn != nil {
		https = s.httpsLn.Addr().String()
	}
	if s.plainLn != nil {
		plain = s.plainLn.Addr().String()
	}
	return https, plain
}

// Serve starts serving on the bound listeners and returns at once.
// Errors after start are logged.
func (s *Server) Serve() {
	s.serve(s.https, s.httpsLn, "https", func(srv *http.Server, ln net.Listener) error {
		return srv.Serve(&tlsListener{Listener: ln, config: srv.TLSConfig, maxHead: int(s.limits.MaxHeaderBytes) + 4096})
	})
	if s.plain != nil {
		s.serve(s.plain, s.plainLn, "http", (*http.Server).Serve)
	}
}

func (s *Server) serve(srv *http.Server, ln net.Listener, name string, serve func(*http.Server, net.Listener) error) {
	s.log.Info("listening", zap.String("listener", name), zap.String("addr", ln.Addr().String()))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(srv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener failed", zap.String("listener", name), zap.Error(err))
		}
	}()
}

// Shutdown stops accepting, sends HTTP/2 GOAWAY, closes idle connections
// and waits for open exchanges until ctx ends. It returns ctx's error if
// exchanges were still open then; the caller ends them and calls Close.
func (s *Server) Shutdown(ctx context.Context) error {
	var plainErr error
	if s.plain != nil {
		plainErr = s.plain.Shutdown(ctx)
	}
	err := s.https.Shutdown(ctx)
	if err == nil {
		err = plainErr
	}
	return err
}

// Close closes every listener and connection at once.
func (s *Server) Close() {
	s.https.Close()
	if s.plain != nil {
		s.plain.Close()
	}
	s.wg.Wait()
}

// redirect sends a plain-text request to the same host and path on https.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || !validRedirectHost(host) {
		http.Error(w, "400 bad host", http.StatusBadRequest)
		return
	}
	if s.httpsPort != "443" {
		host = net.JoinHostPort(host, s.httpsPort)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// validRedirectHost refuses hosts that could turn the redirect into
// something other than a plain https URL.
func validRedirectHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
