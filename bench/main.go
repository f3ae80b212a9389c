// Command bench measures sluice against nginx, Caddy, HAProxy and a plain
// httputil.ReverseProxy on loopback, all in front of the same upstream and
// behind the same certificate, and writes docs/benchmarks.md and plots.
// Run it through bench/run, which checks the peers are installed and
// builds sluice.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "serve-httputil":
			err = serveHTTPUtil(os.Args[2:])
		case "serve-sluice":
			err = serveSluice(os.Args[2:])
		case "serve-h2proto":
			err = serveProto(os.Args[2:])
		case "serve-h2floor":
			err = serveFloor(os.Args[2:])
		default:
			os.Exit(bench(os.Args[1:]))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(bench(nil))
}

func bench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	quick := fs.Bool("quick", false, "small sizes for a run under a minute (not the issue's parameters)")
	sluiceBin := fs.String("sluice", "", "the sluice binary (required)")
	baseBin := fs.String("sluice-base", "", "an earlier sluice binary, run as the "+peerSluiceBase+" experiment to compare a change in one run")
	out := fs.String("out", "docs", "directory for benchmarks.md and img/")
	peersFlag := fs.String("peers", strings.Join(peerOrder, ","), "peers to run, comma-separated; the experiments "+peerSluiceBase+" (needs -sluice-base), "+peerSluice1P+" (sluice with GOMAXPROCS=1) and "+peerProto+" (held streams only) and "+peerFloor+" (held streams and small requests) run only when named")
	only := fs.String("workloads", "", "workloads to run, comma-separated (default all): held,chunks,ttfb,cancel,big,bigh2load,upload,small")
	rounds := fs.Int("rounds", 0, "rounds, each on fresh processes; each figure is the median over rounds (default 3, 1 with -quick)")
	profile := fs.String("profile", "", "run sluice in-process with CPU and heap profiles written to this directory")
	maxFrame := fs.Uint("client-max-frame", 0, "SETTINGS_MAX_FRAME_SIZE of the bench's HTTP/2 clients (0: x/net's 1 MiB; 16384 is what browsers send)")
	memRate := fs.Int("profile-memrate", 4096, "with -profile, runtime.MemProfileRate for the heap profiles (the default 4096 samples finely but costs about a tenth of the CPU; 524288 is Go's own default, for CPU profiles)")
	trace := fs.Bool("trace", false, "with -profile, also write an execution trace of sluice (trace.out; large: use with the short workloads, chunks and ttfb)")
	noDoc := fs.Bool("no-doc", false, "print the results instead of writing docs")
	held := fs.Int("held", 0, "held streams (100 per connection), overriding the mode's count")
	heldEvents := fs.Int("held-events", 0, "events each held stream gets after its comment, 300 ms apart, before the memory is measured (0: none, the issue's workload); shows what a stream's traffic leaves behind once it is quiet")
	big := fs.Int64("big", 0, "big stream size in MiB, overriding the mode's size")
	bigWrite := fs.Int("big-write", 0, "upstream write size of the big stream in KiB (default 64)")
	upload := fs.Int64("upload", 0, "upload size in MiB, overriding the mode's size")
	fs.Parse(args)
	if *sluiceBin == "" {
		fmt.Fprintln(os.Stderr, "bench: -sluice is required (bench/run builds it)")
		return 2
	}
	prm := fullParams
	if *quick {
		prm = quickParams
	}
	if *rounds <= 0 {
		*rounds = 3
		if *quick {
			*rounds = 1
		}
	}
	if *held > 0 {
		prm.heldStreams, prm.heldConns = *held, (*held+99)/100
	}
	if *heldEvents > 0 {
		prm.heldEvents = *heldEvents
	}
	if *big > 0 {
		prm.bigBytes = *big << 20
	}
	if *upload > 0 {
		prm.uploadBytes = *upload << 20
	}
	if *bigWrite > 0 {
		prm.bigWrite = *bigWrite << 10
	}
	peers := strings.Split(*peersFlag, ",")
	if slices.Contains(peers, peerSluiceBase) != (*baseBin != "") {
		fmt.Fprintln(os.Stderr, "bench: the "+peerSluiceBase+" peer and -sluice-base go together")
		return 2
	}
	for _, p := range peers {
		if !slices.Contains(peerOrder, p) && !slices.Contains(experiments, p) {
			fmt.Fprintf(os.Stderr, "bench: unknown peer %q (have %s)\n", p, strings.Join(peerOrder, ", "))
			return 2
		}
	}
	var wls []workload
	for _, w := range workloads {
		if *only == "" || slices.Contains(strings.Split(*only, ","), w.name) {
			wls = append(wls, w)
		}
	}

	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Interrupted (Ctrl-C, timeout): stop the peers and clean up first.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "bench: %v: stopping the peers\n", s)
		running.stopAll()
		os.RemoveAll(dir)
		os.Exit(130)
	}()
	cert, err := writeCert(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	up, err := startUpstream()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer up.close()
	self, _ := os.Executable()
	e := &env{dir: dir, upstream: up, cert: cert, sluice: *sluiceBin, base: *baseBin, self: self, maxFrame: uint32(*maxFrame)}
	if *profile != "" {
		e.profile, _ = filepath.Abs(*profile)
		e.trace = *trace
		e.memRate = *memRate
	}

	info := runInfo{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Machine:   machine(),
		Kernel:    kernel(),
		Go:        goVersion(),
		Versions:  map[string]string{},
		Rounds:    *rounds,
		Params:    prm.describe(),
		LoadStart: loadavg(),
		Quick:     *quick,
		Configs:   map[string]string{},
	}
	for _, p := range peers {
		info.Versions[p] = versionOf(e, p)
	}
	info.Versions["h2load"] = h2loadVersion()
	busy := newBusyWatch()

	var results []map[string]figures
	failed := false
	for r := 0; r < *rounds; r++ {
		round := map[string]figures{}
		procs := map[string]*proc{}
		for _, name := range peers {
			p, err := startPeer(e, name)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				failed = true
				continue
			}
			procs[name] = p
			round[name] = figures{}
			if p.config != "" {
				info.Configs[name] = strings.ReplaceAll(p.config, dir, "$DIR")
			}
		}
		for _, w := range wls {
			for _, name := range rotate(peers, r) {
				p := procs[name]
				if p == nil || (w.proxiesOnly && !p.tls) || (name == peerProto && w.name != "held") || (name == peerFloor && w.name != "held" && w.name != "small") {
					continue
				}
				busy.sample()
				settle()
				start := time.Now()
				f, err := w.run(e, p, prm)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: round %d %s %s: %v\n", r+1, w.name, name, err)
					failed = true
					continue
				}
				fmt.Fprintf(os.Stderr, "round %d %-7s %-8s %5.1fs %s\n", r+1, w.name, name, time.Since(start).Seconds(), summary(f))
				for k, v := range f {
					round[name][k] = v
				}
			}
		}
		for _, p := range procs {
			p.stop()
		}
		results = append(results, round)
	}
	info.LoadEnd = loadavg()
	info.Others = busy.report()
	agg := aggregate(results)

	var b strings.Builder
	if !*noDoc {
		imgs, err := writePlots(filepath.Join(*out, "img"), agg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: plots:", err)
			failed = true
		}
		for _, img := range imgs {
			info.Images = append(info.Images, "img/"+filepath.Base(img))
		}
	}
	writeResults(&b, info, agg, results)
	if *noDoc {
		fmt.Print(b.String())
	} else if err := writeDoc(filepath.Join(*out, "benchmarks.md"), b.String()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	} else {
		fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(*out, "benchmarks.md"))
	}
	if failed {
		return 1
	}
	return 0
}

// rotate starts round r's order of peers at its r-th peer. Whichever
// peer runs first after a workload starts was measured slower in A/B runs
// of one binary against itself (by 30–40 µs of time to first byte), so
// over the rounds each peer takes its turn there.
func rotate(peers []string, r int) []string {
	k := r % len(peers)
	return append(append([]string{}, peers[k:]...), peers[:k]...)
}

// settle collects the bench's own garbage from the previous measurement
// (the held streams leave thousands of connections' worth) and pauses, so
// that it does not land on the next peer's figures.
func settle() {
	runtime.GC()
	time.Sleep(500 * time.Millisecond)
}

func summary(f figures) string {
	var parts []string
	for _, id := range reportMetrics {
		if v, ok := f[id]; ok {
			parts = append(parts, id+"="+metricByID(id).format(v))
		}
	}
	return strings.Join(parts, " ")
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s, %d cores%s", model, runtime.NumCPU(), mem)
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func h2loadVersion() string {
	out, err := exec.Command("h2load", "--version").CombinedOutput()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	if d, err := exec.Command("dpkg-query", "-W", "-f=${Version}", debianPackage["h2load"]).Output(); err == nil {
		v += " (Debian package nghttp2-client " + string(d) + ")"
	}
	return v
}
