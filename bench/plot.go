package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotted are the figures drawn, one bar chart each.
var plotted = []struct {
	id    string
	file  string
	scale float64 // divides the base unit
	axis  string
}{
	{mAddedP50, "chunk-latency-added-p50.png", 1, "µs added per chunk (p50)"},
	{mAddedP99, "chunk-latency-added-p99.png", 1, "µs added per chunk (p99)"},
	{mHeld, "held-stream-memory.png", 1 << 10, "KiB RSS per held stream"},
	{mSmallRPS, "small-requests-rps.png", 1, "requests/s"},
	{mSmallP99, "small-requests-p99.png", 1000, "ms p99 latency"},
	{mBigMBps, "big-stream-mbps.png", 1, "MB/s"},
	{mBigGrowth, "big-stream-rss-growth.png", 1 << 20, "MiB peak RSS growth"},
	{mCancelP50, "cancel-p50.png", 1000, "ms from reset to upstream close (p50)"},
	{mTTFBP50, "ttfb-p50.png", 1, "µs to first byte (p50)"},
}

// writePlots draws one bar chart per plotted figure into dir and returns
// the files written.
func writePlots(dir string, agg map[string]figures) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, pl := range plotted {
		var names []string
		var vals plotter.Values
		for _, peer := range presentPeers(agg) {
			v := agg[peer].get(pl.id)
			if math.IsNaN(v) {
				continue
			}
			names = append(names, peerTitle[peer])
			vals = append(vals, v/pl.scale)
		}
		if len(vals) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = metricByID(pl.id).name
		p.Y.Label.Text = pl.axis
		bars, err := plotter.NewBarChart(vals, vg.Points(28))
		if err != nil {
			return files, err
		}
		bars.LineStyle.Width = 0
		p.Add(bars)
		p.NominalX(names...)
		p.Add(plotter.NewGrid())
		path := filepath.Join(dir, pl.file)
		if err := p.Save(vg.Length(110+70*len(vals)), 3*vg.Inch, path); err != nil {
			return files, fmt.Errorf("saving %s: %w", path, err)
		}
		files = append(files, path)
	}
	return files, nil
}
