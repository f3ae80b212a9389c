package h2

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluiceproxy/sluice/internal/xnet/http2"
)

// sluice terminates TLS itself, below net/http, so that it can read what
// a client sends before net/http and x/net do:
//
//	TCP ─ limitListener ─ combineConn ─ tls.Server ─ clientConn ─┬─ h1Filter ─ net/http (HTTP/1.1)
//	                                                             └─ x/net/http2 (ALPN h2; internal/xnet)
//
// net/http sees a plain connection: for HTTP/1.1 it serves it as usual,
// and for an "h2" connection it sees the HTTP/2 preface and hands the
// connection over through TLSNextProto["unencrypted_http2"] (enabled by
// Protocols.SetUnencryptedHTTP2), which sluice points at its copy of
// x/net's server. The TLS state is given back to handlers by withTLSState
// (HTTP/1.1) and by h2Conn.ConnectionState (x/net reads it itself).
// The handshake runs on the first read, under net/http's read header
// deadline, so a slow handshake costs no accept-loop time.

// tlsListener wraps accepted connections in a combineConn, TLS and a
// clientConn.
type tlsListener struct {
	net.Listener
	config  *tls.Config
	maxHead int
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newClientConn(c, l.config, l.maxHead), nil
}

func newClientConn(c net.Conn, config *tls.Config, maxHead int) *clientConn {
	wc := newCombineConn(c)
	return &clientConn{tc: tls.Server(wc, config), wc: wc, maxHead: maxHead}
}

// clientConn is one client's TLS connection. After the handshake it
// filters HTTP/1.1 requests (h1Filter); HTTP/2 bytes pass unchanged to
// x/net, whose copy in internal/xnet checks what RFC 9113 asks of them.
//
// It deliberately has no ConnectionState method: net/http would take the
// TLS state before the handshake and would not offer its HTTP/2 path.
type clientConn struct {
	tc      *tls.Conn
	wc      *combineConn // under tc
	maxHead int

	once sync.Once
	herr error
	// handshook is set once the handshake has succeeded. Writes before
	// that are not corked: the handshake's own flights must reach the
	// client while tls.Conn waits for its answer.
	handshook atomic.Bool
	h1        *h1Filter // nil for HTTP/2
	// preface holds the HTTP/2 client preface, checked, until net/http
	// has read it: any other start of an h2 connection closes it, rather
	// than being parsed as HTTP/1.1 (h2spec 3.5/2).
	preface []byte
}

// A bad preface reads as io.EOF: net/http then closes the connection
// without answering it in HTTP/1.1.
var errBadPreface = io.EOF

func (c *clientConn) handshake() error {
	c.once.Do(func() {
		c.herr = handshakeApart(c.tc)
		if c.herr != nil {
			return
		}
		c.handshook.Store(true)
		if c.tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
			c.h1 = newH1Filter(c.tc, c.maxHead)
			return
		}
		c.preface = make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c.tc, c.preface); err != nil {
			c.herr = err
		} else if string(c.preface) != http2.ClientPreface {
			c.herr = errBadPreface
		}
	})
	return c.herr
}

// handshakeApart runs the TLS handshake on a goroutine of its own. The
// handshake's calls (certificate, key exchange, signature) go deeper than
// anything else a connection does, and a goroutine keeps the stack it grew
// for as long as it runs: the goroutine that reads the connection would
// keep it for the connection's life. (A collection halves an idle stack
// only while less than a quarter of it is used.)
func handshakeApart(tc *tls.Conn) error {
	errc := make(chan error, 1)
	go func() { errc <- tc.Handshake() }()
	return <-errc
}

func (c *clientConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	if c.h1 != nil {
		return c.h1.Read(p)
	}
	if len(c.preface) > 0 {
		n := copy(p, c.preface)
		c.preface = c.preface[n:]
		return n, nil
	}
	return c.tc.Read(p)
}

// Write seals p and writes its records to the socket with one system
// call (combineConn) before it returns.
func (c *clientConn) Write(p []byte) (int, error) {
	if len(p) < combineMin || !c.handshook.Load() {
		return c.tc.Write(p)
	}
	c.wc.cork(len(p))
	n, err := c.tc.Write(p)
	if ferr := c.wc.uncork(); ferr != nil && err == nil {
		// Some of what crypto/tls counted as written did not reach the
		// socket, and no one can say how much.
		return 0, ferr
	}
	return n, err
}

func (c *clientConn) Close() error                       { return c.tc.Close() }
func (c *clientConn) LocalAddr() net.Addr                { return c.tc.LocalAddr() }
func (c *clientConn) RemoteAddr() net.Addr               { return c.tc.RemoteAddr() }
func (c *clientConn) SetDeadline(t time.Time) error      { return c.tc.SetDeadline(t) }
func (c *clientConn) SetReadDeadline(t time.Time) error  { return c.tc.SetReadDeadline(t) }
func (c *clientConn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }

// h2Conn is the clientConn as x/net sees it: with the TLS state, and the
// socket's writes that do not block.
type h2Conn struct{ *clientConn }

func (c h2Conn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// TryWriter gives x/net the connection's writes that do not block, so
// that its serve loop writes itself rather than through its writer
// goroutine (http2.TryWriter); nil if the socket could not be reached.
func (c h2Conn) TryWriter() http2.TryWriter {
	if c.wc.rc == nil {
		return nil
	}
	return c.wc
}

type connKey struct{}

// connContext records the clientConn in each request's context, for
// withTLSState.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*clientConn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

// withTLSState sets r.TLS on HTTP/1.1 requests, which net/http leaves nil
// because it did not terminate the TLS itself.
func withTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			setTLSState(r)
		}
		h.ServeHTTP(w, r)
	})
}

// setTLSState is out of line: the state is a large value, and this frame
// would otherwise sit under every handler's stack, HTTP/2 ones included
// (see proxy.forward on why that matters).
func setTLSState(r *http.Request) {
	if cc, ok := r.Context().Value(connKey{}).(*clientConn); ok {
		st := cc.tc.ConnectionState()
		r.TLS = &st
	}
}

// serveH2 is TLSNextProto["unencrypted_http2"]: net/http calls it with
// the clientConn, wrapped, once it has read the HTTP/2 preface. Only a
// connection that chose h2 by ALPN gets HTTP/2; prior knowledge over an
// http/1.1 TLS connection is refused.
func serveH2(h2s *http2.Server) func(*http.Server, *tls.Conn, http.Handler) {
	return func(hs *http.Server, fake *tls.Conn, h http.Handler) {
		inner, ok := fake.NetConn().(interface{ UnencryptedNetConn() net.Conn })
		if !ok {
			fake.Close()
			return
		}
		cc, ok := inner.UnencryptedNetConn().(*clientConn)
		if !ok || cc.h1 != nil {
			inner.UnencryptedNetConn().Close()
			return
		}
		ctx := context.Background()
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		h2s.ServeConn(h2Conn{cc}, &http2.ServeConnOpts{
			Context:          ctx,
			Handler:          h,
			BaseConfig:       hs,
			SawClientPreface: true,
		})
	}
}

// nextProtoUnencryptedHTTP2 is net/http's TLSNextProto key for HTTP/2
// over a connection it did not terminate TLS on.
const nextProtoUnencryptedHTTP2 = "unencrypted_http2"
