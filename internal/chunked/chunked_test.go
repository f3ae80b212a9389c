package chunked

import "testing"

func TestSize(t *testing.T) {
	for _, c := range []struct {
		line string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1a", 26, true},
		{"FF", 255, true},
		{"10;name=value", 16, true},
		{"10 ;ext", 16, true},
		{"7fffffffffffffff", 1<<63 - 1, true},
		{"8000000000000000", 0, false},  // over 63 bits
		{"10000000000000000", 0, false}, // 17 digits
		{"", 0, false},
		{";ext", 0, false},
		{"0x10", 0, false},
		{"-1", 0, false},
		{" 10", 0, false},
		{"1_0", 0, false},
		{"+1", 0, false},
		{"1 ", 1, true},
		{"g", 0, false},
	} {
		got, ok := Size([]byte(c.line))
		if got != c.want || ok != c.ok {
			t.Errorf("Size(%q) = %d, %v; want %d, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}
