package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3} // unsorted on purpose
	for _, tc := range []struct {
		p, want float64
	}{
		{0, 1}, {50, 3}, {100, 5}, {25, 2}, {90, 4.6}, {99, 4.96}, {-1, 1}, {101, 5},
	} {
		if got := percentile(xs, tc.p); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("percentile(%v, %v) = %v, want %v", xs, tc.p, got, tc.want)
		}
	}
	if !slices.Equal(xs, []float64{5, 1, 4, 2, 3}) {
		t.Errorf("percentile sorted its input: %v", xs)
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("percentile(nil) = %v, want NaN", got)
	}
	if got := median([]float64{7}); got != 7 {
		t.Errorf("median of one = %v", got)
	}
	if got := median([]float64{1, 2, 3, 10}); got != 2.5 {
		t.Errorf("median of even count = %v, want 2.5", got)
	}
}

func TestMicros(t *testing.T) {
	got := micros([]time.Duration{1500 * time.Nanosecond, 2 * time.Millisecond})
	if !slices.Equal(got, []float64{1.5, 2000}) {
		t.Errorf("micros = %v", got)
	}
}

func TestPerStream(t *testing.T) {
	for _, tc := range []struct {
		before, with int64
		n            int
		want         float64
	}{
		{10 << 20, 10<<20 + 4000*8192, 4000, 8192},
		{10 << 20, 9 << 20, 100, 0}, // memory returned meanwhile
		{0, 1000, 0, math.NaN()},
	} {
		got := perStream(tc.before, tc.with, tc.n)
		if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("perStream(%d, %d, %d) = %v, want %v", tc.before, tc.with, tc.n, got, tc.want)
		}
	}
}

func TestThroughput(t *testing.T) {
	if got := throughputMBps(2<<30, 4*time.Second); math.Abs(got-536.870912) > 1e-6 {
		t.Errorf("2 GiB in 4 s = %v MB/s", got)
	}
	if got := throughputMBps(1, 0); !math.IsNaN(got) {
		t.Errorf("zero duration = %v, want NaN", got)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	rec := make([]byte, recordSize)
	ts := time.Date(2026, 11, 24, 1, 2, 3, 456789, time.UTC).UnixNano()
	encodeRecord(rec, ts, 299)
	if rec[recordSize-1] != '\n' || len(rec) != 64 {
		t.Fatalf("record %q", rec)
	}
	gotTS, seq, err := decodeRecord(rec)
	if err != nil || gotTS != ts || seq != 299 {
		t.Errorf("decodeRecord = %d, %d, %v; want %d, 299", gotTS, seq, err, ts)
	}
	if _, _, err := decodeRecord([]byte("short")); err == nil {
		t.Error("decodeRecord accepted a short record")
	}
}

const h2loadOut = `starting benchmark...
spawning thread #0: 32 total client(s). Timing-based test with 1s warm-up time and 10s main duration
Warm-up started for thread #0.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 10.00s, 38123.40 req/s, 5.36MB/s
requests: 381234 total, 381234 started, 381230 done, 381228 succeeded, 2 failed, 4 errored, 0 timeout
status codes: 381228 2xx, 0 3xx, 0 4xx, 2 5xx
traffic: 41.41MB (43422880) total, 1.37MB (1438720) headers (space savings 95.25%), 36.36MB (38122800) data
`

func TestParseH2load(t *testing.T) {
	rps, failed, err := parseH2load(h2loadOut)
	if err != nil || rps != 38123.40 || failed != 6 {
		t.Errorf("parseH2load = %v, %v, %v; want 38123.4, 6", rps, failed, err)
	}
	if _, _, err := parseH2load("connect: Connection refused"); err == nil {
		t.Error("parseH2load accepted output without a summary")
	}
	zero := strings.Replace(h2loadOut, "381228 succeeded", "0 succeeded", 1)
	if _, _, err := parseH2load(zero); err == nil {
		t.Error("parseH2load accepted a run where nothing succeeded")
	}
	empty := strings.Replace(h2loadOut, "(38122800) data", "(0) data", 1)
	if _, _, err := parseH2load(empty); err == nil {
		t.Error("parseH2load accepted empty responses")
	}
}

// h2load's summary of one big stream (-n 1), as it printed it.
const h2loadTransferOut = `finished in 2.31s, 0.43 req/s, 885.59MB/s
requests: 1 total, 1 started, 1 done, 1 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 2.00GB (2148663665) total, 44B (44) headers (space savings 0.00%), 2.00GB (2147483648) data
`

func TestParseH2loadTransfer(t *testing.T) {
	n, err := parseH2loadTransfer(h2loadTransferOut)
	if err != nil || n != 2<<30 {
		t.Errorf("parseH2loadTransfer = %d, %v; want %d", n, err, int64(2<<30))
	}
	failed := strings.Replace(h2loadTransferOut, "1 succeeded, 0 failed", "0 succeeded, 1 failed", 1)
	if _, err := parseH2loadTransfer(failed); err == nil {
		t.Error("parseH2loadTransfer accepted a failed request")
	}
	if _, err := parseH2loadTransfer("connect: Connection refused"); err == nil {
		t.Error("parseH2loadTransfer accepted output without a summary")
	}
}

func TestReadH2loadLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&b, "1795480000000000\t200\t%d\n", i*10)
	}
	b.WriteString("garbage\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	lat, err := readH2loadLog(path)
	if err != nil || len(lat) != 100 {
		t.Fatalf("readH2loadLog = %d values, %v", len(lat), err)
	}
	if p99 := percentile(lat, 99); math.Abs(p99-990.1) > 1e-9 {
		t.Errorf("p99 = %v, want 990.1", p99)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o644)
	if _, err := readH2loadLog(empty); err == nil {
		t.Error("readH2loadLog accepted an empty log")
	}
}

func TestSmallBodySize(t *testing.T) {
	if len(smallBody) != 100 {
		t.Errorf("small response is %d bytes, the issue says 100", len(smallBody))
	}
}

func TestRotate(t *testing.T) {
	peers := []string{"a", "b", "c"}
	for r, want := range []string{"abc", "bca", "cab", "abc"} {
		if got := strings.Join(rotate(peers, r), ""); got != want {
			t.Errorf("round %d: %s, want %s", r, got, want)
		}
	}
	if strings.Join(peers, "") != "abc" {
		t.Error("rotate changed its argument")
	}
}
