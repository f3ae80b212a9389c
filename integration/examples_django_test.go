package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// exampleRoutes returns the routes section of an example's shipped
// config.yaml with its unix socket path replaced by sock, so the tests
// exercise the routes and timeouts users copy.
func exampleRoutes(t *testing.T, configPath, exampleSock, sock string) string {
	t.Helper()
	b, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\nroutes:")
	if i < 0 {
		t.Fatalf("%s: no routes section", configPath)
	}
	if !strings.Contains(s, exampleSock) {
		t.Fatalf("%s does not use %s", configPath, exampleSock)
	}
	return strings.ReplaceAll(s[i+1:], exampleSock, sock)
}

// validateExampleConfig runs `sluice validate` on a shipped example config.
func validateExampleConfig(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command(sluiceBin, "validate", "--config", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice validate %s: %v\n%s", path, err, out)
	}
}

// startDjangoExample runs examples/django under gunicorn (gthread workers,
// as its README says) on a unix socket, and sluice in front of it with
// the example's routes.
func startDjangoExample(t *testing.T) *sluiceProc {
	t.Helper()
	dir := exampleDir(t, "examples/django")
	validateExampleConfig(t, dir+"/config.yaml")
	sock := exampleSocket(t, "gunicorn.sock")
	cmd := exec.Command(debianPython, "-m", "gunicorn", "--chdir", dir, "--bind", "unix:"+sock,
		"--worker-class", "gthread", "--workers", "2", "--threads", "4", "mysite.wsgi")
	startExampleApp(t, cmd, regexp.MustCompile(`Listening at: unix:`))
	return startSluice(t, exampleRoutes(t, dir+"/config.yaml", "/tmp/sluice-django.sock", sock))
}

// TestExampleDjangoSSE: each event of the Django SSE view reaches an
// HTTP/2 client as it is sent, on the events route.
func TestExampleDjangoSSE(t *testing.T) {
	p := startDjangoExample(t)
	const n = 8
	res, err := p.h2Client().Get(p.url("/events/clock?n=8&every=0.3"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("got %s %s %q", res.Proto, res.Status, res.Header.Get("Content-Type"))
	}
	if res.Header.Get("X-Accel-Buffering") != "" {
		t.Fatal("X-Accel-Buffering was forwarded; sluice consumes it")
	}
	br := bufio.NewReader(res.Body)
	worst := readTimedEvents(t, br, n)
	if rest, err := io.ReadAll(br); err != nil || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("after the last event: %q, %v; want a clean end", rest, err)
	}
	l := p.accessLine("/events/clock", 5*time.Second)
	if l["route"] != "events" || l["close_reason"] != "done" {
		t.Fatalf("access line %v", l)
	}
	t.Logf("Django SSE: %d events through sluice (HTTP/2), worst sentLateness %s", n, worst)
}

