// Package metrics keeps sluice's Prometheus metrics: per-route requests,
// open streams, how exchanges ended, latencies and bytes (fed by the proxy
// through proxy.Observer), config reloads and certificate expiry. The
// admin listener serves them at /metrics.
package metrics

import (
	"crypto/tls"
	"crypto/x509"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluiceproxy/sluice/proxy"
)

const namespace = "sluice"

// Metrics is one registry of sluice's metrics. It implements
// proxy.Observer.
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	open           *prometheus.GaugeVec
	ends           *prometheus.CounterVec
	upstreamHeader *prometheus.HistogramVec
	duration       *prometheus.HistogramVec
	bytesOut       *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	certExpiry     *prometheus.GaugeVec

	// routes holds each route's series once looked up (*routeSeries by
	// route name): a vector's WithLabelValues hashes the values and takes
	// the vector's lock, which six times a request was about 1 % of a
	// small request's CPU.
	routes sync.Map
}

// routeSeries is one route's series. Those by status class and close
// reason are made on first use, as WithLabelValues makes them, so that a
// route does not show series of classes it never answered with.
type routeSeries struct {
	open           prometheus.Gauge
	upstreamHeader prometheus.Observer
	duration       prometheus.Observer
	bytesOut       prometheus.Counter

	mu      sync.Mutex
	classes [len(statusClasses)]prometheus.Counter
	ends    map[string]prometheus.Counter // by close reason
}

var _ proxy.Observer = (*Metrics)(nil)

// New registers every metric, with Go runtime and process metrics, in a
// registry of its own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_total",
		Help: "Requests by route and response status class (2xx..5xx); route is empty when no route matched.",
	}, []string{"route", "code"})
	m.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "open_streams",
		Help: "Exchanges open now, by route: requests in flight and streams being forwarded.",
	}, []string{"route"})
	m.ends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "exchange_ends_total",
		Help: "Finished exchanges by route and how they ended (the access log's close_reason).",
	}, []string{"route", "close_reason"})
	m.upstreamHeader = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "upstream_response_header_seconds",
		Help:    "Time from a request's arrival to the upstream's response headers, by route.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "exchange_duration_seconds",
		Help:    "Whole exchange duration, from the request's arrival to its end, by route. Streams run for minutes: the buckets reach an hour.",
		Buckets: []float64{.005, .025, .1, .25, 1, 2.5, 10, 30, 60, 300, 900, 1800, 3600},
	}, []string{"route"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "response_bytes_total",
		Help: "Response body bytes written to clients, by route (counted when each exchange ends).",
	}, []string{"route"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "config_reloads_total",
		Help: "Config reloads by result: success, or failure (the running config stayed).",
	}, []string{"result"})
	m.certExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "certificate_expiry_timestamp_seconds",
		Help: "When each served certificate expires (Unix time), by the names it covers.",
	}, []string{"name"})
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.reg.MustRegister(m.requests, m.open, m.ends, m.upstreamHeader, m.duration, m.bytesOut, m.reloads, m.certExpiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is what /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// series returns route's series, looking them up on first use.
func (m *Metrics) series(route string) *routeSeries {
	if rs, ok := m.routes.Load(route); ok {
		return rs.(*routeSeries)
	}
	rs, _ := m.routes.LoadOrStore(route, &routeSeries{
		open:           m.open.WithLabelValues(route),
		upstreamHeader: m.upstreamHeader.WithLabelValues(route),
		duration:       m.duration.WithLabelValues(route),
		bytesOut:       m.bytesOut.WithLabelValues(route),
		ends:           map[string]prometheus.Counter{},
	})
	return rs.(*routeSeries)
}

// ExchangeStarted counts an open exchange.
func (m *Metrics) ExchangeStarted(route string) {
	m.series(route).open.Inc()
}

// UpstreamResponded records the upstream's response-header latency.
func (m *Metrics) UpstreamResponded(route string, wait time.Duration) {
	m.series(route).upstreamHeader.Observe(wait.Seconds())
}

// ExchangeEnded records a finished exchange.
func (m *Metrics) ExchangeEnded(e proxy.ExchangeEnd) {
	rs := m.series(e.Route)
	rs.open.Dec()
	class := statusClassIndex(e.Status)
	rs.mu.Lock()
	requests := rs.classes[class]
	if requests == nil {
		requests = m.requests.WithLabelValues(e.Route, statusClasses[class])
		rs.classes[class] = requests
	}
	ends := rs.ends[e.CloseReason]
	if ends == nil {
		ends = m.ends.WithLabelValues(e.Route, e.CloseReason)
		rs.ends[e.CloseReason] = ends
	}
	rs.mu.Unlock()
	requests.Inc()
	ends.Inc()
	rs.duration.Observe(e.Duration.Seconds())
	if e.BytesOut > 0 {
		rs.bytesOut.Add(float64(e.BytesOut))
	}
}

// statusClasses are the code label's values, by statusClassIndex.
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// statusClassIndex maps a status to its class in statusClasses: 2xx and
// so on; 499 (client gone before a response) counts as 4xx.
func statusClassIndex(code int) int {
	if code < 100 || code > 599 {
		return 0
	}
	return code / 100
}

// Reloaded counts a config reload.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

// SetCertificates replaces the expiry gauges with those of certs: one
// series per DNS name or IP address a certificate covers.
func (m *Metrics) SetCertificates(certs []tls.Certificate) {
	m.certExpiry.Reset()
	for _, c := range certs {
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			var err error
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				continue
			}
		}
		if leaf == nil {
			continue
		}
		for _, name := range certNames(leaf) {
			m.certExpiry.WithLabelValues(name).Set(float64(leaf.NotAfter.Unix()))
		}
	}
}

func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}
