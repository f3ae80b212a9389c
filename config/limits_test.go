package config

import (
	"strings"
	"testing"
)

func TestHardeningKeys(t *testing.T) {
	const routes = "routes:\n  - { name: a, upstream: 'http://127.0.0.1:1' }\n"
	cfg, err := Parse("c.yaml", []byte(routes))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server
	if s.MaxHeaderCount != 100 || s.MaxURILength != 8<<10 || s.MaxConnections != 10000 || s.MaxConnectionsPerIP != 0 || s.AllowUnderscoresInHeaders || cfg.Routes[0].MaxRequestBody != 0 {
		t.Errorf("defaults: %+v, max_request_body %d", s, cfg.Routes[0].MaxRequestBody)
	}

	cfg, err = Parse("c.yaml", []byte("server: { max_header_count: 7, max_uri_length: 1KiB, max_connections: 0, max_connections_per_ip: 4, allow_underscores_in_headers: true }\n"+
		"routes:\n  - { name: a, upstream: 'http://127.0.0.1:1', max_request_body: 2MiB }\n"))
	if err != nil {
		t.Fatal(err)
	}
	s = cfg.Server
	if s.MaxHeaderCount != 7 || s.MaxURILength != 1<<10 || s.MaxConnections != 0 || s.MaxConnectionsPerIP != 4 || !s.AllowUnderscoresInHeaders || cfg.Routes[0].MaxRequestBody != 2<<20 {
		t.Errorf("parsed: %+v, max_request_body %d", s, cfg.Routes[0].MaxRequestBody)
	}

	for _, tc := range []struct{ yaml, key string }{
		{"server: { max_header_count: 0 }\n", "server.max_header_count"},
		{"server: { max_header_count: 10001 }\n", "server.max_header_count"},
		{"server: { max_uri_length: 100B }\n", "server.max_uri_length"},
		{"server: { max_header_bytes: 4KiB, max_uri_length: 8KiB }\n", "server.max_uri_length"},
		{"server: { max_connections: -1 }\n", "server.max_connections"},
		{"server: { max_connections_per_ip: -2 }\n", "server.max_connections_per_ip"},
		{"server: { allow_underscores_in_headers: maybe }\n", "server.allow_underscores_in_headers"},
	} {
		_, err := Parse("c.yaml", []byte(tc.yaml+routes))
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), "c.yaml:1:") {
			t.Errorf("%q: error %v, want one at c.yaml:1 naming %s", tc.yaml, err, tc.key)
		}
	}
	_, err = Parse("c.yaml", []byte("routes:\n  - { name: a, upstream: 'http://127.0.0.1:1', max_request_body: -1 }\n"))
	if err == nil || !strings.Contains(err.Error(), "max_request_body") {
		t.Errorf("negative max_request_body: %v", err)
	}
}
