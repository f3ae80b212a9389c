package proxy

import "time"

// Observer is told about every exchange: once when it starts and once
// when it ends, never per chunk. The metrics package implements it; the
// proxy knows nothing of how the numbers are kept.
type Observer interface {
	// ExchangeStarted is called when a request arrives, with its route
	// name ("" when no route matched).
	ExchangeStarted(route string)
	// UpstreamResponded is called when the upstream's response headers
	// arrive, wait after the request did.
	UpstreamResponded(route string, wait time.Duration)
	// ExchangeEnded is called once for every ExchangeStarted.
	ExchangeEnded(ExchangeEnd)
}

// ExchangeEnd describes a finished exchange.
type ExchangeEnd struct {
	Route       string // "" when no route matched
	Status      int    // status sent to the client (499: it went away first)
	CloseReason string // as in the access log: done, client_gone, idle_timeout, ...
	BytesOut    int64  // response body bytes written to the client
	Duration    time.Duration
}

// SetObserver installs o; call it before serving.
func (p *Proxy) SetObserver(o Observer) { p.obs = o }

func (p *Proxy) observeStart(rt *route) {
	if p.obs != nil {
		p.obs.ExchangeStarted(rt.nameOrEmpty())
	}
}

func (p *Proxy) observeEnd(rt *route, start time.Time, info accessInfo) {
	if p.obs != nil {
		p.obs.ExchangeEnded(ExchangeEnd{
			Route:       rt.nameOrEmpty(),
			Status:      info.status,
			CloseReason: string(info.reason),
			BytesOut:    info.bytesOut,
			Duration:    time.Since(start),
		})
	}
}

func (p *Proxy) observeHeaders(rt *route, wait time.Duration) {
	if p.obs != nil {
		p.obs.UpstreamResponded(rt.name, wait)
	}
}

func (rt *route) nameOrEmpty() string {
	if rt == nil {
		return ""
	}
	return rt.name
}
