package config

import (
	"fmt"
	"strings"
	"time"
)

// LoadBalancing is a route's policy for picking a backend.
type LoadBalancing string

// The load-balancing policies.
const (
	BalanceRoundRobin LoadBalancing = "round_robin"
	BalanceLeastConn  LoadBalancing = "least_conn"
	BalanceRandomTwo  LoadBalancing = "random_two"
	BalanceIPHash     LoadBalancing = "ip_hash"
	BalanceCookie     LoadBalancing = "cookie"
)

func (l *LoadBalancing) parseScalar(text string) error {
	switch LoadBalancing(text) {
	case BalanceRoundRobin, BalanceLeastConn, BalanceRandomTwo, BalanceIPHash, BalanceCookie:
		*l = LoadBalancing(text)
		return nil
	}
	return fmt.Errorf("%q is not one of round_robin, least_conn, random_two, ip_hash, cookie", text)
}

// Health configures how backends are found down and up again. Active
// checks run only when Path is set; passive checks watch real traffic and
// run unless Fails is 0.
type Health struct {
	// Path is requested with GET on every backend every interval; a
	// backend that does not answer expect_status within timeout is down
	// until a check passes again. "" turns active checks off. Default: "".
	Path string `yaml:"path"`

	// Interval is the time between two active checks of a backend.
	// Default: 5s.
	Interval Duration `yaml:"interval"`

	// Timeout bounds one active check. Default: 2s.
	Timeout Duration `yaml:"timeout"`

	// ExpectStatus is the status code a healthy backend answers the
	// check with. Default: 200.
	ExpectStatus int `yaml:"expect_status"`

	// Fails is the number of failed requests (connection failures, 502,
	// 503 and 504 answers) within fail_window that marks a backend down
	// for cool_off. 0 turns passive checks off; a route with a single
	// backend never has them (there is nowhere else to send requests).
	// After Load it is never nil. Default: 3.
	Fails *int `yaml:"fails"`

	// FailWindow is the window in which fails failures must fall.
	// Default: 10s.
	FailWindow Duration `yaml:"fail_window"`

	// CoolOff is how long a backend marked down by passive checks gets no
	// requests. Default: 10s.
	CoolOff Duration `yaml:"cool_off"`
}

// Retry bounds the retries of a failed request. A request is retried only
// before any response byte reached the client, on a backend not yet tried,
// after a connection failure, or, for idempotent methods without a body,
// after a 502 or 503 answer. A request body that was partly sent is never
// sent again.
type Retry struct {
	// Tries is the number of backends a request may be sent to, the first
	// one included; 1 turns retries off. Default: 2.
	Tries int `yaml:"tries"`

	// Within is how long after the request arrived a retry may still
	// start. Default: 5s.
	Within Duration `yaml:"within"`
}

// Compress compresses responses with zstd, brotli or gzip, whichever the
// client's Accept-Encoding prefers. A streamed response is flushed through
// the compressor after every upstream chunk, so compression never holds a
// chunk back. Responses that already carry a Content-Encoding pass
// untouched.
type Compress struct {
	// Types lists the media types compressed ("text/html",
	// "text/event-stream"); "text/*" matches every text type. [] turns
	// compression off. Default: [].
	Types []string `yaml:"types"`

	// MinLength is the smallest Content-Length compressed; responses of
	// unknown length (streams) are always compressed. Default: 1KiB.
	MinLength Size `yaml:"min_length"`
}

// Backends returns the route's upstream addresses: upstreams, or the one
// upstream.
func (r *Route) Backends() []string {
	if len(r.Upstreams) > 0 {
		return r.Upstreams
	}
	if r.Upstream != "" {
		return []string{r.Upstream}
	}
	return nil
}

// UpgradeAllowed reports whether the route lets a client switch to proto.
func (r *Route) UpgradeAllowed(proto string) bool {
	for _, u := range r.Upgrades {
		if strings.EqualFold(u, proto) {
			return true
		}
	}
	return false
}

func (r *Route) setPoolDefaults() {
	if r.LoadBalancing == "" {
		r.LoadBalancing = BalanceRoundRobin
	}
	h := &r.Health
	setDur(&h.Interval, 5*time.Second)
	setDur(&h.Timeout, 2*time.Second)
	if h.ExpectStatus == 0 {
		h.ExpectStatus = 200
	}
	if h.Fails == nil {
		fails := 3
		h.Fails = &fails
	}
	setDur(&h.FailWindow, 10*time.Second)
	setDur(&h.CoolOff, 10*time.Second)
	if r.Retry.Tries == 0 {
		r.Retry.Tries = 2
	}
	setDur(&r.Retry.Within, 5*time.Second)
	if r.Compress.MinLength == 0 {
		r.Compress.MinLength = 1 << 10
	}
	if r.Upgrades == nil {
		r.Upgrades = []string{"websocket"}
	}
}

func setDur(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

func (c *Config) validatePool(path string, r *Route, bad func(path, format string, args ...any)) {
	switch {
	case r.Upstream != "" && len(r.Upstreams) > 0:
		bad(path+".upstreams", "upstream and upstreams are mutually exclusive: list every backend under upstreams")
	case r.Upstream == "" && len(r.Upstreams) == 0:
		bad(path+".upstream", "an upstream is required (http://host:port, unix:/path/to.sock or h2c://host:port), or a list under upstreams")
	case r.Upstream != "":
		if _, err := ParseUpstream(r.Upstream); err != nil {
			bad(path+".upstream", "%v", err)
		}
	}
	seen := map[string]int{}
	for i, u := range r.Upstreams {
		p := fmt.Sprintf("%s.upstreams[%d]", path, i)
		addr, err := ParseUpstream(u)
		if err != nil {
			bad(p, "%v", err)
			continue
		}
		if first, dup := seen[addr.String()]; dup {
			bad(p, "%q is already upstreams[%d]", u, first)
			continue
		}
		seen[addr.String()] = i
	}

	h := &r.Health
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		bad(path+".health.path", "%q must start with /", h.Path)
	}
	if h.ExpectStatus < 100 || h.ExpectStatus > 599 {
		bad(path+".health.expect_status", "%d is not a status code from 100 to 599", h.ExpectStatus)
	}
	if h.Path != "" && h.Timeout > h.Interval {
		bad(path+".health.timeout", "%s is longer than the interval %s", h.Timeout, h.Interval)
	}
	if *h.Fails < 0 {
		bad(path+".health.fails", "%d is negative", *h.Fails)
	}
	if r.Retry.Tries < 1 {
		bad(path+".retry.tries", "%d: tries counts the first attempt, so it is at least 1 (1 = no retries)", r.Retry.Tries)
	}
	for i, t := range r.Compress.Types {
		if !validMediaRange(t) {
			bad(fmt.Sprintf("%s.compress.types[%d]", path, i), "%q is not a media type like text/html or text/*", t)
		}
	}
	if r.MaxRequestBody < 0 {
		bad(path+".max_request_body", "%s is negative", r.MaxRequestBody)
	}
	for i, u := range r.Upgrades {
		if !strings.EqualFold(u, "websocket") {
			bad(fmt.Sprintf("%s.upgrades[%d]", path, i), "%q is not supported (allowed: websocket)", u)
		}
	}
}

func validMediaRange(t string) bool {
	typ, sub, ok := strings.Cut(t, "/")
	if !ok || typ == "" || sub == "" || typ == "*" || strings.ContainsAny(t, " ;,") {
		return false
	}
	return sub == "*" || !strings.Contains(sub, "*")
}
