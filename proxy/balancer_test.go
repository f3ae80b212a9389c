package proxy

import (
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
)

func testPool(t *testing.T, policy config.LoadBalancing, fails int) *pool {
	t.Helper()
	rc := &config.Route{Name: "r", Match: config.Match{Path: "/"}, LoadBalancing: policy}
	rc.Health.Fails = &fails
	rc.Health.FailWindow = config.Duration(time.Minute)
	rc.Health.CoolOff = config.Duration(time.Minute)
	var ups []*upstream
	for _, a := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
		u := config.Upstream{Network: "tcp", Address: a}
		ups = append(ups, &upstream{addr: u, name: u.String(), urlHost: a})
	}
	return newPool(rc, ups, zap.NewNop())
}

func req(remote string) *http.Request {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.RemoteAddr = remote
	return r
}

func TestPickRoundRobinSkipsDownAndTried(t *testing.T) {
	pl := testPool(t, config.BalanceRoundRobin, 3)
	count := map[*backend]int{}
	for range 9 {
		b, _ := pl.pick(req("127.0.0.1:5"), nil)
		count[b]++
	}
	for _, b := range pl.backends {
		if count[b] != 3 {
			t.Fatalf("round robin uneven: %v", count)
		}
	}
	pl.backends[1].checkDown.Store(true)
	for range 6 {
		b, _ := pl.pick(req("127.0.0.1:5"), []*backend{pl.backends[0]})
		if b != pl.backends[2] {
			t.Fatalf("picked %s, want the only healthy untried backend", b.up.addr)
		}
	}
	pl.backends[2].checkDown.Store(true)
	if b, _ := pl.pick(req("127.0.0.1:5"), []*backend{pl.backends[0]}); b != nil {
		t.Fatal("picked a backend when none is healthy and untried")
	}
}

func TestPickLeastConn(t *testing.T) {
	pl := testPool(t, config.BalanceLeastConn, 3)
	pl.backends[0].active.Store(2)
	pl.backends[1].active.Store(1)
	pl.backends[2].active.Store(5)
	for range 5 {
		if b, _ := pl.pick(req("127.0.0.1:5"), nil); b != pl.backends[1] {
			t.Fatalf("picked %s", b.up.addr)
		}
	}
}

func TestPickIPHashIsStable(t *testing.T) {
	pl := testPool(t, config.BalanceIPHash, 3)
	first, _ := pl.pick(req("10.1.2.3:4000"), nil)
	for port := range 5 {
		if b, _ := pl.pick(req("10.1.2.3:"+string(rune('0'+port))), nil); b != first {
			t.Fatal("same client address, different backend")
		}
	}
	// Another backend going down moves none of this client's requests.
	for _, b := range pl.backends {
		if b != first {
			b.checkDown.Store(true)
			break
		}
	}
	if b, _ := pl.pick(req("10.1.2.3:9"), nil); b != first {
		t.Fatal("client moved when an unrelated backend went down")
	}
}

func TestPickCookie(t *testing.T) {
	pl := testPool(t, config.BalanceCookie, 3)
	b, set := pl.pick(req("127.0.0.1:5"), nil)
	if set == "" {
		t.Fatal("no Set-Cookie for a new client")
	}
	r := req("127.0.0.1:5")
	r.Header.Set("Cookie", "sluice_r="+b.cookie)
	for range 5 {
		got, set := pl.pick(r, nil)
		if got != b || set != "" {
			t.Fatalf("pinned client moved (%v) or got a new cookie %q", got != b, set)
		}
	}
	b.checkDown.Store(true)
	got, set := pl.pick(r, nil)
	if got == b || set == "" {
		t.Fatal("client pinned to a down backend was not moved and re-pinned")
	}
}

func TestPassiveFailuresCoolOff(t *testing.T) {
	pl := testPool(t, config.BalanceRoundRobin, 2)
	b := pl.backends[0]
	pl.failed(b, "x")
	if !b.healthy(time.Now()) {
		t.Fatal("down after one failure of two")
	}
	pl.failed(b, "x")
	if b.healthy(time.Now()) {
		t.Fatal("still up after two failures")
	}
	if !b.healthy(time.Now().Add(2 * time.Minute)) {
		t.Fatal("still down after the cool-off")
	}
	off := testPool(t, config.BalanceRoundRobin, 0)
	for range 10 {
		off.failed(off.backends[0], "x")
	}
	if !off.backends[0].healthy(time.Now()) {
		t.Fatal("fails: 0 must turn passive checks off")
	}
}
