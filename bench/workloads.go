package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// params are the workload sizes; fullParams are the issue's.
type params struct {
	chunkStreams int
	chunkCount   int
	chunkGap     time.Duration

	heldStreams int
	heldConns   int
	heldEvents  int // events per stream after its comment (heldEventGap apart)
	settle      time.Duration

	smallConns    int
	smallStreams  int
	smallDuration time.Duration
	smallWarmUp   time.Duration

	bigBytes int64
	bigWrite int // upstream write size

	uploadBytes int64

	cancelReps int
	ttfbReps   int
}

var fullParams = params{
	chunkStreams: 4, chunkCount: 300, chunkGap: 5 * time.Millisecond,
	heldStreams: 4000, heldConns: 40, settle: 3 * time.Second,
	smallConns: 32, smallStreams: 8, smallDuration: 10 * time.Second, smallWarmUp: time.Second,
	bigBytes: 2 << 30, bigWrite: 64 << 10,
	uploadBytes: 1 << 30,
	cancelReps:  50, ttfbReps: 200,
}

var quickParams = params{
	chunkStreams: 4, chunkCount: 60, chunkGap: 5 * time.Millisecond,
	heldStreams: 200, heldConns: 4, settle: time.Second,
	smallConns: 32, smallStreams: 8, smallDuration: 3 * time.Second, smallWarmUp: 500 * time.Millisecond,
	bigBytes: 64 << 20, bigWrite: 64 << 10,
	uploadBytes: 64 << 20,
	cancelReps:  10, ttfbReps: 50,
}

// bigPath is the upstream's path for the big stream.
func (p params) bigPath() string {
	return fmt.Sprintf("/big?bytes=%d&write=%d", p.bigBytes, p.bigWrite)
}

func (p params) describe() []string {
	return []string{
		fmt.Sprintf("per-chunk latency: %d concurrent streams on one HTTP/2 connection x %d chunks of %d bytes, %v apart; delay from just before the upstream's write to the client's read; direct = the same over HTTP/1.1 to the upstream", p.chunkStreams, p.chunkCount, recordSize, p.chunkGap),
		fmt.Sprintf("held streams: %d concurrent SSE streams over %d HTTP/2 connections, silent after %s; (RSS of all the proxy's processes with the streams open, after %v, minus RSS before the connections opened) / streams", p.heldStreams, p.heldConns, heldTraffic(p.heldEvents), p.settle),
		fmt.Sprintf("small requests: h2load -c %d -m %d -t 1, %v measured after %v warm-up, 100-byte responses with Content-Length; p99 from h2load's per-request log; upstream connections = connections the upstream accepted during the run (reuse); proxy CPU = user and system time of all the proxy's processes (/proc) over the measured period / requests; heap allocations (sluice only) = the rise of go_memstats_mallocs_total on its admin /metrics over the same period / requests", p.smallConns, p.smallStreams, p.smallDuration, p.smallWarmUp),
		fmt.Sprintf("big stream: one %d MiB chunked response (%d KiB upstream writes) to one HTTP/2 client reading up to 256 KiB at a time; MB/s = 10^6 bytes/s; peak RSS growth sampled every 20 ms; proxy CPU = user and system time of all the proxy's processes during the transfer / 10^6 bytes", p.bigBytes>>20, p.bigWrite>>10),
		fmt.Sprintf("big stream to h2load: the big stream's response read by h2load -n 1 -c 1 -m 1 -w 30 -W 30 (1 GiB windows given back in large steps, 16 KiB frames, as browsers have them); MB/s and proxy CPU per MB as for the big stream"),
		fmt.Sprintf("upload: one %d MiB request body (Content-Length, as a file upload sends it) from one HTTP/2 client, read to its end by the upstream, which answers with the count of bytes it got; MB/s = 10^6 bytes/s from the request's start to the answer; peak RSS growth and proxy CPU as for the big stream", p.uploadBytes>>20),
		fmt.Sprintf("cancel: %d times, read the first event, cancel the request (HTTP/2 RST_STREAM), time until the upstream's request context ends (its connection closed); a cancel not seen within 2 s counts as never seen, and after 5 of those with none seen the peer is not tried further", p.cancelReps),
		fmt.Sprintf("time to first byte: %d sequential requests on a warm connection for a streamed (chunked) response the upstream sends at once", p.ttfbReps),
	}
}

