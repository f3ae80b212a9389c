package main

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// A held stream's client reads exactly what the upstream sends before
// going quiet (heldBytes): one byte short and it would wait forever,
// one byte over and it would count a stream open too early.
func TestHeldStreamSendsHeldBytes(t *testing.T) {
	for _, events := range []int{0, 2} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/sse?events="+strconv.Itoa(events), nil)
		if !writeHeld(rec, req, nil) {
			t.Fatalf("events=%d: the stream ended", events)
		}
		body := rec.Body.String()
		if len(body) != heldBytes(events) {
			t.Errorf("events=%d: sent %d bytes, heldBytes says %d", events, len(body), heldBytes(events))
		}
		if got := strings.Count(body, "\n\n"); got != 1+events {
			t.Errorf("events=%d: %d messages in %q", events, got, body)
		}
	}
}
