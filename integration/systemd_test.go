package integration

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a unixgram socket standing in for systemd's
// NOTIFY_SOCKET; it collects the messages sluice sends.
type notifySocket struct {
	path string
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "sd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 100)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// next returns the next message that is not a watchdog ping, counting
// the pings in *pings.
func (n *notifySocket) next(t *testing.T, pings *int) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatal("notify socket closed")
			}
			if m == "WATCHDOG=1" {
				*pings++
				continue
			}
			return m
		case <-deadline:
			t.Fatal("no sd_notify message within 10s")
		}
	}
}

func assignments(msg string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(msg, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

func TestSystemdNotify(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cert := newTestCert(t)
	cfg := header(cert) + "routes:\n" + route("app", "/", up)
	ns := newNotifySocket(t)
	p := startSluiceCmd(t, cfg, cert, func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=200000")
	})
	pings := 0

	ready := assignments(ns.next(t, &pings))
	if ready["READY"] != "1" || !strings.Contains(ready["STATUS"], "serving 1 route(s) on https "+p.addr) {
		t.Fatalf("first message %v, want READY=1 with a serving STATUS", ready)
	}

	// A good reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
	p.signal(syscall.SIGHUP)
	reloading := assignments(ns.next(t, &pings))
	if reloading["RELOADING"] != "1" || reloading["MONOTONIC_USEC"] == "" {
		t.Fatalf("after SIGHUP got %v, want RELOADING=1 with MONOTONIC_USEC", reloading)
	}
	if m := assignments(ns.next(t, &pings)); m["READY"] != "1" || !strings.HasPrefix(m["STATUS"], "serving") {
		t.Fatalf("after reload got %v, want READY=1 serving", m)
	}

	// A bad config: refused, reported in STATUS, still READY.
	p.rewriteConfig(cfg + "bogus_key: 1\n")
	p.signal(syscall.SIGHUP)
	if m := assignments(ns.next(t, &pings)); m["RELOADING"] != "1" {
		t.Fatalf("got %v, want RELOADING=1", m)
	}
	failed := assignments(ns.next(t, &pings))
	if failed["READY"] != "1" || !strings.Contains(failed["STATUS"], "reload failed") || !strings.Contains(failed["STATUS"], "bogus_key") {
		t.Fatalf("after a bad reload got %v, want READY=1 and a STATUS naming the error", failed)
	}

	// Pings keep coming at half of WatchdogSec (100ms here).
	for deadline := time.After(5 * time.Second); pings < 3; {
		select {
		case m := <-ns.msgs:
			if m != "WATCHDOG=1" {
				t.Fatalf("unexpected message %q", m)
			}
			pings++
		case <-deadline:
			t.Fatalf("%d watchdog pings within 5s with WATCHDOG_USEC=200000", pings)
		}
	}

	p.signal(syscall.SIGTERM)
	if m := assignments(ns.next(t, &pings)); m["STOPPING"] != "1" {
		t.Fatalf("after SIGTERM got %v, want STOPPING=1", m)
	}
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestSocketActivation(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("from upstream")) }))
	httpsFile, httpsAddr := listenFile(t)
	adminFile, adminAddr := listenFile(t)
	plainFile, plainAddr := listenFile(t)
	cert := newTestCert(t)
	// https and admin are taken by name whatever the config says; the
	// third socket has systemd's default name (the unit's), so it is
	// matched by address to listen.http.
	cfg := strings.Replace(headerAdmin(cert, "127.0.0.1:0"), `http: ""`, "http: "+plainAddr, 1) +
		"routes:\n" + route("app", "/", up)
	p := startSluiceCmd(t, cfg, cert, activatedCmd(t, []string{"https", "admin", "sluice.socket"}, []*os.File{httpsFile, adminFile, plainFile}))

	if p.addr != httpsAddr {
		t.Fatalf("https listener on %s, want the passed socket %s", p.addr, httpsAddr)
	}
	if got := p.listenerAddr("admin", 1); got != adminAddr {
		t.Fatalf("admin listener on %s, want the passed socket %s", got, adminAddr)
	}
	if code, body := getText(t, p.h2Client(), p.url("/x")); code != 200 || body != "from upstream" {
		t.Fatalf("through the passed https socket: %d %q", code, body)
	}
	if code, body := getText(t, nil, "http://"+adminAddr+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("admin /healthz on the passed socket: %d %q", code, body)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get("http://" + plainAddr + "/a?b=c")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	_, port, _ := net.SplitHostPort(httpsAddr)
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != "https://127.0.0.1:"+port+"/a?b=c" {
		t.Fatalf("plain listener (matched by address): %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// With socket activation the listening socket outlives the process: a
// client that connects while sluice restarts waits in the backlog and is
// served by the next process, never refused.
func TestSocketActivationRestartRefusesNothing(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) }))
	httpsFile, httpsAddr := listenFile(t)
	cert := newTestCert(t)
	cfg := header(cert) + "routes:\n" + route("app", "/", up)
	setup := activatedCmd(t, []string{"https"}, []*os.File{httpsFile})

	first := startSluiceCmd(t, cfg, cert, setup)
	if code, _ := getText(t, first.h1Client(), first.url("/")); code != 200 {
		t.Fatalf("first process: %d", code)
	}
	first.signal(syscall.SIGTERM)
	if code := first.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("first process exit code %d", code)
	}

	// No sluice runs now; the connection still succeeds.
	conn, err := net.DialTimeout("tcp", httpsAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("connecting between the two processes: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))

	second := startSluiceCmd(t, cfg, cert, setup)
	if second.addr != httpsAddr {
		t.Fatalf("second process on %s, want %s", second.addr, httpsAddr)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: cert.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if _, err := tc.Write([]byte("GET /queued HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatalf("request on the queued connection: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("response on the queued connection: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("queued connection got %d", res.StatusCode)
	}
	second.accessLine("/queued", 5*time.Second)
}

// Under systemd, stderr is the journal: lines carry a <N> priority
// prefix and no timestamp of their own.
func TestJournalLogs(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	// No certificates: the self-signed warning gives a warn line too.
	cfg := "listen: { https: \"127.0.0.1:0\", http: \"\" }\nadmin: \"\"\nroutes:\n" + route("app", "/", up)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(journal bool) []string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		fi, err := w.Stat()
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		stream := "1:1" // another stream: not the journal
		if journal {
			stream = strings.Join([]string{itoa(uint64(st.Dev)), itoa(st.Ino)}, ":")
		}
		cmd := exec.Command(sluiceBin, "run", "--config", path)
		cmd.Env = append(os.Environ(), "JOURNAL_STREAM="+stream, "GOMAXPROCS=1")
		cmd.Stderr = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var got []string
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("sluice exited; log: %q", got)
				}
				got = append(got, l)
				if strings.Contains(l, `"msg":"sluice started"`) {
					return got
				}
			case <-deadline:
				t.Fatalf("no start line within 10s; log: %q", got)
			}
		}
	}

	prefixes := map[string]bool{}
	for _, l := range run(true) {
		if len(l) < 4 || l[0] != '<' || l[2] != '>' {
			t.Fatalf("journal line without a <N> prefix: %q", l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l[3:]), &m); err != nil {
			t.Fatalf("after the prefix, not JSON: %q", l)
		}
		if _, ok := m["ts"]; ok {
			t.Fatalf("journal line carries its own timestamp: %q", l)
		}
		want := map[string]string{"info": "<6>", "warn": "<4>", "error": "<3>", "debug": "<7>"}[m["level"].(string)]
		if l[:3] != want {
			t.Fatalf("level %v with prefix %s, want %s", m["level"], l[:3], want)
		}
		prefixes[l[:3]] = true
	}
	if !prefixes["<6>"] || !prefixes["<4>"] {
		t.Fatalf("want info and warn lines, got prefixes %v", prefixes)
	}

	var started map[string]any
	for _, l := range run(false) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["ts"] == nil {
			t.Fatalf("outside the journal, want plain JSON with ts: %q", l)
		}
		started = m
	}
	// The start line says how many threads run Go code (README, "Tuning").
	if started["gomaxprocs"] != float64(1) {
		t.Fatalf("start line with GOMAXPROCS=1: gomaxprocs %v, want 1: %v", started["gomaxprocs"], started)
	}
}

func itoa(v uint64) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
		if v == 0 {
			return string(b)
		}
	}
}

// The shipped unit files pass systemd-analyze verify, with ExecStart
// pointing at the binary under test (verify checks that it exists).
func TestSystemdUnitsVerify(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"sluice.service", "sluice.socket"} {
		b, err := os.ReadFile(filepath.Join("..", "packaging", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		unit := strings.ReplaceAll(string(b), "/usr/local/bin/sluice", sluiceBin)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", "sluice.service", "sluice.socket")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// verify only warns about unknown keys: any output is a failure.
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
