package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// Peers, in table order. direct is the upstream without a proxy.
const (
	peerSluice   = "sluice"
	peerNginx    = "nginx"
	peerCaddy    = "caddy"
	peerHAProxy  = "haproxy"
	peerHTTPUtil = "httputil"
	peerDirect   = "direct"
	// Experiments, run only when named with -peers: sluice limited to
	// one OS thread running Go code, and a bound for an own upstream
	// client.
	peerSluice1P = "sluice-1p"
	peerProto    = "h2proto"
	// x/net/http2 holding streams with no upstream: the floor under
	// any proxy built on it.
	peerFloor = "h2floor"
	// An earlier sluice binary (-sluice-base), run beside the current one
	// so that a change is measured against what it replaces in one run.
	peerSluiceBase = "sluice-base"
)

var experiments = []string{peerSluiceBase, peerSluice1P, peerProto, peerFloor}

var peerOrder = []string{peerSluice, peerHAProxy, peerNginx, peerCaddy, peerHTTPUtil, peerDirect}

// tableOrder adds the experiment at the end when it was run.
var tableOrder = append(append([]string{}, peerOrder...), experiments...)

var peerTitle = map[string]string{
	peerSluice:     "sluice",
	peerNginx:      "nginx",
	peerCaddy:      "Caddy",
	peerHAProxy:    "HAProxy",
	peerHTTPUtil:   "httputil.ReverseProxy",
	peerDirect:     "direct (no proxy)",
	peerProto:      "experiment: sluice's HTTP/2 server + own upstream client",
	peerSluice1P:   "experiment: sluice, GOMAXPROCS=1",
	peerSluiceBase: "experiment: sluice before (-sluice-base)",
	peerFloor:      "experiment: sluice's HTTP/2 server alone, no upstream",
}

// A target is one goal of the issue, checked on the aggregated figures.
type target struct {
	desc string
	// check returns sluice's figure, the line it is held to, whether it
	// is met, and false if either side was not measured.
	check func(agg map[string]figures) (have, line string, met, ok bool)
}

var targets = []target{
	{"added per-chunk latency p50 ≤ HAProxy's", func(a map[string]figures) (string, string, bool, bool) {
		return against(a, mAddedP50, peerHAProxy)
	}},
	{"memory per held stream ≤ 16 KiB", func(a map[string]figures) (string, string, bool, bool) {
		return absolute(a, mHeld, 16<<10, true)
	}},
	{"small requests req/s ≥ nginx's", func(a map[string]figures) (string, string, bool, bool) {
		return against(a, mSmallRPS, peerNginx)
	}},
	{"big stream MB/s ≥ HAProxy's", func(a map[string]figures) (string, string, bool, bool) {
		return against(a, mBigMBps, peerHAProxy)
	}},
	{"big stream peak RSS growth < 16 MiB", func(a map[string]figures) (string, string, bool, bool) {
		return absolute(a, mBigGrowth, 16<<20, false)
	}},
	{"cancel reaches the upstream in < 5 ms p50", func(a map[string]figures) (string, string, bool, bool) {
		return absolute(a, mCancelP50, 5000, false)
	}},
}

// against compares sluice's value of id with peer's.
func against(a map[string]figures, id, peer string) (string, string, bool, bool) {
	m := metricByID(id)
	s, p := a[peerSluice].get(id), a[peer].get(id)
	have, line := m.format(s), peerTitle[peer]+" "+m.format(p)
	if math.IsNaN(s) || math.IsNaN(p) {
		return have, line, false, false
	}
	if m.lower {
		return have, line, s <= p, true
	}
	return have, line, s >= p, true
}

// absolute compares sluice's value of id with a fixed limit; inclusive
// allows equality.
func absolute(a map[string]figures, id string, limit float64, inclusive bool) (string, string, bool, bool) {
	m := metricByID(id)
	s := a[peerSluice].get(id)
	op := "<"
	if inclusive {
		op = "≤"
	}
	have, line := m.format(s), op+" "+m.format(limit)
	if math.IsNaN(s) {
		return have, line, false, false
	}
	if inclusive {
		return have, line, s <= limit, true
	}
	return have, line, s < limit, true
}

// ratio renders sluice's value over a peer's with a word for which side
// is better, e.g. "0.62× (better)".
func ratio(m metric, s, p float64) string {
	if math.IsNaN(s) || math.IsNaN(p) || p == 0 {
		return "–"
	}
	r := s / p
	word := "same"
	switch {
	case math.Abs(r-1) < 0.02:
	case (r < 1) == m.lower:
		word = "better"
	default:
		word = "worse"
	}
	if m.lower && (s < 0 || p < 0) {
		// Added latency can be negative within noise: a ratio of such
		// figures means nothing.
		return fmt.Sprintf("%+.0f µs", s-p)
	}
	return fmt.Sprintf("%.2f× (%s)", r, word)
}