// TestExampleDjangoLoader: the loader page's HTML arrives step by step,
// each <li> as the view yields it, over HTTP/1.1 and HTTP/2.
func TestExampleDjangoLoader(t *testing.T) {
	p := startDjangoExample(t)
	li := regexp.MustCompile(`<li data-step="(\d+)" data-sent="(\d+)">`)
	for _, c := range []struct {
		name   string
		proto  int
		client *http.Client
	}{{"http2", 2, p.h2Client()}, {"http1.1", 1, p.h1Client()}} {
		t.Run(c.name, func(t *testing.T) {
			const steps = 6
			start := time.Now()
			res, err := c.client.Get(p.url("/loader/?steps=6&every=0.3"))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.ProtoMajor != c.proto {
				t.Fatalf("proto %s", res.Proto)
			}
			br := bufio.NewReader(res.Body)
			var first time.Duration
			step := 0
			var page strings.Builder
			for {
				line, err := br.ReadString('\n')
				page.WriteString(line)
				if m := li.FindStringSubmatch(line); m != nil {
					arrived := time.Now()
					if m[1] != strconv.Itoa(step) {
						t.Fatalf("step %s, want %d", m[1], step)
					}
					sent, _ := strconv.ParseInt(m[2], 10, 64)
					if late := sentLateness(sent, arrived); late > maxStreamLag {
						t.Fatalf("step %d arrived %s after it was sent: the page was buffered", step, late)
					}
					if step == 0 {
						first = time.Since(start)
					}
					step++
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			total := time.Since(start)
			if step != steps || !strings.Contains(page.String(), "Report ready.</p></body></html>") {
				t.Fatalf("incomplete page (%d steps):\n%s", step, page.String())
			}
			if first > total/2 {
				t.Fatalf("first step after %s of %s: not incremental", first, total)
			}
			t.Logf("loader over %s: first step after %s, page complete after %s", res.Proto, first.Round(time.Millisecond), total.Round(time.Millisecond))
		})
	}
}

// procRSS returns a process's resident set size, from /proc/PID/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// TestExampleDjangoCSVMillionRows downloads the million-row CSV export
// over HTTP/2, checks every row arrives, that the first rows arrive long
// before the last are generated, and that sluice's memory stays flat
// while ~45 MB flow through it.
func TestExampleDjangoCSVMillionRows(t *testing.T) {
	p := startDjangoExample(t)
	pid := p.cmd.Process.Pid

	// Warm up the connection, TLS and buffer pools, so the baseline is
	// sluice's steady state and not its first request.
	client := p.h2Client()
	if res, err := client.Get(p.url("/exports/rows.csv?rows=20000")); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	base, err := procRSS(pid)
	if err != nil {
		t.Fatal(err)
	}

	var peak int64
	var samples int
	var mu sync.Mutex
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				rss, err := procRSS(pid)
				if err != nil {
					return
				}
				mu.Lock()
				peak = max(peak, rss)
				samples++
				mu.Unlock()
			}
		}
	}()

	start := time.Now()
	res, err := client.Get(p.url("/exports/rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 || res.Header.Get("Content-Type") != "text/csv" {
		t.Fatalf("got %s %s %q", res.Proto, res.Status, res.Header.Get("Content-Type"))
	}
	if res.ContentLength != -1 {
		t.Fatalf("Content-Length %d: the export was buffered to be measured", res.ContentLength)
	}
	br := bufio.NewReaderSize(res.Body, 64<<10)
	header, err := br.ReadString('\n')
	if err != nil || header != "id,name,amount,sent_unix_ms\r\n" {
		t.Fatalf("header %q, %v", header, err)
	}
	firstRow, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	ttfb := time.Since(start)
	if f := bytes.Split(bytes.TrimSpace(firstRow), []byte(",")); len(f) != 4 || string(f[0]) != "0" {
		t.Fatalf("first row %q", firstRow)
	}
	rows, bytesRead := 1, int64(len(header)+len(firstRow))
	var last []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil {
			t.Fatalf("after %d rows: %v", rows, err)
		}
		rows++
		bytesRead += int64(len(line))
		last = append(last[:0], line...)
	}
	total := time.Since(start)
	close(stop)
	<-sampled

	const want = 1_000_000
	if rows != want || !bytes.HasPrefix(last, []byte("999999,customer-999999,")) {
		t.Fatalf("%d rows, last %q; want %d rows ending with id 999999", rows, last, want)
	}
	if ttfb > total/4 {
		t.Fatalf("first row after %s of %s: the export was not streamed", ttfb, total)
	}
	mu.Lock()
	defer mu.Unlock()
	growth := peak - base
	t.Logf("CSV export: %d rows, %.1f MB in %s (first row after %s); sluice VmRSS %.1f MiB before, peak %.1f MiB over %d samples (growth %.1f MiB)",
		rows, float64(bytesRead)/1e6, total.Round(time.Millisecond), ttfb.Round(time.Millisecond),
		float64(base)/(1<<20), float64(peak)/(1<<20), samples, float64(growth)/(1<<20))
	if samples < 3 {
		t.Fatalf("only %d memory samples", samples)
	}
	limit := int64(32 << 20)
	if raceBuild {
		// Under the race detector sync.Pool drops a share of what is
		// put back (on purpose), so buffers are reallocated and the
		// heap churns; measured ~25 MiB growth there against <1 MiB
		// in a normal build. Still far below the 45 MB that flow.
		limit = 40 << 20
	}
	if growth > limit {
		t.Fatalf("sluice's RSS grew by %.1f MiB (limit %d MiB) while streaming %.1f MB: it is holding the export",
			float64(growth)/(1<<20), limit>>20, float64(bytesRead)/1e6)
	}
	if l := p.accessLine("/exports/rows.csv", 5*time.Second); l["route"] != "exports" {
		t.Fatalf("access line %v", l)
	}
}
