package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestHeadersBothWays(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		seen <- h
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Accel-Buffering", "no")
		w.Header().Set("X-App", "1")
		io.WriteString(w, "ok")
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up))

	// HTTP/1.1 and HTTP/2 (sluice forwards the client's header map
	// without copying it), with hop-by-hop headers and a spoofed
	// X-Forwarded-For.
	for _, client := range []struct {
		name string
		c    *http.Client
		hop  bool // HTTP/2 has no Connection header to send
	}{{"HTTP/1.1", p.h1Client(), true}, {"HTTP/2", p.h2Client(), false}} {
		req, _ := http.NewRequest("GET", p.url("/h"), nil)
		if client.hop {
			req.Header.Set("Connection", "X-Client-Hop")
			req.Header.Set("X-Client-Hop", "1")
		}
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("Forwarded", "for=6.6.6.6")
		req.Host = "app.example.com"
		res, err := client.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(res.Body)
		res.Body.Close()
		up1 := <-seen
		if up1.Get("X-Client-Hop") != "" || up1.Get("Forwarded") != "" {
			t.Errorf("%s: hop-by-hop or spoofed headers reached the upstream: %v", client.name, up1)
		}
		if up1.Get("X-Forwarded-For") != "127.0.0.1" || up1.Get("X-Forwarded-Proto") != "https" || up1.Get("X-Forwarded-Host") != "app.example.com" {
			t.Errorf("%s: forwarding headers: %v", client.name, up1)
		}
		if up1.Get("Host") != "app.example.com" {
			t.Errorf("%s: Host %q not passed through", client.name, up1.Get("Host"))
		}
		for _, h := range []string{"X-Hop", "Keep-Alive", "X-Accel-Buffering"} {
			if res.Header.Get(h) != "" {
				t.Errorf("%s: response header %s reached the client", client.name, h)
			}
		}
		if res.Header.Get("X-App") != "1" {
			t.Errorf("%s: X-App lost: %v", client.name, res.Header)
		}
	}

	// An HTTP/1.1 client's Connection: close is honoured although sluice
	// drops the header on the way up.
	out, closed := rawH1(t, p, "GET /h HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n", 5*time.Second)
	<-seen
	if !closed || !strings.Contains(out, "Connection: close") {
		t.Errorf("Connection: close not honoured (closed %v):\n%s", closed, out)
	}
}

func TestH2CUpgradeNeverPassed(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "plain")
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up))
	conn, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: p.cert.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("h2c upgrade answered with 101")
	}
	h := <-seen
	if h.Get("Upgrade") != "" || h.Get("Http2-Settings") != "" {
		t.Fatalf("h2c upgrade headers reached the upstream: %v", h)
	}
}

func TestTrailersBothWays(t *testing.T) {
	gotReqTrailer := make(chan string, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		gotReqTrailer <- r.Trailer.Get("X-Upload-Sum")
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set(http.TrailerPrefix+"X-Late", "surprise")
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up))
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"http2", p.h2Client()}, {"http1.1", p.h1Client()}} {
		t.Run(c.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() { io.WriteString(pw, "upload"); pw.Close() }()
			req, _ := http.NewRequest("POST", p.url("/t"), pr)
			req.Trailer = http.Header{"X-Upload-Sum": nil}
			go func() {}()
			// The trailer value is set before the body ends.
			req.Trailer.Set("X-Upload-Sum", "u-42")
			res, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(b) != "body" {
				t.Fatalf("body %q, %v", b, err)
			}
			if res.Trailer.Get("X-Checksum") != "abc123" || res.Trailer.Get("X-Late") != "surprise" {
				t.Errorf("response trailers: %v", res.Trailer)
			}
			if got := <-gotReqTrailer; got != "u-42" {
				t.Errorf("request trailer at upstream: %q", got)
			}
		})
	}
}