// runInfo describes the run for the report's header.
type runInfo struct {
	Date      string
	Machine   string
	Kernel    string
	Go        string
	Versions  map[string]string // peer -> version line
	Rounds    int
	Params    []string // one line per workload
	LoadStart string
	LoadEnd   string
	Others    string // other busy processes seen during the run
	Quick     bool
	Configs   map[string]string // peer -> rendered config
	Images    []string          // relative paths of the plots
}

// reportMetrics are the rows of the results table.
var reportMetrics = []string{
	mAddedP50, mAddedP99, mChunkP50, mChunkP99, mHeld, mHeldOpen,
	mSmallRPS, mSmallP99, mSmallFail, mSmallConns, mSmallCPU, mSmallAlloc, mBigMBps, mBigGrowth, mBigCPU,
	mBigH2MBps, mBigH2CPU, mUploadMBps, mUploadGrowth, mUploadCPU, mCancelP50, mCancelP99, mCancelMiss, mTTFBP50, mTTFBP99,
}

// writeResults renders the generated part of docs/benchmarks.md.
func writeResults(w io.Writer, info runInfo, agg map[string]figures, rounds []map[string]figures) {
	peers := presentPeers(agg)
	fmt.Fprintf(w, "Run of %s on %s (kernel %s, %s), %d round(s)", info.Date, info.Machine, info.Kernel, info.Go, info.Rounds)
	if info.Quick {
		fmt.Fprint(w, ", **quick mode (reduced sizes: not the issue's parameters)**")
	}
	fmt.Fprint(w, ". Each figure is the median over rounds.\n\n")
	fmt.Fprintf(w, "Load average at start: %s; at end: %s.", info.LoadStart, info.LoadEnd)
	if info.Others != "" {
		fmt.Fprintf(w, " Other processes were active during the run: %s.", info.Others)
	}
	fmt.Fprint(w, "\n\nVersions:\n\n")
	for _, p := range peers {
		if v := info.Versions[p]; v != "" {
			fmt.Fprintf(w, "- %s: %s\n", peerTitle[p], v)
		}
	}
	if v := info.Versions["h2load"]; v != "" {
		fmt.Fprintf(w, "- h2load: %s\n", v)
	}
	fmt.Fprint(w, "\nWorkloads:\n\n")
	for _, l := range info.Params {
		fmt.Fprintf(w, "- %s\n", l)
	}

	fmt.Fprint(w, "\n### Targets\n\n| target | sluice | line | met |\n|---|---|---|---|\n")
	for _, t := range targets {
		have, line, met, ok := t.check(agg)
		verdict := "no"
		switch {
		case !ok:
			verdict = "not measured"
		case met:
			verdict = "**yes**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.desc, have, line, verdict)
	}

	fmt.Fprint(w, "\n### Figures\n\n")
	var titles []string
	for _, p := range peers {
		titles = append(titles, peerTitle[p])
	}
	writeTableHead(w, titles)
	for _, id := range reportMetrics {
		m := metricByID(id)
		fmt.Fprintf(w, "| %s |", m.name)
		for _, p := range peers {
			fmt.Fprintf(w, " %s |", cell(agg[p], id))
		}
		fmt.Fprintln(w)
	}

	var others []string
	for _, p := range peers {
		if p != peerSluice && p != peerDirect && !slices.Contains(experiments, p) {
			others = append(others, p)
		}
	}
	if _, ok := agg[peerSluice]; ok && len(others) > 0 {
		fmt.Fprint(w, "\n### sluice ÷ peer\n\nEach cell is sluice's figure divided by the peer's; whether that is better depends on the metric.\n\n")
		writeTableHead(w, versus(others))
		for _, id := range reportMetrics {
			m := metricByID(id)
			if m.unit == unitCount {
				continue
			}
			fmt.Fprintf(w, "| %s |", m.name)
			for _, p := range others {
				r := ratio(m, agg[peerSluice].get(id), agg[p].get(id))
				if r == "–" && neverCancelled(agg[p], id) {
					r = "peer never passed the cancel on"
				}
				fmt.Fprintf(w, " %s |", r)
			}
			fmt.Fprintln(w)
		}
	}

	if _, ok := agg[peerSluice]; ok && len(others) > 0 && len(rounds) > 1 {
		writeRoundByRound(w, rounds, others)
	}

	if len(info.Images) > 0 {
		fmt.Fprint(w, "\n### Plots\n\n")
		for _, img := range info.Images {
			fmt.Fprintf(w, "![%s](%s)\n", strings.TrimSuffix(img[strings.LastIndex(img, "/")+1:], ".png"), img)
		}
	}

	if len(info.Configs) > 0 {
		fmt.Fprint(w, "\n### Peer configurations used in this run\n\nGenerated by the bench program from the templates in `bench/templates/`.\n")
		for _, p := range peers {
			if c, ok := info.Configs[p]; ok {
				fmt.Fprintf(w, "\n<details><summary>%s</summary>\n\n```\n%s\n```\n\n</details>\n", peerTitle[p], strings.TrimRight(c, "\n"))
			}
		}
	}
}

// writeTableHead writes the head of a table whose first column names the
// metric and whose others are titled cols.
func writeTableHead(w io.Writer, cols []string) {
	fmt.Fprint(w, "| metric |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c)
	}
	fmt.Fprint(w, "\n|---|")
	fmt.Fprint(w, strings.Repeat("---|", len(cols)))
	fmt.Fprintln(w)
}

// versus titles the columns of tables that compare sluice with peers.
func versus(peers []string) []string {
	var out []string
	for _, p := range peers {
		out = append(out, "vs "+peerTitle[p])
	}
	return out
}

// cell renders one figure of the results table. A cancel latency that
// was never measured because no cancel reached the upstream says so.
func cell(f figures, id string) string {
	if neverCancelled(f, id) {
		return "never (2 s)"
	}
	return metricByID(id).format(f.get(id))
}

func neverCancelled(f figures, id string) bool {
	return (id == mCancelP50 || id == mCancelP99) && math.IsNaN(f.get(id)) && f.get(mCancelMiss) > 0
}

func presentPeers(agg map[string]figures) []string {
	var out []string
	for _, p := range tableOrder {
		if _, ok := agg[p]; ok {
			out = append(out, p)
		}
	}
	return out
}

const (
	beginMarker = "<!-- bench:begin (generated by bench/run; edits between the markers are overwritten) -->"
	endMarker   = "<!-- bench:end -->"
)

// splice replaces the text between the markers in doc with generated,
// or appends a marked section when doc has none.
func splice(doc, generated string) (string, error) {
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	switch {
	case i < 0 && j < 0:
		var b bytes.Buffer
		b.WriteString(doc)
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			b.WriteString("\n")
		}
		if doc == "" {
			b.WriteString("# sluice benchmarks\n\n")
		}
		b.WriteString("## Results\n\n" + beginMarker + "\n" + generated + endMarker + "\n")
		return b.String(), nil
	case i < 0 || j < i:
		return "", errors.New("benchmark markers are out of order or one is missing")
	}
	return doc[:i+len(beginMarker)] + "\n" + generated + doc[j:], nil
}

