// Package proxy routes requests to upstreams and forwards responses,
// streaming them frame by frame, with each route's timeouts. It is an
// http.Handler; listeners and TLS live in other packages.
package proxy

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
)

// Proxy is the http.Handler that serves every route. Its config is a
// snapshot swapped atomically by Update, so an exchange keeps the route it
// started with while new requests see the new config.
type Proxy struct {
	log *zap.Logger

	table atomic.Pointer[table]

	mu        sync.Mutex
	upstreams map[string]*upstream // keyed by address; kept across updates
	pools     []*pool              // of the current table: their health checks run

	live liveSet // the open exchanges, which Abort ends

	obs Observer // nil: none (observer.go)
}

// table is one config snapshot, compiled for serving.
type table struct {
	router  *router
	trusted []netip.Prefix
	access  *zap.Logger // nil when log.access is off
	limits  requestLimits
}

// route is one compiled config route.
type route struct {
	name           string
	host, path     string
	pool           *pool
	streaming      config.Streaming
	responseHeader time.Duration
	idle           time.Duration
	total          time.Duration
	retryTries     int
	retryWithin    time.Duration
	compress       *compressRule // nil: off
	maxBody        int64         // 0: no limit
	upgrades       []string      // allowed, lowercased
}

func (rt *route) upgradeAllowed(proto string) bool {
	for _, u := range rt.upgrades {
		if u == proto {
			return true
		}
	}
	return false
}

// New builds a Proxy for cfg. log receives lifecycle and error lines;
// access lines go to its "access" child when cfg.Log.Access is set.
func New(cfg *config.Config, log *zap.Logger) *Proxy {
	p := &Proxy{log: log, upstreams: map[string]*upstream{}}
	p.Update(cfg)
	return p
}

// Update swaps in cfg for new requests. Exchanges already open finish with
// the routes they started with.
func (p *Proxy) Update(cfg *config.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	routes := make([]*route, 0, len(cfg.Routes))
	var pools []*pool
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		var ups []*upstream
		for _, s := range rc.Backends() {
			// Validated by config.Load; an error here is a bug.
			addr, err := config.ParseUpstream(s)
			if err != nil {
				panic("proxy: unvalidated upstream: " + err.Error())
			}
			up, ok := p.upstreams[addr.String()]
			if !ok {
				up = newUpstream(addr)
				p.upstreams[addr.String()] = up
			}
			ups = append(ups, up)
		}
		pl := newPool(rc, ups, p.log)
		pools = append(pools, pl)
		rt := &route{
			name:           rc.Name,
			host:           rc.Match.Host,
			path:           rc.Match.Path,
			pool:           pl,
			streaming:      rc.Streaming,
			responseHeader: rc.Timeouts.ResponseHeader.D(),
			idle:           rc.Timeouts.Idle.D(),
			total:          rc.Timeouts.Total.D(),
			retryTries:     rc.Retry.Tries,
			retryWithin:    rc.Retry.Within.D(),
			maxBody:        int64(rc.MaxRequestBody),
		}
		if len(rc.Compress.Types) > 0 {
			rt.compress = &compressRule{minLength: int64(rc.Compress.MinLength)}
			for _, t := range rc.Compress.Types {
				rt.compress.types = append(rt.compress.types, strings.ToLower(t))
			}
		}
		for _, u := range rc.Upgrades {
			rt.upgrades = append(rt.upgrades, strings.ToLower(u))
		}
		routes = append(routes, rt)
	}
	t := &table{router: newRouter(routes), trusted: cfg.Server.TrustedPrefixes(), limits: requestLimits{
		maxHeaderCount:   cfg.Server.MaxHeaderCount,
		maxURILength:     int(cfg.Server.MaxURILength),
		allowUnderscores: cfg.Server.AllowUnderscoresInHeaders,
	}}
	if cfg.Log.Access {
		t.access = p.log.Named("access")
	}
	p.table.Store(t)
	// Exchanges of the old table may still report passive failures to
	// its pools; only their active checks end.
	for _, pl := range p.pools {
		pl.stop()
	}
	p.pools = pools
	for _, pl := range pools {
		pl.startChecks()
	}
}

// Abort ends every open exchange now, with close_reason shutdown. It is
// the last step of a graceful stop, after the drain time has passed.
// Exchanges that start after it end at once the same way. Each is ended
// on a goroutine of its own, so that one slow close (a TLS close_notify
// to a client that stopped reading) does not hold up the others.
func (p *Proxy) Abort() {
	for _, ex := range p.live.abort() {
		go ex.expire(reasonShutdown)
	}
}

// Close ends open exchanges and closes idle upstream connections.
func (p *Proxy) Close() {
	p.Abort()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pl := range p.pools {
		pl.stop()
	}
	for _, u := range p.upstreams {
		u.close()
	}
}
