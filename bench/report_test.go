package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluiceproxy/sluice/config"
)

func TestAggregate(t *testing.T) {
	rounds := []map[string]figures{
		{peerSluice: {mChunkP50: 100, mHeld: 9000}, peerDirect: {mChunkP50: 20}},
		{peerSluice: {mChunkP50: 120, mHeld: math.NaN()}, peerDirect: {mChunkP50: 30}},
		{peerSluice: {mChunkP50: 90, mHeld: 11000}, peerDirect: {mChunkP50: 25}},
	}
	agg := aggregate(rounds)
	if got := agg[peerSluice][mChunkP50]; got != 100 {
		t.Errorf("median chunk p50 = %v, want 100", got)
	}
	if got := agg[peerSluice][mHeld]; got != 10000 {
		t.Errorf("held (NaN round skipped) = %v, want 10000", got)
	}
	if got := agg[peerSluice][mAddedP50]; got != 75 {
		t.Errorf("added p50 = %v, want 100-25", got)
	}
	if _, ok := agg[peerDirect][mAddedP50]; ok {
		t.Error("direct has an added latency")
	}
}

func TestRatio(t *testing.T) {
	held := metricByID(mHeld)
	rps := metricByID(mSmallRPS)
	for _, tc := range []struct {
		m    metric
		s, p float64
		want string
	}{
		{held, 8 << 10, 16 << 10, "0.50× (better)"},
		{held, 32 << 10, 16 << 10, "2.00× (worse)"},
		{rps, 30000, 20000, "1.50× (better)"},
		{rps, 10000, 20000, "0.50× (worse)"},
		{rps, 20100, 20000, "1.00× (same)"},
		{rps, 1, 0, "–"},
		{held, math.NaN(), 1, "–"},
		{metricByID(mAddedP50), -5, 40, "-45 µs"},
	} {
		if got := ratio(tc.m, tc.s, tc.p); got != tc.want {
			t.Errorf("ratio(%s, %v, %v) = %q, want %q", tc.m.id, tc.s, tc.p, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		id   string
		v    float64
		want string
	}{
		{mChunkP50, 75.4, "75 µs"},
		{mChunkP50, 1234, "1.23 ms"},
		{mChunkP50, 26100, "26.1 ms"},
		{mHeld, 7 << 10, "7.0 KiB"},
		{mBigGrowth, 12 << 20, "12.0 MiB"},
		{mHeld, 512, "512 B"},
		{mSmallRPS, 38123.4, "38123"},
		{mSmallRPS, math.NaN(), "–"},
	} {
		if got := metricByID(tc.id).format(tc.v); got != tc.want {
			t.Errorf("format(%s, %v) = %q, want %q", tc.id, tc.v, got, tc.want)
		}
	}
}

func TestTargets(t *testing.T) {
	agg := map[string]figures{
		peerSluice:  {mAddedP50: 60, mHeld: 12 << 10, mSmallRPS: 20000, mBigMBps: 600, mBigGrowth: 20 << 20, mCancelP50: 300},
		peerHAProxy: {mAddedP50: 75, mBigMBps: 500},
		peerNginx:   {mSmallRPS: 21000},
	}
	want := map[string]bool{
		"added per-chunk latency p50 ≤ HAProxy's":   true,
		"memory per held stream ≤ 16 KiB":           true,
		"small requests req/s ≥ nginx's":            false,
		"big stream MB/s ≥ HAProxy's":               true,
		"big stream peak RSS growth < 16 MiB":       false,
		"cancel reaches the upstream in < 5 ms p50": true,
	}
	for _, tg := range targets {
		_, _, met, ok := tg.check(agg)
		if !ok {
			t.Errorf("%s: not measurable", tg.desc)
		}
		if met != want[tg.desc] {
			t.Errorf("%s: met = %v, want %v", tg.desc, met, want[tg.desc])
		}
	}
	delete(agg, peerNginx)
	if _, _, _, ok := targets[2].check(agg); ok {
		t.Error("small-requests target measurable without nginx")
	}
}

func TestWriteResults(t *testing.T) {
	agg := map[string]figures{
		peerSluice: {mHeld: 12 << 10, mSmallRPS: 22000, mCancelP50: 90, mCancelMiss: 0},
		peerNginx:  {mHeld: 18 << 10, mSmallRPS: 21000, mCancelMiss: 5},
		peerDirect: {mSmallRPS: 90000},
		"unlisted": {mHeld: 1},
	}
	var b strings.Builder
	writeResults(&b, runInfo{Date: "2026-11-24", Machine: "test box", Rounds: 1, Others: "go 12 s CPU",
		Versions: map[string]string{peerNginx: "nginx/1.22.1"}, Configs: map[string]string{peerNginx: "worker_processes 2;"}}, agg, nil)
	out := b.String()
	for _, want := range []string{
		"| memory per held stream ≤ 16 KiB | 12.0 KiB | ≤ 16.0 KiB | **yes** |",
		"| small requests req/s ≥ nginx's | 22000 | nginx 21000 | **yes** |",
		"| metric | sluice | nginx | direct (no proxy) |",
		"| memory per held stream | 12.0 KiB | 18.0 KiB | – |",
		"| memory per held stream | 0.67× (better) |",
		"| small requests, req/s | 1.05× (better) |",
		"Other processes were active during the run: go 12 s CPU.",
		"- nginx: nginx/1.22.1",
		"worker_processes 2;",
		"| big stream MB/s ≥ HAProxy's | – | HAProxy – | not measured |",
		"| cancel to upstream close, p50 | 90 µs | never (2 s) | – |",
		"| cancel to upstream close, p50 | peer never passed the cancel on |",
	} {
		mustContain(t, out, want)
	}
	if strings.Contains(out, "unlisted") {
		t.Error("report shows a peer it does not know")
	}
}

func TestSplice(t *testing.T) {
	doc, err := splice("", "figures v1\n")
	if err != nil || !strings.HasPrefix(doc, "# sluice benchmarks") || !strings.Contains(doc, beginMarker+"\nfigures v1\n"+endMarker) {
		t.Fatalf("splice into empty = %q, %v", doc, err)
	}
	handWritten := strings.Replace(doc, "# sluice benchmarks\n", "# sluice benchmarks\n\nHand-written intro.\n", 1) + "\n## Analysis\n\nkept\n"
	doc2, err := splice(handWritten, "figures v2\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hand-written intro.", "figures v2\n" + endMarker, "## Analysis\n\nkept\n"} {
		if !strings.Contains(doc2, want) {
			t.Errorf("spliced doc lacks %q:\n%s", want, doc2)
		}
	}
	if strings.Contains(doc2, "figures v1") {
		t.Error("old figures kept")
	}
	if _, err := splice(endMarker+"\n"+beginMarker, "x"); err == nil {
		t.Error("splice accepted markers out of order")
	}

	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeDoc(path, "a\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeDoc(path, "b\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if strings.Count(string(got), beginMarker) != 1 || !strings.Contains(string(got), "\nb\n") || strings.Contains(string(got), "\na\n") {
		t.Errorf("writeDoc twice:\n%s", got)
	}
}

// Every template renders with no missing field, and the settings the
// issue names for each peer are there.
func TestTemplates(t *testing.T) {
	d := tmplData{Dir: "/d", Addr: "127.0.0.1:1", Host: "127.0.0.1", Port: "1", Upstream: "127.0.0.1:2", Cert: "/c.pem", Key: "/k.pem", PEM: "/ck.pem"}
	for name, wants := range map[string][]string{
		"nginx.conf.tmpl":  {"worker_processes 2;", "proxy_buffering off;", "keepalive 256;", "proxy_http_version 1.1;", "listen 127.0.0.1:1 ssl http2;", "server 127.0.0.1:2;"},
		"Caddyfile.tmpl":   {"flush_interval -1", "tls /c.pem /k.pem", "reverse_proxy 127.0.0.1:2", "https://127.0.0.1:1, https://localhost:1 {", "bind 127.0.0.1"},
		"haproxy.cfg.tmpl": {"mode http", "alpn h2,http/1.1", "crt /ck.pem", "server up 127.0.0.1:2"},
		"sluice.yaml.tmpl": {`https: "127.0.0.1:1"`, "upstream: http://127.0.0.1:2", "cert: /c.pem"},
	} {
		out, err := render(name, d)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(out, "<no value>") {
			t.Errorf("%s: a field is missing:\n%s", name, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
}

func TestProcessTree(t *testing.T) {
	pids := processTree(os.Getpid())
	if len(pids) == 0 || pids[0] != os.Getpid() {
		t.Fatalf("processTree(self) = %v", pids)
	}
	if rssOf(os.Getpid()) <= 0 {
		t.Error("own RSS not read")
	}
}

// The sluice template is a valid sluice config.
func TestSluiceTemplateParses(t *testing.T) {
	out, err := render("sluice.yaml.tmpl", tmplData{Dir: "/d", Addr: "127.0.0.1:1", Upstream: "127.0.0.1:2", Cert: "/c.pem", Key: "/k.pem"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("sluice.yaml", []byte(out))
	if err != nil {
		t.Fatalf("rendered config does not parse: %v\n%s", err, out)
	}
	if cfg.Log.Access || len(cfg.Routes) != 1 || cfg.Admin != "" {
		t.Errorf("config = %+v", cfg)
	}
}

// The round-by-round table pairs sluice with each peer inside a round: a
// round where one of them was not measured is left out, and a ratio
// within 2 % of 1 is neither better nor worse.
func TestRoundByRound(t *testing.T) {
	rounds := []map[string]figures{
		{peerSluice: {mSmallRPS: 30000, mChunkP50: 90}, peerNginx: {mSmallRPS: 40000, mChunkP50: 100}},
		{peerSluice: {mSmallRPS: 36000, mChunkP50: 120}, peerNginx: {mSmallRPS: 30000, mChunkP50: 100}},
		{peerSluice: {mSmallRPS: 20000}, peerNginx: {mSmallRPS: 20100}},
		{peerSluice: {mSmallRPS: 1}},
	}
	agg := aggregate(rounds)
	var b strings.Builder
	writeResults(&b, runInfo{Rounds: 4}, agg, rounds)
	out := b.String()
	for _, want := range []string{
		"### sluice ÷ peer, round by round",
		"| small requests, req/s | 0.75, 1.20, 1.00× (better in 1 of 3) |",
		"| per-chunk latency, p50 | 0.90, 1.20× (better in 1 of 2) |",
		"| memory per held stream | – |",
	} {
		mustContain(t, out, want)
	}
	b.Reset()
	writeResults(&b, runInfo{Rounds: 1}, agg, rounds[:1])
	if strings.Contains(b.String(), "round by round") {
		t.Error("a one-round run has a round-by-round table")
	}
}

// mustContain fails the test unless the report out contains want.
func mustContain(t *testing.T, out, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
}
