package main

import "testing"

func TestParseMallocs(t *testing.T) {
	text := "# HELP go_memstats_mallocs_total Total number of heap objects allocated.\n" +
		"# TYPE go_memstats_mallocs_total counter\n" +
		"go_memstats_mallocs_total_other 5\n" +
		"go_memstats_mallocs_total 1.234567e+07\n" +
		"go_memstats_frees_total 1.2e+07\n"
	if n, ok := parseMallocs(text); !ok || n != 12345670 {
		t.Fatalf("got %v %v", n, ok)
	}
	if _, ok := parseMallocs("go_memstats_frees_total 3\n"); ok {
		t.Fatal("found a count in text without one")
	}
}
