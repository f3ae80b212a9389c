package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium package's launcher.
const chromiumPath = "/usr/bin/chromium"

// browserTestUpstream serves the two test pages and their streams, and
// counts, per run, how many event streams are open at once.
type browserTestUpstream struct {
	mu      sync.Mutex
	open    map[string]int
	peak    map[string]int
	chunkMs int
}

func (b *browserTestUpstream) streamOpened(run string, delta int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open[run] += delta
	b.peak[run] = max(b.peak[run], b.open[run])
}

func (b *browserTestUpstream) peakOf(run string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak[run]
}

func (b *browserTestUpstream) handler(t *testing.T) http.Handler {
	page := func(name string) http.HandlerFunc {
		body, err := os.ReadFile(filepath.Join("testdata", "browser", name))
		if err != nil {
			t.Fatal(err)
		}
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /sse.html", page("sse.html"))
	mux.Handle("GET /download.html", page("download.html"))
	// One event every 150 ms, stamped with the time it was sent, until
	// the browser goes away.
	mux.HandleFunc("GET /sse/stream", func(w http.ResponseWriter, r *http.Request) {
		run := r.URL.Query().Get("run")
		b.streamOpened(run, 1)
		defer b.streamOpened(run, -1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		for {
			fmt.Fprintf(w, "data: {\"sent\":%d}\n\n", time.Now().UnixMilli())
			if rc.Flush() != nil {
				return
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	// A file with a Content-Length (so the page knows the total), sent
	// in 64 KiB pieces every chunkMs.
	mux.HandleFunc("GET /download/file", func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		rc := http.NewResponseController(w)
		piece := bytes.Repeat([]byte("sluice! "), 8<<10)
		for sent := 0; sent < size; {
			n := min(len(piece), size-sent)
			if _, err := w.Write(piece[:n]); err != nil {
				return
			}
			rc.Flush()
			sent += n
			if sent < size {
				select {
				case <-time.After(time.Duration(b.chunkMs) * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}
	})
	return mux
}

// chromiumSPKIHash is what --ignore-certificate-errors-spki-list takes: the
// base64 SHA-256 of the certificate's SubjectPublicKeyInfo. Chromium then
// trusts exactly the test certificate, and no other bad one.
func chromiumSPKIHash(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// startChromium starts headless Chromium; http1 forces HTTP/1.1 (as a browser
// talking to an HTTP/1.1-only front door would).
func startChromium(t *testing.T, ctx context.Context, spki string, http1 bool) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is required (Debian package chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.WindowSize(960, 400),
	)
	if http1 {
		opts = append(opts, chromedp.Flag("disable-http2", true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// saveScreenshot saves a PNG of the page: into $SLUICE_SCREENSHOT_DIR when
// set (that is how docs/img/ is made), else into the test's temp dir.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 4096 {
		t.Fatalf("screenshot %s: %d bytes, not a PNG of a rendered page", name, len(png))
	}
	dir := os.Getenv("SLUICE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

type tenStreamsReport struct {
	Proto   string `json:"proto"`
	Streams []struct {
		Open      bool `json:"open"`
		Events    int  `json:"events"`
		MaxLateMs int  `json:"maxLateMs"`
	} `json:"streams"`
}

func readTenStreamsPage(t *testing.T, ctx context.Context) tenStreamsReport {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.report()`))
	if err != nil {
		t.Fatal(err)
	}
	var r tenStreamsReport
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBrowserTenEventStreams opens a page through sluice in headless
// Chromium that opens ten EventSource streams at once. Over HTTP/2 all
// ten share one connection and receive every event as it is sent; with
// HTTP/1.1 forced, Chromium holds six connections per host, so four
// streams never open — the reason sluice serves browsers HTTP/2.
func TestBrowserTenEventStreams(t *testing.T) {
	up := &browserTestUpstream{open: map[string]int{}, peak: map[string]int{}, chunkMs: 60}
	p := startSluice(t, "routes:\n"+route("app", "/", upstream(t, up.handler(t))))
	spki := chromiumSPKIHash(t, p.cert.certFile)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	t.Run("http2", func(t *testing.T) {
		b := startChromium(t, ctx, spki, false)
		if err := chromedp.Do(b, chromedp.Navigate(p.url("/sse.html?run=h2"))); err != nil {
			t.Fatal(err)
		}
		// Every stream has received three events.
		if _, err := chromedp.Run(b, chromedp.Poll[chromedp.Void](
			`state.streams.every(s => s.events >= 3)`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("not all ten streams received events: %v; page: %+v", err, readTenStreamsPage(t, b))
		}
		r := readTenStreamsPage(t, b)
		if r.Proto != "h2" {
			t.Fatalf("page loaded over %q, want h2", r.Proto)
		}
		worst := 0
		for i, s := range r.Streams {
			if !s.Open || s.Events < 3 {
				t.Fatalf("stream %d: %+v", i, s)
			}
			worst = max(worst, s.MaxLateMs)
		}
		if worst > 1000 {
			t.Fatalf("an event reached the page %d ms after it was sent: held back", worst)
		}
		if peak := up.peakOf("h2"); peak != 10 {
			t.Fatalf("upstream saw %d streams open at once, want 10", peak)
		}
		saveScreenshot(t, b, "browser-sse-http2.png")
		t.Logf("HTTP/2: 10 of 10 EventSource streams open and receiving (worst lag %d ms)", worst)
	})

	t.Run("http1.1", func(t *testing.T) {
		b := startChromium(t, ctx, spki, true)
		if err := chromedp.Do(b, chromedp.Navigate(p.url("/sse.html?run=h1"))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(b, chromedp.Poll[chromedp.Void](
			`state.streams.filter(s => s.events >= 3).length >= 6`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("six streams did not start: %v; page: %+v", err, readTenStreamsPage(t, b))
		}
		// Give the other four every chance to open: they cannot while
		// the first six hold all of Chromium's connections to the host.
		time.Sleep(time.Second)
		r := readTenStreamsPage(t, b)
		if r.Proto != "http/1.1" {
			t.Fatalf("page loaded over %q, want http/1.1", r.Proto)
		}
		live, waiting := 0, 0
		for _, s := range r.Streams {
			switch {
			case s.Events > 0:
				live++
			case !s.Open:
				waiting++
			}
		}
		if live != 6 || waiting != 4 || up.peakOf("h1") != 6 {
			t.Fatalf("HTTP/1.1: %d streams live, %d waiting, upstream peak %d; want 6, 4, 6 (Chromium's per-host limit)",
				live, waiting, up.peakOf("h1"))
		}
		saveScreenshot(t, b, "browser-sse-http1.png")
		t.Logf("HTTP/1.1: only %d of 10 EventSource streams open, %d waiting for a connection (Chromium's 6 per host)", live, waiting)
	})
}

// TestBrowserDownloadProgress: a page read through sluice over HTTP/2
// fetches a 2 MiB file sent in 64 KiB pieces and shows progress as the
// pieces arrive, not all at the end.
func TestBrowserDownloadProgress(t *testing.T) {
	const size, pieces, every = 2 << 20, 32, 60 * time.Millisecond
	up := &browserTestUpstream{open: map[string]int{}, peak: map[string]int{}, chunkMs: int(every / time.Millisecond)}
	p := startSluice(t, "routes:\n"+
		route("downloads", "/download/", upstream(t, up.handler(t)), "streaming: always")+
		route("app", "/", upstream(t, up.handler(t))))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	b := startChromium(t, ctx, chromiumSPKIHash(t, p.cert.certFile), false)
	if err := chromedp.Do(b, chromedp.Navigate(p.url("/download.html?size="+strconv.Itoa(size)))); err != nil {
		t.Fatal(err)
	}
	// Mid-download: the bar shows partial progress.
	if _, err := chromedp.Run(b, chromedp.Poll[chromedp.Void](
		`dl.got >= dl.total / 2 || dl.error`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, b, "browser-download-progress.png")
	if _, err := chromedp.Run(b, chromedp.Poll[chromedp.Void](
		`dl.done || dl.error`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatal(err)
	}
	s, err := chromedp.Run(b, chromedp.Evaluate[string](`JSON.stringify(dl)`))
	if err != nil {
		t.Fatal(err)
	}
	var dl struct {
		Got, Total int
		Updates    [][2]float64
		Error      string
	}
	if err := json.Unmarshal([]byte(s), &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Error != "" || dl.Got != size || dl.Total != size {
		t.Fatalf("download: %d of %d bytes (want %d), error %q", dl.Got, dl.Total, size, dl.Error)
	}
	// The upstream spends (pieces-1)*every sending; a page that got the
	// file in one go would see its progress move only at the very end.
	span := time.Duration(dl.Updates[len(dl.Updates)-1][0]-dl.Updates[0][0]) * time.Millisecond
	if len(dl.Updates) < pieces/2 || span < (pieces-1)*every/2 {
		t.Fatalf("progress moved %d times over %s; want at least %d updates over %s", len(dl.Updates), span, pieces/2, (pieces-1)*every/2)
	}
	t.Logf("download: %d progress updates over %s for %d bytes", len(dl.Updates), span, size)
	if l := p.accessLine("/download/file", 5*time.Second); l["route"] != "downloads" || l["close_reason"] != "done" {
		t.Fatalf("access line %v", l)
	}
}

// loaderObserver runs in every new document before its own HTML: it
// notes when the browser's parser adds each step of the loader page to
// the DOM, next to the time the view says it sent that step.
const loaderObserver = `
window.__seen = {};
new MutationObserver(ms => {
  for (const m of ms) for (const n of m.addedNodes) {
    if (n.nodeType === 1 && n.dataset && n.dataset.step !== undefined) {
      window.__seen[n.dataset.step] = { at: Date.now(), sent: +n.dataset.sent };
    }
  }
}).observe(document, { childList: true, subtree: true });
`

// TestBrowserDjangoLoader opens the Django example's loader page (gunicorn
// behind sluice, HTTP/2) in Chromium and checks that the browser parses
// each step into the page as the view yields it, and shows a half-built
// page while it is still loading.
func TestBrowserDjangoLoader(t *testing.T) {
	p := startDjangoExample(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	b := startChromium(t, ctx, chromiumSPKIHash(t, p.cert.certFile), false)

	const steps, every = 6, 400 * time.Millisecond
	err := chromedp.Do(b, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: loaderObserver}); err != nil {
			return err
		}
		// Page.navigate returns once the response starts, not at the
		// load event: the page is still streaming.
		res, err := cdp.Call(ctx, tg, page.Navigate, page.NavigateParams{URL: p.url("/loader/?steps=6&every=0.4")})
		if err == nil && res.ErrorText != "" {
			err = fmt.Errorf("navigating: %s", res.ErrorText)
		}
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	// Half-way: some steps shown, the page not finished.
	if _, err := chromedp.Run(b, chromedp.Poll[chromedp.Void](`window.__seen && Object.keys(window.__seen).length >= 3`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatal(err)
	}
	finishedEarly, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.getElementById("done") !== null`))
	if err != nil {
		t.Fatal(err)
	}
	if finishedEarly {
		t.Fatal("the page had finished loading before three steps were shown: it was not rendered as it streamed")
	}
	saveScreenshot(t, b, "browser-django-loader.png")
	if _, err := chromedp.Run(b, chromedp.Poll[chromedp.Void](`document.readyState === "complete"`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatal(err)
	}
	s, err := chromedp.Run(b, chromedp.Evaluate[string](`JSON.stringify(window.__seen)`))
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]struct{ At, Sent int64 }
	if err := json.Unmarshal([]byte(s), &seen); err != nil {
		t.Fatal(err)
	}
	if len(seen) != steps {
		t.Fatalf("browser saw %d steps, want %d: %s", len(seen), steps, s)
	}
	worst := int64(0)
	for step, v := range seen {
		if late := v.At - v.Sent; late > 1000 {
			t.Fatalf("step %s appeared %d ms after it was sent: held back", step, late)
		} else {
			worst = max(worst, late)
		}
	}
	first, last := seen["0"].At, seen[strconv.Itoa(steps-1)].At
	if span := time.Duration(last-first) * time.Millisecond; span < (steps-2)*every {
		t.Fatalf("steps appeared within %s of each other; the view spaced them %s apart", span, every)
	}
	t.Logf("loader page in Chromium: %d steps, each in the DOM within %d ms of being sent; screenshot taken mid-load", steps, worst)
}
