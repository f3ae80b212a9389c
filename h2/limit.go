package h2

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// limitListener enforces server.max_connections and
// server.max_connections_per_ip. A connection over a limit is closed as
// soon as it is accepted, before any TLS: the client sees a reset at once
// rather than a hang in the backlog, and an attacker's connections cost
// one accept each. Accept itself never blocks on the limits, so one flood
// cannot starve the accept loop.
type limitListener struct {
	net.Listener
	log      *zap.Logger
	maxTotal int
	maxPerIP int

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int

	lastWarn atomic.Int64 // unix nanos of the last limit warning
}

func newLimitListener(ln net.Listener, maxTotal, maxPerIP int, log *zap.Logger) net.Listener {
	if maxTotal <= 0 && maxPerIP <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, log: log, maxTotal: maxTotal, maxPerIP: maxPerIP, perIP: map[netip.Addr]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(c.RemoteAddr())
		if limit, ok := l.acquire(ip); !ok {
			c.Close()
			l.warn(limit, ip)
			continue
		}
		return &limitConn{Conn: c, l: l, ip: ip}, nil
	}
}

// acquire takes a slot for ip, or names the limit that refuses it.
func (l *limitListener) acquire(ip netip.Addr) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxTotal > 0 && l.total >= l.maxTotal {
		return "server.max_connections", false
	}
	if l.maxPerIP > 0 && l.perIP[ip] >= l.maxPerIP {
		return "server.max_connections_per_ip", false
	}
	l.total++
	if l.maxPerIP > 0 {
		l.perIP[ip]++
	}
	return "", true
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.maxPerIP > 0 {
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
		}
	}
}

// warn logs a refused connection at most once a second: a flood must not
// turn into a log flood.
func (l *limitListener) warn(limit string, ip netip.Addr) {
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Second) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.mu.Lock()
	total, fromIP := l.total, l.perIP[ip]
	l.mu.Unlock()
	max := l.maxTotal
	if limit == "server.max_connections_per_ip" {
		max = l.maxPerIP
	}
	l.log.Warn("connection limit reached: refusing new connections", zap.String("limit", limit), zap.Int("max", max),
		zap.String("remote_ip", ip.String()), zap.Int("open", total), zap.Int("open_from_ip", fromIP))
}

func peerIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
}

// NetConn returns the connection under c (for combineConn's writes that
// must not block).
func (c *limitConn) NetConn() net.Conn { return c.Conn }

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
