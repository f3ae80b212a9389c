package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// headerAdmin is header with an admin listener on admin.
func headerAdmin(c testCert, admin string) string {
	return strings.Replace(header(c), `admin: ""`, fmt.Sprintf("admin: %q", admin), 1)
}

// listenerAddr waits for the "listening" log line of the named listener
// and returns its address; nth picks the nth such line (1 = first).
func (p *sluiceProc) listenerAddr(name string, nth int) string {
	p.t.Helper()
	n := 0
	l := p.waitLog(10*time.Second, func(l map[string]any) bool {
		if l["msg"] == "listening" && l["listener"] == name {
			n++
		}
		return n == nth
	})
	return l["addr"].(string)
}

// waitNth waits for the nth log line whose msg is one of msgs and returns it.
func (p *sluiceProc) waitNth(nth int, timeout time.Duration, msgs ...string) map[string]any {
	p.t.Helper()
	n := 0
	return p.waitLog(timeout, func(l map[string]any) bool {
		for _, m := range msgs {
			if l["msg"] == m {
				n++
				return n == nth
			}
		}
		return false
	})
}

// rewriteConfig replaces the running process's config file.
func (p *sluiceProc) rewriteConfig(cfg string) {
	p.t.Helper()
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// getText GETs url with a 5 s timeout and returns status and body.
func getText(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	if c == nil {
		c = &http.Client{}
	}
	c.Timeout = 5 * time.Second
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return res.StatusCode, string(b)
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, data string }

// readEvent reads one event from br, failing the test if none arrives
// within timeout.
func readEvent(t *testing.T, br *bufio.Reader, timeout time.Duration) sseEvent {
	t.Helper()
	ev, err := readEventErr(br, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func readEventErr(br *bufio.Reader, timeout time.Duration) (sseEvent, error) {
	type result struct {
		ev  sseEvent
		err error
	}
	done := make(chan result, 1)
	go func() {
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				done <- result{ev, err}
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev.id != "" || ev.data != "" {
					done <- result{ev, nil}
					return
				}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	select {
	case r := <-done:
		return r.ev, r.err
	case <-time.After(timeout):
		return sseEvent{}, fmt.Errorf("no event within %s", timeout)
	}
}

// sseUpstream streams one event per value sent on events, with the value
// as its id, until the client goes away or events is closed.
func sseUpstream(events <-chan int, label string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprintf(w, "retry: 1000\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case i, ok := <-events:
				if !ok {
					return
				}
				fmt.Fprintf(w, "id: %d\ndata: %s %d\n\n", i, label, i)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}
}

// activatedCmd returns a setup that starts sluice the way systemd does
// with socket activation: files as fds 3.., LISTEN_FDS, LISTEN_FDNAMES,
// and LISTEN_PID set to sluice's own pid by a shell that then execs it
// (exec keeps the pid).
func activatedCmd(t *testing.T, names []string, files []*os.File, env ...string) func(*exec.Cmd) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	return func(cmd *exec.Cmd) {
		cmd.Path = sh
		cmd.Args = append([]string{"sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`}, cmd.Args...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
		cmd.Env = append(cmd.Env, env...)
		cmd.ExtraFiles = files
	}
}

// listenFile opens a TCP listener on a loopback :0 port, as systemd would
// for a socket unit, and returns it as a file to pass on.
func listenFile(t *testing.T) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // f holds the socket open
	t.Cleanup(func() { f.Close() })
	return f, addr
}