func TestRequestBodyStreamsUpstream(t *testing.T) {
	got := make(chan string, 10)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break
			}
			got <- line
		}
		io.WriteString(w, "done")
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", p.url("/upload"), pr)
	done := make(chan error, 1)
	go func() {
		res, err := p.h2Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	for i := 0; i < 5; i++ {
		fmt.Fprintf(pw, "part %d\n", i)
		select {
		case line := <-got:
			if line != fmt.Sprintf("part %d\n", i) {
				t.Fatalf("upstream got %q", line)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("part %d of the request body did not reach the upstream while the body was still open", i)
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNoRouteAndDeadUpstream(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	cert := newTestCert(t)
	p := startSluice(t, "routes:\n"+
		"  - name: only\n    match: { host: example.com, path: /app }\n    upstream: "+dead+"\n")
	_ = cert
	client := p.h2Client()
	res, err := client.Get(p.url("/app"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("request for localhost: status %d, want 404 (the route is for example.com)", res.StatusCode)
	}
	req, _ := http.NewRequest("GET", p.url("/app/x"), nil)
	req.Host = "example.com"
	start := time.Now()
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("refused upstream: status %d, want 502", res.StatusCode)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("502 took %s", time.Since(start))
	}
	if l := p.accessLine("/app/x", 5*time.Second); l["close_reason"] != "upstream_error" || l["status"] != 502.0 {
		t.Errorf("access line: %v", l)
	}
}

func TestWebSocketEcho(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	p := startSluice(t, "routes:\n"+route("ws", "/ws", up, "timeouts: { idle: 5s, total: 0s }"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "wss://"+p.addr+"/ws", &websocket.DialOptions{HTTPClient: p.h1Client()})
	if err != nil {
		t.Fatalf("dial through sluice: %v (%v)", err, res)
	}
	defer c.CloseNow()
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("hello %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q", got)
		}
	}
	c.Close(websocket.StatusNormalClosure, "bye")
	if l := p.accessLine("/ws", 5*time.Second); l["status"] != 101.0 {
		t.Errorf("access line: %v", l)
	}
}

func TestSIGTERMDrainsOpenStreams(t *testing.T) {
	every := func(d time.Duration, n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = d
		}
		return s
	}
	t.Run("a stream that ends within the drain time completes", func(t *testing.T) {
		up := upstream(t, pausingUpstream(every(200*time.Millisecond, 8), nil))
		p := startSluice(t, "server: { shutdown_timeout: 10s }\nroutes:\n"+route("app", "/", up))
		res := openStream(t, p.h2Client(), p.url("/drain"))
		p.signal(syscall.SIGTERM)
		p.waitLog(5*time.Second, func(l map[string]any) bool { return strings.HasPrefix(fmt.Sprint(l["msg"]), "stopping") })
		// New connections are refused while the old stream drains (the
		// log line comes just before the listener closes).
		refused := false
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", p.addr, time.Second)
			if err != nil {
				refused = true
				break
			}
			c.Close()
		}
		if !refused {
			t.Error("new connections still accepted 1s into the drain")
		}
		body, err, _ := readAllTimed(res.Body)
		if err != nil || !strings.Contains(body, "data: 8") {
			t.Fatalf("drained stream: %v, %q", err, body)
		}
		if code := p.waitExit(10 * time.Second); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if l := p.accessLine("/drain", time.Second); l["close_reason"] != "done" {
			t.Errorf("close_reason %v", l["close_reason"])
		}
	})
	t.Run("a stream longer than the drain time is reset", func(t *testing.T) {
		up := upstream(t, pausingUpstream(every(200*time.Millisecond, 100), nil))
		p := startSluice(t, "server: { shutdown_timeout: 1s }\nroutes:\n"+route("app", "/", up))
		res := openStream(t, p.h2Client(), p.url("/long"))
		stop := time.Now()
		p.signal(syscall.SIGTERM)
		_, err, _ := readAllTimed(res.Body)
		if err == nil {
			t.Fatal("stream cut by shutdown ended cleanly")
		}
		if el := time.Since(stop); el < 900*time.Millisecond || el > 3*time.Second {
			t.Errorf("stream reset %s after SIGTERM, want about 1s", el)
		}
		if code := p.waitExit(10 * time.Second); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if l := p.accessLine("/long", time.Second); l["close_reason"] != "shutdown" {
			t.Errorf("close_reason %v", l["close_reason"])
		}
	})
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "listen:\n  https: \"nope\"\nroutes:\n  - name: a\n    upstream: http://127.0.0.1:1\n    timeouts: { idle: forever }\n  - name: a\n    upstream: ftp://x\n")
	out, code := runCLI(t, "validate", "--config", bad)
	if code != 1 {
		t.Errorf("validate bad config: exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + `:2:10: listen.https: "nope" is not host:port`,
		bad + `:6:23: routes[0].timeouts.idle: "forever" is not a duration`,
		bad + `:7:11: routes[1].name: "a" is already the name of routes[0]`,
		bad + `:8:15: routes[1].upstream: "ftp://x": the scheme must be http://, h2c:// or unix:`,
	} {
		mustContain(t, out, want)
	}

	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "routes:\n  - { name: app, upstream: \"http://127.0.0.1:8000\" }\n")
	out, code = runCLI(t, "validate", "--config", good)
	if code != 0 || !strings.Contains(out, "ok: 1 route(s)") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("validate good config: exit %d, output %q", code, out)
	}
	out, code = runCLI(t, "validate", "--config", "../config.yaml")
	if code != 0 {
		t.Errorf("shipped config.yaml: exit %d: %s", code, out)
	}
	if _, code = runCLI(t, "bogus"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if _, code = runCLI(t, "run", "--nope"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if _, code = runCLI(t, "run", "--config", bad); code != 1 {
		t.Errorf("run with a bad config: exit %d, want 1", code)
	}
	if out, code = runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "sluice ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestDemo(t *testing.T) {
	cmd := exec.Command(sluiceBin, "demo", "--listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	br := bufio.NewReader(out)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" && time.Now().Before(deadline) {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(line); len(f) == 2 && f[0] == "page" {
			base = strings.TrimSuffix(f[1], "/")
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	res, err := client.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s %v", res.Proto, res.Header)
	}
	br2 := bufio.NewReader(res.Body)
	var times []time.Time
	for len(times) < 2 {
		line, err := br2.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			times = append(times, time.Now())
		}
	}
	if d := times[1].Sub(times[0]); d < 500*time.Millisecond {
		t.Errorf("demo clock events %s apart: were they buffered?", d)
	}
}

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func TestPlainListenerRedirects(t *testing.T) {
	cert := newTestCert(t)
	cfg := strings.Replace(header(cert), `http: ""`, `http: "127.0.0.1:0"`, 1) +
		"routes:\n" + route("app", "/", "http://127.0.0.1:1")
	p := startSluiceConfig(t, cfg, cert)
	l := p.waitLog(5*time.Second, func(l map[string]any) bool { return l["msg"] == "listening" && l["listener"] == "http" })
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get("http://" + l["addr"].(string) + "/some/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := "https://127.0.0.1:" + port(p.addr) + "/some/path?q=1"
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
		t.Fatalf("%d %q, want 308 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

func TestMissingCertificateIsAConfigError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	writeFile(t, path, "tls:\n  certificates:\n    - { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem }\nroutes:\n  - { name: app, upstream: \"http://127.0.0.1:1\" }\n")
	for _, cmd := range []string{"validate", "run"} {
		out, code := runCLI(t, cmd, "--config", path)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", cmd, code)
		}
		mustContain(t, out, path+":3:7: tls.certificates[0]: loading /nonexistent/cert.pem")
	}
}

func TestUpstreamKeepAlivePool(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := 3
			if r.URL.Path == "/long" {
				n = 1000
			}
			for i := 0; i < n; i++ {
				fmt.Fprintf(w, "line %d\n", i)
				w.(http.Flusher).Flush()
				if r.URL.Path == "/long" {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := startSluice(t, "routes:\n"+route("app", "/", "http://"+ln.Addr().String()))
	client := p.h2Client()
	count := func() int { mu.Lock(); defer mu.Unlock(); return conns }

	for i := 0; i < 5; i++ {
		res, err := client.Get(p.url("/short"))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(res.Body)
		res.Body.Close()
	}
	if n := count(); n != 1 {
		t.Fatalf("5 sequential fully-read exchanges used %d upstream connections, want 1", n)
	}
	// A stream abandoned half-way must not hand its connection, with
	// unread body bytes, to the next exchange.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", p.url("/long"), nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Read(make([]byte, 10))
	cancel()
	p.accessLine("/long", 5*time.Second)
	res, err = client.Get(p.url("/short"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "line 0\nline 1\nline 2\n" {
		t.Fatalf("exchange after an abandoned stream got %q", b)
	}
	if n := count(); n != 2 {
		t.Fatalf("after an abandoned stream: %d upstream connections, want 2 (a fresh one)", n)
	}
}
