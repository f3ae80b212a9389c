package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// debianPython is Debian's interpreter, the one python3-django,
// gunicorn and python3-uvicorn install into (a python3 earlier in PATH,
// such as a pyenv shim, does not see those packages).
const debianPython = "/usr/bin/python3"

// exampleApp is an example app run as a subprocess: its stdout and stderr
// are collected, shown when the test fails, and the process group is
// killed at cleanup.
type exampleApp struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	lines  chan string
	exited chan struct{}
}

// startExampleApp starts cmd and waits until one of its output lines matches
// ready, returning the submatches.
func startExampleApp(t *testing.T, cmd *exec.Cmd, ready *regexp.Regexp) (*exampleApp, []string) {
	t.Helper()
	a := &exampleApp{cmd: cmd, lines: make(chan string, 256), exited: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() {
		cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(a.exited)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			a.mu.Lock()
			a.out.WriteString(sc.Text() + "\n")
			a.mu.Unlock()
			select {
			case a.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-a.exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), a.output())
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-a.lines:
			if m := ready.FindStringSubmatch(l); m != nil {
				return a, m
			}
		case <-a.exited:
			t.Fatalf("%s exited before it was ready:\n%s", cmd.Path, a.output())
		case <-deadline:
			t.Fatalf("%s not ready within 30s:\n%s", cmd.Path, a.output())
		}
	}
}

func (a *exampleApp) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.String()
}

// exampleDir returns a path inside the repository.
func exampleDir(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// exampleSocket returns a unix socket path short enough for sun_path (108
// bytes), which t.TempDir() paths can exceed.
func exampleSocket(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

// sentLateness is how long after its send time (in Unix milliseconds,
// stamped by the upstream) a piece of a stream reached the client. Both
// run on this machine, so they share a clock.
func sentLateness(sentUnixMs int64, arrived time.Time) time.Duration {
	return arrived.Sub(time.UnixMilli(sentUnixMs))
}

// readTimedEvents reads n server-sent events whose data is JSON with a
// sequence number and the upstream's send time, checks that they arrive
// in order and none lags more than maxStreamLag, and returns the worst lag.
func readTimedEvents(t *testing.T, br *bufio.Reader, n int) time.Duration {
	t.Helper()
	var worst time.Duration
	for seen := 0; seen < n; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", seen, err)
		}
		data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
		if !ok {
			continue
		}
		arrived := time.Now()
		var ev struct {
			Seq        int   `json:"seq"`
			SentUnixMs int64 `json:"sent_unix_ms"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Seq != seen {
			t.Fatalf("event %d: %q (%v)", seen, data, err)
		}
		late := sentLateness(ev.SentUnixMs, arrived)
		if late > maxStreamLag {
			t.Fatalf("event %d arrived %s after it was sent: held back", seen, late)
		}
		worst = max(worst, late)
		seen++
	}
	return worst
}

// maxStreamLag is the most a streamed piece may lag behind its send time. A
// proxy that buffers holds the first pieces back for the whole stream,
// which the streams in these tests make several times longer.
const maxStreamLag = 600 * time.Millisecond
