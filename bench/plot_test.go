package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePlots(t *testing.T) {
	dir := t.TempDir()
	agg := map[string]figures{
		peerSluice:  {mBigMBps: 420, mAddedP50: -3, mHeld: 40 << 10},
		peerHAProxy: {mBigMBps: 500, mAddedP50: 75, mHeld: 7 << 10},
		peerDirect:  {mBigMBps: 2000, mChunkP50: 16},
	}
	files, err := writePlots(dir, agg)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("wrote %v, want the three measured figures", files)
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 200 {
			t.Errorf("%s is %v", filepath.Base(f), b)
		}
	}
}
