package integration

import (
	"bufio"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// metric returns the value of the sample named by series (name and
// labels exactly as exposed, labels sorted) in a /metrics scrape, and
// whether it is there.
func metric(body, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

func TestMetricsStreamsAndCloseReasons(t *testing.T) {
	events := make(chan int)
	mux := http.NewServeMux()
	mux.Handle("/events/", sseUpstream(events, "e"))
	mux.Handle("/quiet/", sseUpstream(make(chan int), "q")) // never sends
	up := upstream(t, mux)
	cert := newTestCert(t)
	p := startSluiceConfig(t, headerAdmin(cert, "127.0.0.1:0")+"routes:\n"+
		route("events", "/events/", up, "timeouts: { idle: 1m, total: 0s }")+
		route("quiet", "/quiet/", up, "timeouts: { idle: 300ms, total: 0s }"), cert)
	scrapeURL := "http://" + p.listenerAddr("admin", 1) + "/metrics"
	scrape := func() string {
		t.Helper()
		code, body := getText(t, nil, scrapeURL)
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	want := func(body, series string, check func(float64) bool) {
		t.Helper()
		v, ok := metric(body, series)
		if !ok || !check(v) {
			t.Fatalf("%s = %v (present %v)\n%s", series, v, ok, body)
		}
	}
	is := func(n float64) func(float64) bool { return func(v float64) bool { return v == n } }
	positive := func(v float64) bool { return v > 0 }

	client := p.h2Client()
	res, err := client.Get(p.url("/events/1"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	events <- 1
	readEvent(t, br, 5*time.Second)

	body := scrape()
	want(body, `sluice_open_streams{route="events"}`, is(1))
	want(body, `sluice_upstream_response_header_seconds_count{route="events"}`, is(1))
	want(body, `sluice_certificate_expiry_timestamp_seconds{name="localhost"}`, func(v float64) bool {
		return v > float64(time.Now().Unix()) && v <= float64(time.Now().Add(25*time.Hour).Unix())
	})
	want(body, `sluice_config_reloads_total{result="failure"}`, is(0))

	// The quiet stream is cut by its idle timeout.
	qres, err := client.Get(p.url("/quiet/1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readEventErr(bufio.NewReader(qres.Body), 5*time.Second); err == nil {
		t.Fatal("quiet stream sent an event")
	}
	qres.Body.Close()
	p.accessLine("/quiet/1", 5*time.Second)

	body = scrape()
	want(body, `sluice_exchange_ends_total{close_reason="idle_timeout",route="quiet"}`, is(1))
	want(body, `sluice_open_streams{route="quiet"}`, is(0))
	want(body, `sluice_open_streams{route="events"}`, is(1))
	want(body, `sluice_requests_total{code="2xx",route="quiet"}`, is(1))

	// The events stream ends cleanly: counted with its bytes.
	close(events)
	if _, err := readEventErr(br, 5*time.Second); err == nil {
		t.Fatal("event after the end")
	}
	res.Body.Close()
	p.accessLine("/events/1", 5*time.Second)
	if code, _ := getText(t, client, p.url("/nowhere")); code != 404 {
		t.Fatalf("unrouted request: %d", code)
	}
	p.accessLine("/nowhere", 5*time.Second)

	body = scrape()
	want(body, `sluice_open_streams{route="events"}`, is(0))
	want(body, `sluice_exchange_ends_total{close_reason="done",route="events"}`, is(1))
	want(body, `sluice_response_bytes_total{route="events"}`, positive)
	want(body, `sluice_exchange_duration_seconds_count{route="events"}`, is(1))
	want(body, `sluice_requests_total{code="4xx",route=""}`, is(1))
}
