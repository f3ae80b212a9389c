package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadConfig is one step of TestReloadKeepsStreams.
type reloadConfig struct {
	admin    string
	http     string
	upstream string
	idle     string // the events route's idle timeout
	level    string
	bad      bool // add an unknown key: the reload must be refused
}

func (c reloadConfig) yaml(cert testCert) string {
	h := strings.Replace(headerAdmin(cert, c.admin), `http: ""`, fmt.Sprintf("http: %q", c.http), 1)
	h = strings.Replace(h, "level: debug", "level: "+c.level, 1)
	s := h + "routes:\n" + route("events", "/events/", c.upstream, "streaming: always", "timeouts: { idle: "+c.idle+", total: 0s }")
	if c.bad {
		s += "unknown_key: true\n"
	}
	return s
}

// An SSE stream through sluice stays open and loses no event across 10
// SIGHUP reloads — one moves the admin listener and adds the http one,
// one sends the route to another upstream, one is invalid, one shortens
// the route's idle timeout — while new requests follow each new config.
func TestReloadKeepsStreams(t *testing.T) {
	eventsA := make(chan int)
	muxA := http.NewServeMux()
	muxA.Handle("/events/stream", sseUpstream(eventsA, "a"))
	muxA.HandleFunc("/events/probe", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("a")) })
	upA := upstream(t, muxA)
	muxB := http.NewServeMux()
	muxB.Handle("/events/stream", sseUpstream(make(chan int), "b")) // never sends
	muxB.HandleFunc("/events/probe", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("b")) })
	upB := upstream(t, muxB)

	cert := newTestCert(t)
	cfg := reloadConfig{admin: "127.0.0.1:0", upstream: upA, idle: "1m", level: "debug"}
	p := startSluiceConfig(t, cfg.yaml(cert), cert)
	client := p.h2Client()
	adminAddr := p.listenerAddr("admin", 1)

	res, err := client.Get(p.url("/events/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	br := bufio.NewReader(res.Body)

	results := 0 // reload outcomes logged so far
	for i := 1; i <= 10; i++ {
		next := cfg
		switch i {
		case 2: // move admin to another address, turn the http listener on
			next.admin, next.http = "127.0.0.2:0", "127.0.0.1:0"
		case 4: // the route goes to upstream B
			next.upstream = upB
		case 6: // invalid: refused, nothing changes
			next.bad = true
		case 7: // new requests get a 300ms idle timeout
			next.idle = "300ms"
		default: // log level flips
			next.level = map[string]string{"debug": "info", "info": "debug"}[cfg.level]
		}
		p.rewriteConfig(next.yaml(cert))
		p.signal(syscall.SIGHUP)
		if i != 7 {
			// The event goes out while the reload runs.
			go func(i int) { eventsA <- i }(i)
		}
		results++
		outcome := p.waitNth(results, 10*time.Second, "config reloaded", "reload refused: the running config stays")
		if next.bad {
			if outcome["msg"] != "reload refused: the running config stays" || !strings.Contains(fmt.Sprint(outcome["error"]), "unknown_key") {
				t.Fatalf("reload %d: invalid config not refused: %v", i, outcome)
			}
		} else {
			if outcome["msg"] != "config reloaded" {
				t.Fatalf("reload %d: %v", i, outcome)
			}
			cfg = next
		}

		// The open stream still delivers the next event, from upstream A.
		if i == 7 {
			// Longer than the new idle timeout: the open stream keeps
			// the 1m it started with.
			time.Sleep(700 * time.Millisecond)
			eventsA <- i
		}
		if ev := readEvent(t, br, 5*time.Second); ev.id != fmt.Sprint(i) || ev.data != fmt.Sprintf("a %d", i) {
			t.Fatalf("after reload %d: event %+v, want id %d from a", i, ev, i)
		}

		// New requests follow the running config.
		want := "a"
		if cfg.upstream == upB {
			want = "b"
		}
		if code, body := getText(t, client, p.url("/events/probe")); code != 200 || body != want {
			t.Fatalf("after reload %d: probe %d %q, want upstream %s", i, code, body, want)
		}

		switch i {
		case 2:
			newAdmin := p.listenerAddr("admin", 2)
			if !strings.HasPrefix(newAdmin, "127.0.0.2:") {
				t.Fatalf("admin moved to %s", newAdmin)
			}
			if code, body := getText(t, nil, "http://"+newAdmin+"/readyz"); code != 200 || body != "ready\n" {
				t.Fatalf("new admin /readyz: %d %q", code, body)
			}
			if c, err := net.DialTimeout("tcp", adminAddr, 2*time.Second); err == nil {
				c.Close()
				t.Fatalf("old admin address %s still accepts", adminAddr)
			}
			plain := p.listenerAddr("http", 1)
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			r, err := noFollow.Get("http://" + plain + "/x")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusPermanentRedirect {
				t.Fatalf("new http listener: %d", r.StatusCode)
			}
			// The https listener did not change: same address, and the
			// log shows it was not reopened.
			if n := p.countLog(func(l map[string]any) bool { return l["msg"] == "listening" && l["listener"] == "https" }); n != 1 {
				t.Fatalf("https listener opened %d times, want 1", n)
			}
		case 7:
			// A new stream is cut after the new 300ms of silence (B
			// never sends an event).
			r, err := client.Get(p.url("/events/stream"))
			if err != nil {
				t.Fatal(err)
			}
			nbr := bufio.NewReader(r.Body)
			if _, err := readEventErr(nbr, 5*time.Second); err == nil {
				t.Fatal("the silent new stream sent an event")
			}
			r.Body.Close()
			if l := p.accessLine("/events/stream", 5*time.Second); l["close_reason"] != "idle_timeout" {
				t.Fatalf("new stream ended %v, want idle_timeout", l["close_reason"])
			}
		}
	}
	close(eventsA)
	if _, err := readEventErr(br, 5*time.Second); err == nil {
		t.Fatal("event after the upstream ended")
	}
}

// countLog counts the log lines so far for which match is true.
func (p *sluiceProc) countLog(match func(map[string]any) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if match(l) {
			n++
		}
	}
	return n
}
