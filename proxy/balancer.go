package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
)

// backend is one upstream of a route's pool, with the health and load
// state that the pool's policy reads. The transport (and its keep-alive
// connections) belongs to the shared upstream and outlives the pool.
type backend struct {
	up     *upstream
	cookie string // sticky-session cookie value: a hash, not the address

	active    atomic.Int64 // open exchanges, upgrades and streams included
	checkDown atomic.Bool  // the last active check failed
	downUntil atomic.Int64 // passive cool-off end, unix nanoseconds

	mu    sync.Mutex
	fails []time.Time // passive failures within the window
}

func (b *backend) healthy(now time.Time) bool {
	return !b.checkDown.Load() && now.UnixNano() >= b.downUntil.Load()
}

// pool is a route's backends and its policy for choosing among them.
type pool struct {
	name     string // the route's, for logs
	backends []*backend
	policy   config.LoadBalancing
	rr       atomic.Uint64
	cookie   string // sticky cookie name
	path     string // sticky cookie path

	health  config.Health
	fails   int
	window  time.Duration
	coolOff time.Duration

	log  *zap.Logger
	stop func() // ends the active checks
}

func newPool(rc *config.Route, ups []*upstream, log *zap.Logger) *pool {
	pl := &pool{
		name:    rc.Name,
		policy:  rc.LoadBalancing,
		cookie:  "sluice_" + rc.Name,
		path:    rc.Match.Path,
		health:  rc.Health,
		fails:   *rc.Health.Fails,
		window:  rc.Health.FailWindow.D(),
		coolOff: rc.Health.CoolOff.D(),
		log:     log,
		stop:    func() {},
	}
	for _, u := range ups {
		sum := sha256.Sum256([]byte(u.addr.String()))
		pl.backends = append(pl.backends, &backend{up: u, cookie: hex.EncodeToString(sum[:8])})
	}
	if len(pl.backends) == 1 {
		// Passive checks move requests to another backend; with none to
		// move to they would only turn the lone backend's passing errors
		// into 503s for the whole cool-off (nginx ignores max_fails for a
		// single server too). Active checks still apply when configured.
		pl.fails = 0
	}
	return pl
}

// pick chooses a healthy backend that is not in tried, or returns nil
// when there is none. setCookie is the Set-Cookie value to send for a
// sticky route whose client is not (or no longer) pinned to the choice.
func (pl *pool) pick(r *http.Request, tried []*backend) (b *backend, setCookie string) {
	now := time.Now()
	n := len(pl.backends)
	start := int(pl.rr.Add(1)-1) % n
	cands := make([]*backend, 0, n)
	for i := range n {
		c := pl.backends[(start+i)%n]
		if c.healthy(now) && !contains(tried, c) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil, ""
	}
	switch pl.policy {
	case config.BalanceLeastConn:
		return leastConn(cands), ""
	case config.BalanceRandomTwo:
		if len(cands) == 1 {
			return cands[0], ""
		}
		i := rand.IntN(len(cands))
		j := rand.IntN(len(cands) - 1)
		if j >= i {
			j++
		}
		if cands[j].active.Load() < cands[i].active.Load() {
			return cands[j], ""
		}
		return cands[i], ""
	case config.BalanceIPHash:
		_, client := peerAddr(r.RemoteAddr)
		return rendezvous(cands, client), ""
	case config.BalanceCookie:
		if c, err := r.Cookie(pl.cookie); err == nil {
			for _, b := range cands {
				if b.cookie == c.Value {
					return b, ""
				}
			}
		}
		b := leastConn(cands)
		ck := &http.Cookie{Name: pl.cookie, Value: b.cookie, Path: pl.path, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
		return b, ck.String()
	}
	return cands[0], "" // round_robin: the first healthy one from the rotating start
}

// leastConn returns the candidate with the fewest open exchanges; ties go
// to the earliest, and candidates start at the round-robin position, so
// an idle pool still spreads requests evenly.
func leastConn(cands []*backend) *backend {
	best := cands[0]
	for _, c := range cands[1:] {
		if c.active.Load() < best.active.Load() {
			best = c
		}
	}
	return best
}

// rendezvous is highest-random-weight hashing: a client keeps its backend
// while it is healthy, and when one goes down only its clients move.
func rendezvous(cands []*backend, key string) *backend {
	var best *backend
	var bestW uint64
	for _, c := range cands {
		h := fnv.New64a()
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write([]byte(c.up.name))
		if w := h.Sum64(); best == nil || w > bestW {
			best, bestW = c, w
		}
	}
	return best
}

func contains(list []*backend, b *backend) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

// failed records a passive failure: fails of them within the window take
// the backend out for the cool-off.
func (pl *pool) failed(b *backend, why string) {
	if pl.fails <= 0 {
		return
	}
	now := time.Now()
	b.mu.Lock()
	keep := b.fails[:0]
	for _, t := range b.fails {
		if now.Sub(t) < pl.window {
			keep = append(keep, t)
		}
	}
	b.fails = append(keep, now)
	down := len(b.fails) >= pl.fails
	if down {
		b.fails = b.fails[:0]
		b.downUntil.Store(now.Add(pl.coolOff).UnixNano())
	}
	b.mu.Unlock()
	if down {
		pl.log.Warn("backend down", zap.String("route", pl.name), zap.String("upstream", b.up.name),
			zap.String("check", "passive"), zap.String("error", why), zap.Duration("cool_off", pl.coolOff))
	}
}
