package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/sluiceproxy/sluice/config"
)

// upstream is one backend address with its own keep-alive pool. The
// http.Transport returns a connection to the pool only after its response
// body was read to the end; a body closed early closes the connection, so
// a half-read stream is never handed to the next exchange.
type upstream struct {
	addr      config.Upstream
	urlHost   string // host part of outgoing URLs; keys the pool
	transport *http.Transport
}

const (
	// Upstream header blocks beyond this are a fault (or an attack from a
	// compromised backend), not a response.
	maxUpstreamHeaderBytes = 1 << 20
	dialTimeout            = 10 * time.Second
	upstreamIdleConnTime   = 90 * time.Second
	maxIdleConnsPerBackend = 256
	// Every open exchange holds its upstream connection's buffers, so
	// they are what thousands of quiet streams cost. The write buffer
	// carries only request heads and body chunks on their way out; 1 KiB
	// holds a typical head, and larger writes go to the socket directly.
	// The read buffer holds response heads (longer lines are joined by
	// textproto) and each chunk's header with the start of its data; the
	// chunked reader reads the rest of a chunk straight into the copy
	// buffer, so one copy read still returns one whole chunk.
	upstreamReadBufSize  = 2 << 10
	upstreamWriteBufSize = 1 << 10
)

func newUpstream(addr config.Upstream) *upstream {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	network, address := addr.Network, addr.Address
	u := &upstream{addr: addr, urlHost: addr.Address}
	if network == "unix" {
		// The URL host only names the pool; the dialer ignores it.
		u.urlHost = "localhost"
	}
	u.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, address)
			if err != nil {
				// Typed so a retry can tell that nothing was sent.
				return nil, &dialError{err}
			}
			return c, nil
		},
		MaxIdleConns:           0, // bounded per backend below
		MaxIdleConnsPerHost:    maxIdleConnsPerBackend,
		IdleConnTimeout:        upstreamIdleConnTime,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
		ReadBufferSize:         upstreamReadBufSize,
		WriteBufferSize:        upstreamWriteBufSize,
		// Bodies pass through as the upstream encoded them.
		DisableCompression: true,
		// Upstreams speak HTTP/1.1; a non-nil empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if addr.H2C {
		useH2C(u.transport)
	}
	return u
}

func (u *upstream) close() { u.transport.CloseIdleConnections() }
