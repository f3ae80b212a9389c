package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluiceproxy/sluice/proxy"
)

func TestStatusClass(t *testing.T) {
	for code, want := range map[int]string{200: "2xx", 204: "2xx", 308: "3xx", 404: "4xx", 499: "4xx", 502: "5xx", 101: "1xx", 0: "other", 600: "other"} {
		if got := statusClasses[statusClassIndex(code)]; got != want {
			t.Errorf("class of %d = %q, want %q", code, got, want)
		}
	}
}

// TestRouteSeries: each route's exchanges land in its own series, only
// the status classes and close reasons seen get a series, and once a
// route's series exist an exchange allocates nothing for its metrics.
func TestRouteSeries(t *testing.T) {
	m := New()
	exchange := func(route string, status int, reason string, bytes int64) {
		m.ExchangeStarted(route)
		m.UpstreamResponded(route, 3*time.Millisecond)
		m.ExchangeEnded(proxy.ExchangeEnd{Route: route, Status: status, CloseReason: reason, BytesOut: bytes, Duration: time.Second})
	}
	exchange("a", 200, "done", 10)
	exchange("a", 200, "done", 5)
	exchange("a", 502, "upstream_error", 0)
	exchange("b", 499, "client_gone", 7)
	m.ExchangeStarted("b") // still open
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.requests.WithLabelValues("a", "2xx")), 2, "a 2xx"},
		{testutil.ToFloat64(m.requests.WithLabelValues("a", "5xx")), 1, "a 5xx"},
		{testutil.ToFloat64(m.requests.WithLabelValues("b", "4xx")), 1, "b 4xx"},
		{testutil.ToFloat64(m.ends.WithLabelValues("a", "done")), 2, "a done"},
		{testutil.ToFloat64(m.ends.WithLabelValues("b", "client_gone")), 1, "b client_gone"},
		{testutil.ToFloat64(m.bytesOut.WithLabelValues("a")), 15, "a bytes"},
		{testutil.ToFloat64(m.open.WithLabelValues("a")), 0, "a open"},
		{testutil.ToFloat64(m.open.WithLabelValues("b")), 1, "b open"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// The lookups above made no series: a, 2xx and 5xx; b, 4xx.
	if n := testutil.CollectAndCount(m.requests); n != 3 {
		t.Errorf("%d requests series, want 3", n)
	}
	if n := testutil.CollectAndCount(m.upstreamHeader); n != 2 {
		t.Errorf("%d upstream header series, want 2", n)
	}
	if n := testing.AllocsPerRun(100, func() { exchange("a", 200, "done", 1) }); n != 0 {
		t.Errorf("%v allocations an exchange", n)
	}
}
