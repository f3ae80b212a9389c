package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written the Go way: "500ms", "30s", "10m",
// "1h30m". A bare 0 is accepted; any other bare number is not, because
// its unit would be a guess.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) parseScalar(s string) error {
	if s == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use a unit: 500ms, 30s, 10m, 1h)", s)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// Size is a byte count: a plain number of bytes, or a number with one of
// the units B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of
// 1000).
type Size int64

func (s Size) String() string {
	switch {
	case s >= 1<<30 && s%(1<<30) == 0:
		return strconv.FormatInt(int64(s>>30), 10) + "GiB"
	case s >= 1<<20 && s%(1<<20) == 0:
		return strconv.FormatInt(int64(s>>20), 10) + "MiB"
	case s >= 1<<10 && s%(1<<10) == 0:
		return strconv.FormatInt(int64(s>>10), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

var sizeUnits = []struct {
	suffix string
	factor int64
}{
	// Longest suffixes first, so "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

func (s *Size) parseScalar(text string) error {
	num, factor := strings.TrimSpace(text), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, factor = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a size (use bytes or a unit: 512KiB, 4MiB, 1GiB)", text)
	}
	if n > (1<<62)/factor {
		return fmt.Errorf("%q is too large", text)
	}
	*s = Size(n * factor)
	return nil
}

func (s *Streaming) parseScalar(text string) error {
	switch Streaming(text) {
	case StreamAuto, StreamAlways, StreamNever:
		*s = Streaming(text)
		return nil
	}
	return fmt.Errorf("%q is not one of auto, always, never", text)
}
