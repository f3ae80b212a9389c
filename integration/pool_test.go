package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backendSet is three named upstreams that say who answered.
type backendSet struct {
	names []string
	urls  []string
	srvs  []*http.Server
	hits  []atomic.Int64
}

// threeBackends starts backends a, b and c. Each answers with its name in
// X-Backend; /hold/ requests stay open until release is closed; /healthz
// answers 200.
func threeBackends(t *testing.T, release <-chan struct{}) *backendSet {
	t.Helper()
	bs := &backendSet{names: []string{"a", "b", "c"}, hits: make([]atomic.Int64, 3)}
	for i, name := range bs.names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				return
			}
			bs.hits[i].Add(1)
			w.Header().Set("X-Backend", name)
			if strings.HasPrefix(r.URL.Path, "/hold/") || strings.Contains(r.URL.Path, "/hold/") {
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
			io.WriteString(w, name)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		bs.urls = append(bs.urls, "http://"+ln.Addr().String())
		bs.srvs = append(bs.srvs, srv)
	}
	return bs
}

func (bs *backendSet) yamlList() string {
	return "[" + strings.Join(bs.urls, ", ") + "]"
}

// getBackend sends one GET and returns the X-Backend that answered.
func getBackend(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: status %d", url, res.StatusCode)
	}
	return res.Header.Get("X-Backend")
}

