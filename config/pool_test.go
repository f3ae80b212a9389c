package config

import (
	"strings"
	"testing"
	"time"
)

func TestPoolConfigDefaults(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`routes:
  - name: app
    upstreams: [http://127.0.0.1:8001, "h2c://127.0.0.1:8002"]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if r.LoadBalancing != BalanceRoundRobin || r.Health.Interval.D() != 5*time.Second || r.Health.Timeout.D() != 2*time.Second ||
		r.Health.ExpectStatus != 200 || *r.Health.Fails != 3 || r.Health.FailWindow.D() != 10*time.Second ||
		r.Health.CoolOff.D() != 10*time.Second || r.Retry.Tries != 2 || r.Retry.Within.D() != 5*time.Second ||
		r.Compress.MinLength != 1<<10 || len(r.Compress.Types) != 0 || r.MaxRequestBody != 0 ||
		len(r.Upgrades) != 1 || r.Upgrades[0] != "websocket" {
		t.Fatalf("defaults: %+v", r)
	}
	if got := r.Backends(); len(got) != 2 {
		t.Fatalf("backends %v", got)
	}
	u, err := ParseUpstream(r.Upstreams[1])
	if err != nil || !u.H2C || u.Address != "127.0.0.1:8002" || u.String() != "h2c://127.0.0.1:8002" {
		t.Fatalf("h2c upstream: %+v %v", u, err)
	}
}

func TestPoolConfigExplicitZeros(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`routes:
  - name: app
    upstream: http://127.0.0.1:8001
    health: { fails: 0 }
    retry: { tries: 1 }
    upgrades: []
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if *r.Health.Fails != 0 || r.Retry.Tries != 1 || len(r.Upgrades) != 0 || r.UpgradeAllowed("websocket") {
		t.Fatalf("explicit values lost: fails %d tries %d upgrades %v", *r.Health.Fails, r.Retry.Tries, r.Upgrades)
	}
}

func TestPoolConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, route, want string
	}{
		{"both", "upstream: http://a:1\n    upstreams: [http://b:1]", "t.yaml:4:16: routes[0].upstreams: upstream and upstreams are mutually exclusive"},
		{"neither", "match: { path: / }", "routes[0].upstream: an upstream is required"},
		{"bad member", "upstreams: [http://a:1, ftp://b:2]", "t.yaml:3:29: routes[0].upstreams[1]: \"ftp://b:2\": the scheme must be http://, h2c:// or unix:"},
		{"duplicate", "upstreams: [http://a:1, http://a:1]", "routes[0].upstreams[1]: \"http://a:1\" is already upstreams[0]"},
		{"policy", "upstream: http://a:1\n    load_balancing: fastest", "t.yaml:4:21: routes[0].load_balancing: \"fastest\" is not one of round_robin"},
		{"health path", "upstream: http://a:1\n    health: { path: healthz }", "routes[0].health.path: \"healthz\" must start with /"},
		{"health timeout", "upstream: http://a:1\n    health: { path: /h, interval: 1s, timeout: 2s }", "routes[0].health.timeout: 2s is longer than the interval 1s"},
		{"status", "upstream: http://a:1\n    health: { expect_status: 42 }", "routes[0].health.expect_status: 42 is not a status code"},
		{"fails", "upstream: http://a:1\n    health: { fails: -1 }", "routes[0].health.fails: -1 is negative"},
		{"tries", "upstream: http://a:1\n    retry: { tries: -2 }", "routes[0].retry.tries: -2: tries counts the first attempt"},
		{"type", "upstream: http://a:1\n    compress: { types: [html] }", "routes[0].compress.types[0]: \"html\" is not a media type"},
		{"upgrade", "upstream: http://a:1\n    upgrades: [h2c]", "routes[0].upgrades[0]: \"h2c\" is not supported (allowed: websocket)"},
		{"unknown key", "upstream: http://a:1\n    retry: { attempts: 3 }", "routes[0].retry.attempts: unknown key (allowed here: tries, within)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte("routes:\n  - name: app\n    "+tc.route+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
