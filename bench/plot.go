package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
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
	{mBigH2MBps, "big-stream-h2load-mbps.png", 1, "MB/s"},
	{mUploadMBps, "upload-mbps.png", 1, "MB/s"},
	{mUploadGrowth, "upload-rss-growth.png", 1 << 20, "MiB peak RSS growth"},
	{mCancelP50, "cancel-p50.png", 1000, "ms from reset to upstream close (p50)"},
	{mTTFBP50, "ttfb-p50.png", 1, "µs to first byte (p50)"},
}

// writePlots draws one bar chart per plotted figure into dir and returns
// the files written. sluice's bar is coloured, the peers' grey; the direct
// baseline is left out (it is in the tables) so it does not flatten the
// proxies' bars.
func writePlots(dir string, agg map[string]figures) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, pl := range plotted {
		m := metricByID(pl.id)
		p := plot.New()
		p.Title.Text = m.name
		p.Y.Label.Text = pl.axis
		p.Add(plotter.NewGrid())
		var names []string
		var labels plotter.XYLabels
		for _, peer := range presentPeers(agg) {
			v := agg[peer].get(pl.id)
			if peer == peerDirect || math.IsNaN(v) {
				continue
			}
			bars, err := plotter.NewBarChart(plotter.Values{v / pl.scale}, vg.Points(36))
			if err != nil {
				return files, err
			}
			bars.XMin = float64(len(names))
			bars.LineStyle.Width = 0
			bars.Color = color.Gray{Y: 150}
			if peer == peerSluice {
				bars.Color = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}
			}
			p.Add(bars)
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(len(names)), Y: math.Max(v/pl.scale, 0)})
			labels.Labels = append(labels.Labels, m.format(v))
			names = append(names, peerTitle[peer])
		}
		if len(names) == 0 {
			continue
		}
		if l, err := plotter.NewLabels(labels); err == nil {
			for i := range l.TextStyle {
				l.TextStyle[i].XAlign = draw.XCenter
				l.TextStyle[i].YAlign = draw.YBottom
			}
			p.Add(l)
		}
		p.NominalX(names...)
		p.Y.Min = math.Min(p.Y.Min, 0)
		p.Y.Max *= 1.12 // room for the labels
		path := filepath.Join(dir, pl.file)
		if err := p.Save(vg.Length(110+80*len(names)), 3*vg.Inch, path); err != nil {
			return files, fmt.Errorf("saving %s: %w", path, err)
		}
		files = append(files, path)
	}
	return files, nil
}
