// Package h2 runs sluice's listeners: TLS with HTTP/2 (golang.org/x/net/http2)
// and HTTP/1.1 chosen by ALPN, and the plain-text listener that redirects
// to https. It sets every connection-level limit on purpose and drains
// connections on shutdown.
package h2

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
	"github.com/sluiceproxy/sluice/internal/xnet/http2"
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
	// The admin listener answers scrapes and probes: short limits.
	adminWriteTimeout = 30 * time.Second
	adminIdleTimeout  = 60 * time.Second
)

// Options configure a Server.
type Options struct {
	Listen  config.Listen
	Limits  config.Server
	TLS     *tls.Config
	Handler http.Handler
	Log     *zap.Logger
	// ACMEHTTP, when set, wraps the plain listener's redirect so that it
	// answers ACME HTTP-01 challenges first.
	ACMEHTTP func(http.Handler) http.Handler

	// AdminAddr is the admin listener's address, served by AdminHandler;
	// "" turns it off.
	AdminAddr    string
	AdminHandler http.Handler
	// Activated holds the sockets systemd passed; nil when none.
	Activated *Activation
}

// Server owns the listeners and the http.Servers behind them. Each
// listener (https, http, admin) is a slot whose address can change on
// reload without touching the others (listeners.go).
type Server struct {
	log       *zap.Logger
	https     *http.Server
	plain     *http.Server
	admin     *http.Server
	act       *Activation
	mu        sync.Mutex // guards slots' listeners during Serve, Prepare and Commit
	slots     []*slot
	httpsPort atomic.Pointer[string]
	tlsConfig atomic.Pointer[tls.Config]
	serving   atomic.Bool
	h3        *http3Server // nil unless listen.http3
	wg        sync.WaitGroup
	limits    config.Server
}

// New configures the servers; Listen binds them.
func New(o Options) (*Server, error) {
	l := o.Limits
	s := &Server{log: o.Log, act: o.Activated, limits: l}
	s.https = &http.Server{
		Handler:           o.Handler,
		TLSConfig:         s.dynamicTLS(o.TLS), // certificates swapped on reload (tlsreload.go)
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
	// "unencrypted" HTTP/2 after ALPN h2, and goes to the server in
	// internal/xnet (serveH2).
	s.https.Protocols = new(http.Protocols)
	s.https.Protocols.SetHTTP1(true)
	s.https.Protocols.SetUnencryptedHTTP2(true)
	s.https.TLSNextProto[nextProtoUnencryptedHTTP2] = serveH2(h2s)
	s.https.ConnContext = connContext
	s.https.Handler = withTLSState(o.Handler)

	// The plain server exists even when listen.http is off, so that a
	// reload can turn it on.
	var plain http.Handler = http.HandlerFunc(s.redirect)
	if o.ACMEHTTP != nil {
		plain = o.ACMEHTTP(plain)
	}
	s.plain = &http.Server{
		Handler:           plain,
		ReadHeaderTimeout: plainTimeout,
		ReadTimeout:       plainTimeout,
		WriteTimeout:      plainTimeout,
		IdleTimeout:       plainTimeout,
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		ErrorLog:          s.https.ErrorLog,
	}
	s.slots = []*slot{
		{name: NameHTTPS, key: "listen.https", srv: s.https, tls: true},
		{name: NameHTTP, key: "listen.http", srv: s.plain},
	}
	if o.AdminHandler != nil {
		s.admin = &http.Server{
			Handler:           o.AdminHandler,
			ReadHeaderTimeout: plainTimeout,
			ReadTimeout:       plainTimeout,
			WriteTimeout:      adminWriteTimeout,
			IdleTimeout:       adminIdleTimeout,
			MaxHeaderBytes:    int(l.MaxHeaderBytes),
			ErrorLog:          s.https.ErrorLog,
		}
		s.slots = append(s.slots, &slot{name: NameAdmin, key: "admin", srv: s.admin, addr: o.AdminAddr})
	}
	if o.Listen.HTTP3 {
		// HTTP/3 shares the certificates, reloads included.
		o.TLS = s.https.TLSConfig
		s.h3 = newHTTP3(o)
	}
	return s, nil
}

// Shutdown stops accepting, sends HTTP/2 GOAWAY, closes idle connections
// and waits for open exchanges until ctx ends. It returns ctx's error if
// exchanges were still open then; the caller ends them and calls Close.
// The admin listener stays up (metrics, /readyz answering 503) until
// Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.serving.Store(false)
	h3Err := make(chan error, 1)
	go func() { h3Err <- s.shutdownHTTP3(ctx) }()
	plainErr := s.plain.Shutdown(ctx)
	err := s.https.Shutdown(ctx)
	if err == nil {
		err = plainErr
	}
	if e := <-h3Err; err == nil {
		err = e
	}
	return err
}

// Close closes every listener and connection at once.
func (s *Server) Close() {
	s.serving.Store(false)
	s.https.Close()
	s.plain.Close()
	if s.admin != nil {
		s.admin.Close()
	}
	s.closeHTTP3()
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
	if httpsPort := *s.httpsPort.Load(); httpsPort != "443" {
		host = net.JoinHostPort(host, httpsPort)
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