func poolRoute(name, path, list, policy string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    match: { path: %s }\n    upstreams: %s\n    load_balancing: %s\n    health: { fails: 0 }\n", name, path, list, policy)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

func TestLoadBalancingPolicies(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	bs := threeBackends(t, release)
	list := bs.yamlList()
	p := startSluice(t, "routes:\n"+
		poolRoute("rr", "/rr/", list, "round_robin")+
		poolRoute("lc", "/lc/", list, "least_conn")+
		poolRoute("r2", "/r2/", list, "random_two")+
		poolRoute("ip", "/ip/", list, "ip_hash")+
		poolRoute("ck", "/ck/", list, "cookie"))
	c := p.h2Client()

	t.Run("round_robin", func(t *testing.T) {
		count := map[string]int{}
		for range 30 {
			count[getBackend(t, c, p.url("/rr/x"))]++
		}
		for _, n := range bs.names {
			if count[n] != 10 {
				t.Fatalf("round_robin over 30 requests: %v, want 10 each", count)
			}
		}
	})

	t.Run("least_conn", func(t *testing.T) {
		// Two long streams open on two backends; every short request
		// must go to the third, the one with no open stream.
		busy := map[string]bool{}
		for i := range 2 {
			res, err := c.Get(p.url(fmt.Sprintf("/lc/hold/%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			busy[res.Header.Get("X-Backend")] = true
		}
		if len(busy) != 2 {
			t.Fatalf("two streams went to %v, want two different backends", busy)
		}
		for range 9 {
			if b := getBackend(t, c, p.url("/lc/x")); busy[b] {
				t.Fatalf("short request went to %s, which holds an open stream (busy: %v)", b, busy)
			}
		}
	})

	t.Run("random_two", func(t *testing.T) {
		count := map[string]int{}
		for range 300 {
			count[getBackend(t, c, p.url("/r2/x"))]++
		}
		for _, n := range bs.names {
			// 100 expected, standard deviation about 8.
			if count[n] < 50 {
				t.Fatalf("random_two over 300 requests: %v: %s starved", count, n)
			}
		}
	})

	t.Run("ip_hash", func(t *testing.T) {
		used := map[string]bool{}
		for i := 1; i <= 12; i++ {
			local := fmt.Sprintf("127.0.0.%d", i)
			tr := p.h2ClientFrom(local)
			first := ""
			for range 5 {
				b := getBackend(t, tr, p.url("/ip/x"))
				if first == "" {
					first = b
				} else if b != first {
					t.Fatalf("client %s went to %s then %s", local, first, b)
				}
			}
			used[first] = true
		}
		if len(used) < 2 {
			t.Fatalf("12 client addresses all hashed to %v", used)
		}
	})

	t.Run("cookie", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		sticky := p.h2Client()
		sticky.Jar = jar
		first := getBackend(t, sticky, p.url("/ck/x"))
		for range 10 {
			if b := getBackend(t, sticky, p.url("/ck/x")); b != first {
				t.Fatalf("sticky client moved from %s to %s", first, b)
			}
		}
		// Clients without the cookie are spread.
		used := map[string]bool{}
		for range 6 {
			used[getBackend(t, c, p.url("/ck/x"))] = true
		}
		if len(used) < 2 {
			t.Fatalf("clients without a cookie all went to %v", used)
		}
	})
}

func TestHealthChecks(t *testing.T) {
	bs := threeBackends(t, nil)
	const interval, timeout = time.Second, 500 * time.Millisecond
	p := startSluice(t, fmt.Sprintf(`routes:
  - name: pool
    match: { path: / }
    upstreams: %s
    health: { path: /healthz, interval: %s, timeout: %s, fails: 0 }
    retry: { tries: 1 }
`, bs.yamlList(), interval, timeout))
	c := p.h2Client()
	seen := map[string]bool{}
	for range 3 {
		seen[getBackend(t, c, p.url("/x"))] = true
	}
	if len(seen) != 3 {
		t.Fatalf("before the kill requests went to %v, want all three", seen)
	}

	downLine := func(i int) func(map[string]any) bool {
		return func(l map[string]any) bool {
			return l["msg"] == "backend down" && l["upstream"] == bs.urls[i] && l["check"] == "active"
		}
	}
	// Kill b mid-test: it must be out within one interval (plus the
	// check's own timeout; a refused connection fails at once).
	killed := time.Now()
	bs.srvs[1].Close()
	p.waitLog(interval+timeout+2*time.Second, downLine(1))
	took := time.Since(killed)
	t.Logf("killed backend marked down after %s (interval %s)", took, interval)
	if took > interval+timeout {
		t.Fatalf("killed backend marked down after %s, want within %s", took, interval+timeout)
	}
	// With retries off, a request sent to b would fail: none may.
	for range 30 {
		if b := getBackend(t, c, p.url("/x")); b == "b" {
			t.Fatal("request reached the killed backend")
		}
	}

	// All down: 503 at once.
	bs.srvs[0].Close()
	bs.srvs[2].Close()
	p.waitLog(interval+timeout+2*time.Second, downLine(0))
	p.waitLog(interval+timeout+2*time.Second, downLine(2))
	start := time.Now()
	res, err := c.Get(p.url("/all-down"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("all backends down: status %d, want 503", res.StatusCode)
	}
	took = time.Since(start)
	t.Logf("all backends down: 503 after %s", took)
	if took > 200*time.Millisecond {
		t.Fatalf("503 took %s", took)
	}
	line := p.accessLine("/all-down", 5*time.Second)
	if line["status"] != float64(503) {
		t.Fatalf("access line %v", line)
	}
}

func TestPassiveHealthCoolOff(t *testing.T) {
	bs := threeBackends(t, nil)
	dead := deadAddr(t)
	p := startSluice(t, fmt.Sprintf(`routes:
  - name: pool
    match: { path: / }
    upstreams: [%s, %s]
    health: { fails: 2, fail_window: 10s, cool_off: 1m }
    retry: { tries: 1 }
`, dead, bs.urls[0]))
	c := p.h2Client()
	// Round robin alternates: the dead backend fails twice (502), then
	// is out for the cool-off and every request succeeds.
	fails := 0
	for range 4 {
		res, err := c.Get(p.url("/x"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusBadGateway {
			fails++
		}
	}
	if fails != 2 {
		t.Fatalf("%d of 4 requests failed, want 2 (then the backend is out)", fails)
	}
	p.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "backend down" && l["check"] == "passive" && l["upstream"] == dead
	})
	for range 10 {
		if b := getBackend(t, c, p.url("/x")); b != "a" {
			t.Fatalf("went to %q", b)
		}
	}
}

// deadAddr returns an http:// address on which nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestRetryOnConnectFailure(t *testing.T) {
	var gotBodies sync.Map
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBodies.Store(r.URL.Path, string(b))
		io.WriteString(w, "ok")
	}))
	dead := deadAddr(t)
	p := startSluice(t, fmt.Sprintf(`routes:
  - name: pool
    match: { path: / }
    upstreams: [%s, %s]
    health: { fails: 0 }
    retry: { tries: 2, within: 5s }
`, dead, up))
	c := p.h2Client()
	for i := range 6 {
		method, body := "GET", io.Reader(nil)
		if i%2 == 1 {
			// A body that was never sent may be sent to another backend.
			method, body = "POST", strings.NewReader(fmt.Sprintf("body-%d", i))
		}
		req, _ := http.NewRequest(method, p.url(fmt.Sprintf("/r%d", i)), body)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("request %d: status %d, want 200 after a retry", i, res.StatusCode)
		}
		if method == "POST" {
			if got, _ := gotBodies.Load(fmt.Sprintf("/r%d", i)); got != fmt.Sprintf("body-%d", i) {
				t.Fatalf("upstream got body %q", got)
			}
		}
	}
	// Round robin sent half of them to the dead backend first.
	p.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "retrying on another backend" && l["upstream"] == dead
	})
}