// A workload measures one peer and returns its figures.
type workload struct {
	name string
	run  func(e *env, p *proc, prm params) (figures, error)
	// proxiesOnly workloads have no direct baseline.
	proxiesOnly bool
}

var workloads = []workload{
	// Held streams first, on fresh processes, so earlier workloads'
	// freed-but-kept heap does not hide the streams' cost.
	{"held", runHeld, true},
	{"chunks", runChunks, false},
	{"ttfb", runTTFB, false},
	{"cancel", runCancel, true},
	{"big", runBig, false},
	{"bigh2load", runBigH2load, false},
	{"upload", runUpload, false},
	{"small", runSmall, false},
}

func request(ctx context.Context, c *client, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("%s: status %s", path, res.Status)
	}
	return res, nil
}

func runChunks(e *env, p *proc, prm params) (figures, error) {
	c, err := p.client(e)
	if err != nil {
		return nil, err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(prm.chunkCount)*prm.chunkGap+30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var delays []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, prm.chunkStreams)
	for i := 0; i < prm.chunkStreams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := readChunks(ctx, c, prm)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			delays = append(delays, d...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	us := micros(delays)
	return figures{mChunkP50: percentile(us, 50), mChunkP99: percentile(us, 99)}, nil
}

func readChunks(ctx context.Context, c *client, prm params) ([]time.Duration, error) {
	res, err := request(ctx, c, fmt.Sprintf("/chunks?n=%d&gap_us=%d", prm.chunkCount, prm.chunkGap.Microseconds()))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	delays := make([]time.Duration, 0, prm.chunkCount)
	buf := make([]byte, 16<<10)
	var pending []byte
	var next int64
	for {
		n, rerr := res.Body.Read(buf)
		now := time.Now().UnixNano()
		pending = append(pending, buf[:n]...)
		for len(pending) >= recordSize {
			ts, seq, err := decodeRecord(pending[:recordSize])
			if err != nil {
				return nil, err
			}
			if seq != next {
				return nil, fmt.Errorf("chunk %d arrived, expected %d", seq, next)
			}
			next++
			delays = append(delays, time.Duration(now-ts))
			pending = pending[recordSize:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if next != int64(prm.chunkCount) || len(pending) != 0 {
		return nil, fmt.Errorf("got %d chunks and %d stray bytes, want %d chunks", next, len(pending), prm.chunkCount)
	}
	return delays, nil
}

// sampleRSS is the median of a few RSS readings 100 ms apart.
func sampleRSS(p *proc) int64 {
	var xs []float64
	for i := 0; i < 5; i++ {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		xs = append(xs, float64(p.rss()))
	}
	return int64(median(xs))
}

func runHeld(e *env, p *proc, prm params) (figures, error) {
	p.refreshPids()
	before := sampleRSS(p)
	ctx, cancel := context.WithCancel(context.Background())
	var clients []*client
	var wg sync.WaitGroup
	defer func() {
		// Reset every stream, give the proxy a moment to close its
		// upstream exchanges, then close the connections, so the next
		// peer starts clean; stragglers are ended from the upstream.
		cancel()
		waitFor(3*time.Second, func() bool { return e.upstream.sseOpen.Load() == 0 })
		for _, c := range clients {
			c.close()
		}
		wg.Wait()
		if !waitFor(5*time.Second, func() bool { return e.upstream.sseOpen.Load() == 0 }) {
			fmt.Fprintf(os.Stderr, "bench: %s: %d held streams still open upstream 8 s after their clients reset them; ending them from the upstream\n", p.name, e.upstream.sseOpen.Load())
			e.upstream.releaseHeld()
			waitFor(5*time.Second, func() bool { return e.upstream.sseOpen.Load() == 0 })
			e.upstream.resetHeld()
		}
	}()
	for i := 0; i < prm.heldConns; i++ {
		c, err := dialH2(e, p.addr)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	var opened atomic.Int64
	var firstErr atomic.Pointer[error]
	for i := 0; i < prm.heldStreams; i++ {
		c := clients[i%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := request(ctx, c, fmt.Sprintf("/sse?events=%d", prm.heldEvents))
			if err == nil {
				first := make([]byte, heldBytes(prm.heldEvents))
				_, err = io.ReadFull(res.Body, first)
				if err == nil {
					opened.Add(1)
					io.Copy(io.Discard, res.Body) // until cancelled
				}
				res.Body.Close()
			}
			if err != nil && ctx.Err() == nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		}()
	}
	n := int64(prm.heldStreams)
	// The h2floor experiment holds its streams without an upstream.
	upstreamHeld := p.name != peerFloor
	ok := waitFor(60*time.Second, func() bool {
		return (opened.Load() >= n && (!upstreamHeld || e.upstream.sseOpen.Load() >= n)) || firstErr.Load() != nil
	})
	if perr := firstErr.Load(); perr != nil {
		return nil, fmt.Errorf("opening held streams (%d open): %w", opened.Load(), *perr)
	}
	if !ok {
		return nil, fmt.Errorf("only %d of %d held streams opened", opened.Load(), n)
	}
	time.Sleep(prm.settle)
	with := sampleRSS(p)
	if e.profile != "" && p.name == peerSluice {
		p.cmd.Process.Signal(sigHeapProfile)
		time.Sleep(500 * time.Millisecond)
	}
	return figures{mHeld: perStream(before, with, int(opened.Load())), mHeldOpen: float64(opened.Load())}, nil
}

func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func runTTFB(e *env, p *proc, prm params) (figures, error) {
	c, err := p.client(e)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := c.get("/ttfb"); err != nil { // warm the connection
		return nil, err
	}
	var ds []time.Duration
	buf := make([]byte, 1024)
	for i := 0; i < prm.ttfbReps; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		res, err := request(ctx, c, "/ttfb")
		if err != nil {
			cancel()
			return nil, err
		}
		n, err := res.Body.Read(buf)
		for n == 0 && err == nil {
			n, err = res.Body.Read(buf)
		}
		ds = append(ds, time.Since(start))
		rest, rerr := io.ReadAll(res.Body)
		if body := string(buf[:n]) + string(rest); body != ttfbBody || rerr != nil {
			res.Body.Close()
			cancel()
			return nil, fmt.Errorf("ttfb: body %q (%v), want %q", body, rerr, ttfbBody)
		}
		res.Body.Close()
		cancel()
	}
	us := micros(ds)
	return figures{mTTFBP50: percentile(us, 50), mTTFBP99: percentile(us, 99)}, nil
}

func runCancel(e *env, p *proc, prm params) (figures, error) {
	c, err := p.client(e)
	if err != nil {
		return nil, err
	}
	defer c.close()
	var ds []time.Duration
	missed := 0
	first := make([]byte, len(cancelBody))
	for i := 0; i < prm.cancelReps; i++ {
		id := p.name + "-" + strconv.Itoa(i)
		seen := e.upstream.expectCancel(id)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := request(ctx, c, "/cancel?id="+id)
		if err == nil {
			_, err = io.ReadFull(res.Body, first)
			if err == nil && string(first) != cancelBody {
				err = fmt.Errorf("first event %q, want %q", first, cancelBody)
			}
		}
		if err != nil {
			cancel()
			e.upstream.forgetCancel(id)
			return nil, fmt.Errorf("cancel: %w", err)
		}
		t0 := time.Now()
		cancel()
		select {
		case t := <-seen:
			ds = append(ds, t.Sub(t0))
		case <-time.After(2 * time.Second):
			missed++
		}
		res.Body.Close()
		e.upstream.forgetCancel(id)
		if missed >= 5 && len(ds) == 0 {
			// The peer does not pass cancels on; more tries only cost time.
			break
		}
	}
	us := micros(ds)
	return figures{mCancelP50: percentile(us, 50), mCancelP99: percentile(us, 99), mCancelMiss: float64(missed)}, nil
}

func runBig(e *env, p *proc, prm params) (figures, error) {
	c, err := warmClient(e, p)
	if err != nil {
		return nil, err
	}
	defer c.close()
	w := watchTransfer(p)
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout(prm.bigBytes))
	defer cancel()
	start := time.Now()
	res, err := request(ctx, c, prm.bigPath())
	var n int64
	if err == nil {
		n, err = discardIn(res.Body, 256<<10)
		res.Body.Close()
	}
	elapsed := time.Since(start)
	growth, cpu := w.stop()
	if err != nil {
		return nil, fmt.Errorf("big stream after %d bytes: %w", n, err)
	}
	if n != prm.bigBytes {
		return nil, fmt.Errorf("big stream: got %d bytes, want %d", n, prm.bigBytes)
	}
	f := figures{mBigMBps: throughputMBps(n, elapsed)}
	if p.cmd != nil {
		f[mBigGrowth] = float64(growth)
		f[mBigCPU] = perMB(cpu, n)
	}
	return f, nil
}

// discardIn reads r to its end in reads of up to size bytes and returns
// how many it read. io.CopyBuffer(io.Discard, r, buf) would not do this:
// io.Discard is an io.ReaderFrom, so CopyBuffer hands r to it and buf is
// never used; io.Discard reads in 8 KiB. The read size matters here
// because x/net's Transport gives window back after every read of 4 KiB
// or more, so it sets how often the client sends WINDOW_UPDATEs.
func discardIn(r io.Reader, size int) (int64, error) {
	buf := make([]byte, size)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// runBigH2load is the big stream with h2load as its client: one stream,
// 1 GiB windows and 16 KiB frames. nghttp2 gives a window back once half
// of it is used, as browsers do in large steps, where x/net's Transport
// (runBig's client) gives it back after every read: a WINDOW_UPDATE pair
// about every 200 KiB of the stream with runBig's 256 KiB reads, each of
// which can wake a Go proxy's idle thread (docs/benchmarks.md, What is
// left, item 3). This workload shows the stream without them.
func runBigH2load(e *env, p *proc, prm params) (figures, error) {
	args := append([]string{"-n", "1", "-c", "1", "-m", "1", "-w", "30", "-W", "30"}, h2loadTarget(p, prm.bigPath())...)
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout(prm.bigBytes))
	defer cancel()
	w := watchTransfer(p)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "h2load", args...).CombinedOutput()
	elapsed := time.Since(start)
	_, cpu := w.stop()
	if err != nil {
		return nil, fmt.Errorf("h2load: %w\n%s", err, tail(out, 2000))
	}
	n, err := parseH2loadTransfer(string(out))
	if err != nil {
		return nil, err
	}
	if n != prm.bigBytes {
		return nil, fmt.Errorf("big stream to h2load: got %d bytes, want %d", n, prm.bigBytes)
	}
	f := figures{mBigH2MBps: throughputMBps(n, elapsed)}
	if p.cmd != nil {
		f[mBigH2CPU] = perMB(cpu, n)
	}
	return f, nil
}

// parseH2loadTransfer returns the body bytes of h2load's one request,
// which must have succeeded.
func parseH2loadTransfer(out string) (int64, error) {
	r := reRequests.FindStringSubmatch(out)
	d := reData.FindStringSubmatch(out)
	if r == nil || d == nil {
		return 0, fmt.Errorf("unexpected h2load output:\n%s", tail([]byte(out), 2000))
	}
	if r[4] != "1" {
		return 0, fmt.Errorf("h2load: the request did not succeed:\n%s", tail([]byte(out), 2000))
	}
	return strconv.ParseInt(d[1], 10, 64)
}

// runUpload sends one large request body through the peer, as a file
// upload does, and times it until the upstream's answer, which only comes
// once the upstream has read the whole body: a proxy that held the body
// back (buffered it) would show as peak RSS growth or a late answer.
func runUpload(e *env, p *proc, prm params) (figures, error) {
	c, err := warmClient(e, p)
	if err != nil {
		return nil, err
	}
	defer c.close()
	w := watchTransfer(p)
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout(prm.uploadBytes))
	defer cancel()
	start := time.Now()
	got, err := c.upload(ctx, prm.uploadBytes)
	elapsed := time.Since(start)
	growth, cpu := w.stop()
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	if got != prm.uploadBytes {
		return nil, fmt.Errorf("upload: the upstream got %d bytes, want %d", got, prm.uploadBytes)
	}
	f := figures{mUploadMBps: throughputMBps(got, elapsed)}
	if p.cmd != nil {
		f[mUploadGrowth] = float64(growth)
		f[mUploadCPU] = perMB(cpu, got)
	}
	return f, nil
}

// perMB is the CPU time a transfer of n bytes took per 10^6 bytes, in µs.
func perMB(cpu time.Duration, n int64) float64 {
	return float64(cpu.Microseconds()) / (float64(n) / 1e6)
}

// warmClient opens a client to p and makes one request on it, so that a
// transfer's figures leave out the connection's setup.
func warmClient(e *env, p *proc) (*client, error) {
	c, err := p.client(e)
	if err != nil {
		return nil, err
	}
	if err := c.get("/small"); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// transferTimeout bounds a transfer of n bytes: 20 MiB/s at the least,
// plus setting-up time.
func transferTimeout(n int64) time.Duration {
	return time.Duration(n/(20<<20))*time.Second + 30*time.Second
}

// A transferWatch follows a peer's memory and CPU during one transfer.
type transferWatch struct {
	p         *proc
	before    int64
	cpuBefore time.Duration
	peak      atomic.Int64
	done      chan struct{}
	sampled   chan struct{}
}

// watchTransfer starts sampling p's RSS every 20 ms.
func watchTransfer(p *proc) *transferWatch {
	p.refreshPids()
	w := &transferWatch{p: p, before: sampleRSS(p), cpuBefore: p.cpu(), done: make(chan struct{}), sampled: make(chan struct{})}
	w.peak.Store(w.before)
	go func() {
		defer close(w.sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *transferWatch) sample() {
	if r := w.p.rss(); r > w.peak.Load() {
		w.peak.Store(r)
	}
}

// stop ends the sampling and returns the peak RSS growth over the RSS
// before the transfer, and the CPU the peer's processes used meanwhile.
func (w *transferWatch) stop() (growth int64, cpu time.Duration) {
	close(w.done)
	<-w.sampled
	w.sample()
	return w.peak.Load() - w.before, w.p.cpu() - w.cpuBefore
}

var (
	reFinished = regexp.MustCompile(`finished in ([0-9.]+)s, ([0-9.]+) req/s`)
	reRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	reData     = regexp.MustCompile(`\((\d+)\) data`)
)

func runSmall(e *env, p *proc, prm params) (figures, error) {
	logPath := filepath.Join(e.dir, "h2load-"+p.name+".log")
	args := []string{
		"-c", strconv.Itoa(prm.smallConns), "-m", strconv.Itoa(prm.smallStreams), "-t", "1",
		"-D", strconv.Itoa(int(prm.smallDuration.Seconds())),
		"--warm-up-time", fmt.Sprintf("%dms", prm.smallWarmUp.Milliseconds()),
		"--log-file", logPath,
	}
	if !p.tls {
		// HTTP/1.1 has no streams: one request at a time per connection.
		args[3] = "1"
	}
	args = append(args, h2loadTarget(p, "/small")...)
	ctx, cancel := context.WithTimeout(context.Background(), prm.smallDuration+prm.smallWarmUp+30*time.Second)
	defer cancel()
	conns := e.upstream.accepted.Load()
	// The proxy's CPU is counted from the end of h2load's warm-up, when
	// its measured period starts, to its exit.
	p.refreshPids()
	type counts struct {
		cpu         time.Duration
		mallocs     float64
		mallocsRead bool
	}
	start := make(chan counts, 1)
	read := func() counts {
		c := counts{cpu: p.cpu()}
		c.mallocs, c.mallocsRead = p.mallocs()
		return c
	}
	warm := time.AfterFunc(prm.smallWarmUp, func() { start <- read() })
	out, err := exec.CommandContext(ctx, "h2load", args...).CombinedOutput()
	end := read()
	conns = e.upstream.accepted.Load() - conns
	if err != nil {
		return nil, fmt.Errorf("h2load: %w\n%s", err, tail(out, 2000))
	}
	rps, failed, err := parseH2load(string(out))
	if err != nil {
		return nil, err
	}
	lat, err := readH2loadLog(logPath)
	if err != nil {
		return nil, err
	}
	os.Remove(logPath)
	f := figures{mSmallRPS: rps, mSmallP99: percentile(lat, 99), mSmallFail: failed, mSmallConns: float64(conns)}
	if warm.Stop() {
		return nil, fmt.Errorf("h2load ended within its warm-up")
	}
	measured := rps * prm.smallDuration.Seconds()
	st := <-start
	if p.cmd != nil {
		f[mSmallCPU] = float64((end.cpu - st.cpu).Microseconds()) / measured
	}
	if st.mallocsRead && end.mallocsRead {
		// Scraping /metrics allocates too, some thousands of times:
		// noise against the allocations of 300,000 requests and more.
		f[mSmallAlloc] = (end.mallocs - st.mallocs) / measured
	}
	return f, nil
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// h2loadTarget returns the arguments that aim h2load at path on p: over
// TLS, with localhost's name and p's address, or over HTTP/1.1 to a peer
// without TLS (the direct baseline).
func h2loadTarget(p *proc, path string) []string {
	if p.tls {
		return []string{"https://localhost:" + portOf(p.addr) + path, "--connect-to", p.addr}
	}
	return []string{"--h1", "http://" + p.addr + path}
}

// parseH2load takes req/s and the failed+errored count from h2load's
// summary.
func parseH2load(out string) (rps, failed float64, err error) {
	m := reFinished.FindStringSubmatch(out)
	r := reRequests.FindStringSubmatch(out)
	if m == nil || r == nil {
		return 0, 0, fmt.Errorf("unexpected h2load output:\n%s", tail([]byte(out), 2000))
	}
	rps, _ = strconv.ParseFloat(m[2], 64)
	f, _ := strconv.ParseFloat(r[5], 64)
	e, _ := strconv.ParseFloat(r[6], 64)
	ok, _ := strconv.ParseFloat(r[4], 64)
	if ok == 0 {
		return 0, 0, errors.New("h2load: no request succeeded")
	}
	// Every answer must be the upstream's 100-byte body: a proxy that
	// answers on its own (an empty 200 for an unknown host) is not
	// measured as fast.
	d := reData.FindStringSubmatch(out)
	if d == nil {
		return 0, 0, fmt.Errorf("h2load output without a data count:\n%s", tail([]byte(out), 2000))
	}
	if data, _ := strconv.ParseFloat(d[1], 64); data < ok*float64(len(smallBody)) {
		return 0, 0, fmt.Errorf("h2load: %.0f bytes of body for %.0f succeeded requests; want %d each", data, ok, len(smallBody))
	}
	return rps, f + e, nil
}

// readH2loadLog returns the per-request latencies in microseconds from
// h2load's --log-file (start µs, status, duration µs per line).
func readH2loadLog(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []float64
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(s.Text(), "\t")
		if len(fields) < 3 {
			continue
		}
		d, err := strconv.ParseFloat(fields[2], 64)
		if err != nil || math.IsNaN(d) {
			continue
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no requests logged", path)
	}
	return out, s.Err()
}
