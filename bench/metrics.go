package main

import (
	"fmt"
	"math"
)

// A metric is one reported figure. Values are kept in base units:
// microseconds for times, bytes for memory, requests/s and MB/s.
type metric struct {
	id    string
	name  string
	unit  unit
	lower bool // lower is better
}

type unit int

const (
	unitMicros unit = iota
	unitBytes
	unitRPS
	unitMBps
	unitCount
)

// Metric ids. addedP50/addedP99 are derived: a proxy's chunk latency minus
// the direct one measured in the same run.
const (
	mChunkP50     = "chunk_p50"
	mChunkP99     = "chunk_p99"
	mAddedP50     = "chunk_added_p50"
	mAddedP99     = "chunk_added_p99"
	mHeld         = "held_per_stream"
	mHeldOpen     = "held_open"
	mSmallRPS     = "small_rps"
	mSmallP99     = "small_p99"
	mSmallFail    = "small_failed"
	mSmallConns   = "small_upstream_conns"
	mSmallCPU     = "small_cpu_per_request"
	mSmallAlloc   = "small_allocs_per_request"
	mBigMBps      = "big_mbps"
	mBigGrowth    = "big_peak_growth"
	mBigCPU       = "big_cpu_per_mb"
	mBigH2MBps    = "bigh2load_mbps"
	mBigH2CPU     = "bigh2load_cpu_per_mb"
	mUploadMBps   = "upload_mbps"
	mUploadGrowth = "upload_peak_growth"
	mUploadCPU    = "upload_cpu_per_mb"
	mCancelP50    = "cancel_p50"
	mCancelP99    = "cancel_p99"
	mCancelMiss   = "cancel_missed"
	mTTFBP50      = "ttfb_p50"
	mTTFBP99      = "ttfb_p99"
)

var metrics = []metric{
	{mAddedP50, "per-chunk latency added, p50", unitMicros, true},
	{mAddedP99, "per-chunk latency added, p99", unitMicros, true},
	{mChunkP50, "per-chunk latency, p50", unitMicros, true},
	{mChunkP99, "per-chunk latency, p99", unitMicros, true},
	{mHeld, "memory per held stream", unitBytes, true},
	{mHeldOpen, "held streams open", unitCount, false},
	{mSmallRPS, "small requests, req/s", unitRPS, false},
	{mSmallP99, "small requests, p99 latency", unitMicros, true},
	{mSmallFail, "small requests failed", unitCount, true},
	{mSmallConns, "small requests, upstream connections opened", unitCount, true},
	{mSmallCPU, "small requests, proxy CPU per request", unitMicros, true},
	{mSmallAlloc, "small requests, heap allocations per request (sluice only)", unitCount, true},
	{mBigMBps, "big stream, MB/s", unitMBps, false},
	{mBigGrowth, "big stream, peak RSS growth", unitBytes, true},
	{mBigCPU, "big stream, proxy CPU per MB", unitMicros, true},
	{mBigH2MBps, "big stream to h2load, MB/s", unitMBps, false},
	{mBigH2CPU, "big stream to h2load, proxy CPU per MB", unitMicros, true},
	{mUploadMBps, "upload, MB/s", unitMBps, false},
	{mUploadGrowth, "upload, peak RSS growth", unitBytes, true},
	{mUploadCPU, "upload, proxy CPU per MB", unitMicros, true},
	{mCancelP50, "cancel to upstream close, p50", unitMicros, true},
	{mCancelP99, "cancel to upstream close, p99", unitMicros, true},
	{mCancelMiss, "cancels never seen upstream", unitCount, true},
	{mTTFBP50, "time to first byte, p50", unitMicros, true},
	{mTTFBP99, "time to first byte, p99", unitMicros, true},
}

func metricByID(id string) metric {
	for _, m := range metrics {
		if m.id == id {
			return m
		}
	}
	panic("bench: unknown metric " + id)
}

// format renders v in the metric's unit for a table.
func (m metric) format(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	switch m.unit {
	case unitMicros:
		switch {
		case math.Abs(v) >= 10000:
			return fmt.Sprintf("%.1f ms", v/1000)
		case math.Abs(v) >= 1000:
			return fmt.Sprintf("%.2f ms", v/1000)
		}
		return fmt.Sprintf("%.0f µs", v)
	case unitBytes:
		switch {
		case math.Abs(v) >= 1<<20:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		case math.Abs(v) >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.0f B", v)
	case unitRPS:
		return fmt.Sprintf("%.0f", v)
	case unitMBps:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// figures are one peer's values in one round, by metric id.
type figures map[string]float64

// get returns the value or NaN when absent.
func (f figures) get(id string) float64 {
	if v, ok := f[id]; ok {
		return v
	}
	return math.NaN()
}

// aggregate takes, for every peer and metric, the median over rounds
// (ignoring rounds where it was not measured), then derives the added
// chunk latency against the direct figures.
func aggregate(rounds []map[string]figures) map[string]figures {
	samples := map[string]map[string][]float64{}
	for _, round := range rounds {
		for peer, f := range round {
			if samples[peer] == nil {
				samples[peer] = map[string][]float64{}
			}
			for id, v := range f {
				if !math.IsNaN(v) {
					samples[peer][id] = append(samples[peer][id], v)
				}
			}
		}
	}
	out := map[string]figures{}
	for peer, byID := range samples {
		out[peer] = figures{}
		for id, vs := range byID {
			out[peer][id] = median(vs)
		}
	}
	if d, ok := out[peerDirect]; ok {
		for peer, f := range out {
			if peer == peerDirect {
				continue
			}
			if v, ok := f[mChunkP50]; ok {
				f[mAddedP50] = v - d.get(mChunkP50)
			}
			if v, ok := f[mChunkP99]; ok {
				f[mAddedP99] = v - d.get(mChunkP99)
			}
		}
	}
	return out
}
