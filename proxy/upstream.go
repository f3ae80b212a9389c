package proxy

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/sluiceproxy/sluice/config"
	"github.com/sluiceproxy/sluice/proxy/h1client"
)

// upstream is one backend address with its own keep-alive pool. Its
// transport returns a connection to the pool only after its response body
// was read to the end; a body closed early closes the connection, so a
// half-read stream is never handed to the next exchange.
type upstream struct {
	addr      config.Upstream
	name      string // addr.String(), for logs and metrics
	urlHost   string // host part of outgoing URLs
	transport transport
}

// transport is what the proxy needs of an upstream transport: sluice's own
// HTTP/1.1 client for plain and unix-socket upstreams, net/http's for h2c.
type transport interface {
	RoundTrip(*http.Request) (*http.Response, error)
	CloseIdleConnections()
}

const (
	// Upstream header blocks beyond this are a fault (or an attack from a
	// compromised backend), not a response.
	maxUpstreamHeaderBytes = 1 << 20
	dialTimeout            = 10 * time.Second
	upstreamIdleConnTime   = 90 * time.Second
	maxIdleConnsPerBackend = 256
)

func newUpstream(addr config.Upstream) *upstream {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	network, address := addr.Network, addr.Address
	u := &upstream{addr: addr, name: addr.String(), urlHost: addr.Address}
	if network == "unix" {
		// The URL host is only the Host header's fallback; the dialer
		// ignores it.
		u.urlHost = "localhost"
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			// Typed so a retry can tell that nothing was sent.
			return nil, &dialError{err}
		}
		return c, nil
	}
	if !addr.H2C {
		u.transport = &h1client.Transport{
			Dial:                   dial,
			MaxIdleConns:           maxIdleConnsPerBackend,
			IdleConnTimeout:        upstreamIdleConnTime,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
		}
		return u
	}
	t := &http.Transport{
		DialContext:            func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		MaxIdleConns:           0, // bounded per backend below
		MaxIdleConnsPerHost:    maxIdleConnsPerBackend,
		IdleConnTimeout:        upstreamIdleConnTime,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
		// Bodies pass through as the upstream encoded them.
		DisableCompression: true,
	}
	useH2C(t)
	u.transport = t
	return u
}

func (u *upstream) close() { u.transport.CloseIdleConnections() }