// writeDoc updates path's generated section.
func writeDoc(path, generated string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc, err := splice(string(old), generated)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// roundMetrics are the figures behind the targets that vary from round to
// round, compared within each round in the round-by-round table.
var roundMetrics = []string{mChunkP50, mSmallRPS, mBigMBps, mBigH2MBps, mUploadMBps, mHeld, mCancelP50, mTTFBP50}

// writeRoundByRound compares sluice with each peer within every round.
// Peers run one after another in each round, so a machine that slows
// down for a while moves both figures of a round together, and the
// ratios of a round are steadier than the ratio of the medians.
func writeRoundByRound(w io.Writer, rounds []map[string]figures, others []string) {
	fmt.Fprint(w, "\n### sluice ÷ peer, round by round\n\nEach cell is sluice's figure divided by the peer's in each round (the per-chunk latency is the raw p50, which shares the direct figure of its round), and in how many rounds sluice was better.\n\n")
	writeTableHead(w, versus(others))
	for _, id := range roundMetrics {
		m := metricByID(id)
		fmt.Fprintf(w, "| %s |", m.name)
		for _, p := range others {
			fmt.Fprintf(w, " %s |", roundRatios(m, rounds, p))
		}
		fmt.Fprintln(w)
	}
}

// roundRatios renders sluice ÷ peer for each round where both were
// measured, and how many of those rounds sluice was better in (a ratio
// within 2 % of 1 counts as neither).
func roundRatios(m metric, rounds []map[string]figures, peer string) string {
	var rs []string
	better, n := 0, 0
	for _, round := range rounds {
		s, p := round[peerSluice].get(m.id), round[peer].get(m.id)
		if math.IsNaN(s) || math.IsNaN(p) || p == 0 {
			continue
		}
		r := s / p
		n++
		if math.Abs(r-1) >= 0.02 && (r < 1) == m.lower {
			better++
		}
		rs = append(rs, fmt.Sprintf("%.2f", r))
	}
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%s× (better in %d of %d)", strings.Join(rs, ", "), better, n)
}
