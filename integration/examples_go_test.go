package integration

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestExampleGoNDJSON runs examples/go behind sluice on a unix socket
// and checks that each NDJSON line reaches an HTTP/2 client as it is
// written, and the stream ends cleanly.
func TestExampleGoNDJSON(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "go-ndjson")
	build := exec.Command("go", "build", "-o", bin, "../examples/go")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/go: %v\n%s", err, out)
	}
	validateExampleConfig(t, exampleDir(t, "examples/go")+"/config.yaml")
	sock := exampleSocket(t, "go.sock")
	startExampleApp(t, exec.Command(bin, "--listen", "unix:"+sock), regexp.MustCompile(`^listening on unix:`))
	p := startSluice(t, "routes:\n"+route("progress", "/progress", "unix:"+sock, "timeouts: { idle: 2m, total: 0s }"))

	const n, every = 12, 250 * time.Millisecond
	res, err := p.h2Client().Get(p.url("/progress?n=12&every=250ms"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("got %s %q", res.Proto, res.Header.Get("Content-Type"))
	}
	start := time.Now()
	sc := bufio.NewScanner(res.Body)
	var worst time.Duration
	for i := 0; i < n; i++ {
		if !sc.Scan() {
			t.Fatalf("line %d: stream ended: %v", i, sc.Err())
		}
		arrived := time.Now()
		var ev struct {
			Seq        int   `json:"seq"`
			SentUnixMs int64 `json:"sent_unix_ms"`
			Done       bool  `json:"done"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d %q: %v", i, sc.Text(), err)
		}
		if ev.Seq != i || ev.Done != (i == n-1) {
			t.Fatalf("line %d: %+v", i, ev)
		}
		late := sentLateness(ev.SentUnixMs, arrived)
		worst = max(worst, late)
		if late > maxStreamLag {
			t.Fatalf("line %d arrived %s after it was sent: held back", i, late)
		}
	}
	if sc.Scan() {
		t.Fatalf("extra line %q", sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("after the last line: %v, want a clean end", err)
	}
	if took := time.Since(start); took < (n-2)*every {
		t.Fatalf("stream took %s: the app's pacing did not apply", took)
	}
	t.Logf("%d NDJSON lines over %s, worst sentLateness %s", n, time.Since(start).Round(time.Millisecond), worst)
	if l := p.accessLine("/progress", 5*time.Second); l["close_reason"] != "done" {
		t.Fatalf("access line %v", l)
	}
}
