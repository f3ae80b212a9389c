package h2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

const (
	// A QUIC connection that hears nothing from its peer for this long is
	// dead and closed, which cancels its streams and frees their
	// upstreams (the HTTP/2 PING probe's job, readIdleTimeout+pingTimeout).
	quicMaxIdleTimeout = 45 * time.Second
	// sluice PINGs a quiet connection this often (quic-go caps it at half
	// the idle timeout both sides agreed on), so a live peer never lets
	// the QUIC idle timeout cut an open stream: only the route's idle
	// timeout ends a silent exchange.
	quicKeepAlivePeriod = 15 * time.Second
	// altSvcMaxAge is how long clients may remember the HTTP/3 endpoint.
	altSvcMaxAge = 24 * 60 * 60
)

// http3Server is the QUIC listener: HTTP/3 on the UDP port of the https
// address, with the same TLS config and handler as HTTP/2.
type http3Server struct {
	srv  *http3.Server
	conn net.PacketConn

	drainOnce sync.Once
	drained   chan struct{} // closed when the graceful shutdown is over
	drainErr  error
}

func newHTTP3(o Options) *http3Server {
	l := o.Limits
	return &http3Server{srv: &http3.Server{
		Handler:        o.Handler,
		TLSConfig:      o.TLS, // http3 clones it and sets ALPN h3
		MaxHeaderBytes: int(l.MaxHeaderBytes),
		// Closes a connection with no open request stream; QUIC PINGs do
		// not count, open streams do.
		IdleTimeout: l.IdleTimeout.D(),
		QUICConfig: &quic.Config{
			HandshakeIdleTimeout: l.ReadHeaderTimeout.D(),
			MaxIdleTimeout:       quicMaxIdleTimeout,
			KeepAlivePeriod:      quicKeepAlivePeriod,
			MaxIncomingStreams:   int64(l.MaxConcurrentStreams),
		},
		Logger: slog.New(zapslog.NewHandler(o.Log.Named("http3").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel)).Core())),
	}}
}

// listen binds the UDP port of the bound https address.
func (h *http3Server) listen(httpsAddr string) error {
	conn, err := net.ListenPacket("udp", httpsAddr)
	if err != nil {
		return fmt.Errorf("listening on udp %s (listen.http3): %w", httpsAddr, err)
	}
	h.conn = conn
	return nil
}

// altSvc advertises HTTP/3 on every HTTP/1.1 and HTTP/2 response.
func altSvc(next http.Handler, port string) http.Handler {
	v := `h3=":` + port + `"; ma=` + strconv.Itoa(altSvcMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor < 3 {
			w.Header().Set("Alt-Svc", v)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveHTTP3() {
	if s.h3 == nil {
		return
	}
	s.log.Info("listening", zap.String("listener", "http3"), zap.String("addr", s.h3.conn.LocalAddr().String()))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.h3.srv.Serve(s.h3.conn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
			s.log.Error("listener failed", zap.String("listener", "http3"), zap.Error(err))
		}
	}()
}

// shutdownHTTP3 sends GOAWAY and waits for open streams until ctx ends.
// Unlike http3.Server.Shutdown it does not close the connections when ctx
// ends: as over HTTP/2 the proxy first ends the open exchanges itself
// (close_reason shutdown), then Close closes what is left.
func (s *Server) shutdownHTTP3(ctx context.Context) error {
	h := s.h3
	if h == nil {
		return nil
	}
	h.drainOnce.Do(func() {
		h.drained = make(chan struct{})
		go func() {
			h.drainErr = h.srv.Shutdown(context.Background())
			close(h.drained)
		}()
	})
	select {
	case <-h.drained:
		return h.drainErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) closeHTTP3() {
	if s.h3 == nil {
		return
	}
	s.h3.srv.Close()
	if s.h3.conn != nil {
		s.h3.conn.Close()
	}
}
