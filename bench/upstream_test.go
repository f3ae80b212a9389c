package main

import (
	"context"
	"net/http"
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

// The upload workload's two ends agree on what arrived: the client's
// body is exactly the size it declares, and the upstream answers with
// the count it read, which the client returns for the workload to check.
func TestUploadCountsWhatArrived(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(serveUpload))
	defer srv.Close()
	c := &client{rt: srv.Client().Transport, base: srv.URL}
	for _, n := range []int64{0, 1, 64<<10 + 3, 3<<20 + 5} {
		got, err := c.upload(context.Background(), n)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if got != n {
			t.Errorf("sent %d bytes, the upstream counted %d", n, got)
		}
	}
}

// An upstream that answers with an error status fails the upload rather
// than reporting a count.
func TestUploadFailsOnErrorStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	defer srv.Close()
	c := &client{rt: srv.Client().Transport, base: srv.URL}
	if got, err := c.upload(context.Background(), 1<<20); err == nil {
		t.Fatalf("upload through a 413 reported %d bytes and no error", got)
	}
}