func TestNoRetryAfterFirstResponseByte(t *testing.T) {
	var aHits, bHits atomic.Int64
	a := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aHits.Add(1)
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // dies mid-body
	}))
	b := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bHits.Add(1)
		io.WriteString(w, "ok")
	}))
	p := startSluice(t, fmt.Sprintf(`routes:
  - name: pool
    match: { path: / }
    upstreams: [%s, %s]
    health: { fails: 0 }
    retry: { tries: 3 }
`, a, b))
	c := p.h2Client()
	ok, broken := 0, 0
	for range 6 {
		// The reset may come before or after the client saw the
		// headers: either way the response is broken, never complete.
		res, err := c.Get(p.url("/x"))
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		if err != nil {
			broken++
		} else {
			ok++
		}
	}
	if aHits.Load() != 3 || broken != 3 {
		t.Fatalf("a hit %d times, %d responses broken: want 3 and 3", aHits.Load(), broken)
	}
	if bHits.Load() != int64(ok) {
		t.Fatalf("b hit %d times for %d good responses: a request was retried after its response began", bHits.Load(), ok)
	}
}

func TestRetryOn503OnlyForIdempotentWithoutBody(t *testing.T) {
	var aHits, bHits atomic.Int64
	a := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aHits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	b := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bHits.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	p := startSluice(t, fmt.Sprintf(`routes:
  - name: pool
    match: { path: / }
    upstreams: [%s, %s]
    health: { fails: 0 }
`, a, b))
	c := p.h2Client()
	for range 4 {
		res, err := c.Get(p.url("/get"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET: %d, want 200 (retried on b)", res.StatusCode)
		}
	}
	got503 := 0
	for range 4 {
		res, err := c.Post(p.url("/post"), "text/plain", strings.NewReader("data"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 503 {
			got503++
		}
	}
	if got503 != 2 {
		t.Fatalf("POST: %d of 4 answered 503, want 2 (never retried)", got503)
	}
	// Round robin: every GET tried a first (4 + 2 POSTs), b took the 4
	// retried GETs and the 2 other POSTs.
	if aHits.Load() != 6 || bHits.Load() != 6 {
		t.Fatalf("a %d, b %d hits; want 6 and 6", aHits.Load(), bHits.Load())
	}
}

func TestMaxRequestBody(t *testing.T) {
	var upstreamGot atomic.Int64
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		upstreamGot.Add(1)
		fmt.Fprint(w, n)
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up, "max_request_body: 1KiB"))
	c := p.h2Client()

	post := func(body io.Reader, length int64) int {
		req, _ := http.NewRequest("POST", p.url("/up"), body)
		req.ContentLength = length
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if s := post(strings.NewReader(strings.Repeat("x", 1024)), 1024); s != 200 {
		t.Fatalf("1KiB body: %d", s)
	}
	if s := post(strings.NewReader(strings.Repeat("x", 2048)), 2048); s != 413 {
		t.Fatalf("2KiB body with Content-Length: %d, want 413", s)
	}
	// Without Content-Length (streamed): cut when it passes the limit.
	pr, pw := io.Pipe()
	go func() {
		for range 4 {
			pw.Write([]byte(strings.Repeat("y", 512)))
		}
		pw.Close()
	}()
	if s := post(pr, -1); s != 413 {
		t.Fatalf("streamed 2KiB body: %d, want 413", s)
	}
	if upstreamGot.Load() != 1 {
		t.Fatalf("upstream took %d whole bodies, want 1", upstreamGot.Load())
	}
}

func TestRequestBodyIdleTimeout(t *testing.T) {
	gone := make(chan struct{})
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		close(gone)
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up, "timeouts: { idle: 300ms }"))
	c := p.h2Client()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("start")) // then silence
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", p.url("/slow-upload"), pr)
	res, err := c.Do(req)
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("stalled upload: status %d, want 504 or a reset", res.StatusCode)
		}
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request still open after the idle timeout")
	}
	line := p.accessLine("/slow-upload", 5*time.Second)
	if line["close_reason"] != "idle_timeout" {
		t.Fatalf("close_reason %v, want idle_timeout", line["close_reason"])
	}
}

func TestRetriesExhaustedGive502(t *testing.T) {
	d1, d2 := deadAddr(t), deadAddr(t)
	p := startSluice(t, fmt.Sprintf(`routes:
  - name: pool
    match: { path: / }
    upstreams: [%s, %s]
    health: { fails: 0 }
    retry: { tries: 5 }
`, d1, d2))
	res, err := p.h2Client().Get(p.url("/x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// Both refused: the client learns of the upstream failure (502), not
	// that every backend was down beforehand (503).
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", res.StatusCode)
	}
	line := p.accessLine("/x", 5*time.Second)
	if line["close_reason"] != "upstream_error" {
		t.Fatalf("access line %v", line)
	}
}
