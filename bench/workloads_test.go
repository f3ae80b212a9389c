package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// sizeRecorder is a reader that notes the size of every buffer it is
// given, as x/net's response body would see them.
type sizeRecorder struct {
	r     io.Reader
	sizes []int
}

func (s *sizeRecorder) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	return s.r.Read(p)
}

func TestDiscardInReadsWithItsBuffer(t *testing.T) {
	const total = 1 << 20
	rec := &sizeRecorder{r: strings.NewReader(strings.Repeat("x", total))}
	n, err := discardIn(rec, 256<<10)
	if err != nil || n != total {
		t.Fatalf("discardIn = %d, %v; want %d, nil", n, err, total)
	}
	for i, size := range rec.sizes {
		if size != 256<<10 {
			t.Fatalf("read %d was given %d bytes, want %d (all reads %v)", i, size, 256<<10, rec.sizes)
		}
	}
	// 4 full reads and the one that finds the end.
	if len(rec.sizes) != 5 {
		t.Errorf("%d reads, want 5: %v", len(rec.sizes), rec.sizes)
	}
}

func TestDiscardInReturnsTheReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("abc"), &errReader{boom})
	n, err := discardIn(r, 16)
	if n != 3 || !errors.Is(err, boom) {
		t.Fatalf("discardIn = %d, %v; want 3, %v", n, err, boom)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
