package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the config loader: it must never
// panic, every error must carry the file name, and whatever it accepts
// must be complete (every route with its timeouts filled in, limits in
// range), so the rest of sluice can rely on a loaded config.
func FuzzParse(f *testing.F) {
	f.Add([]byte("routes:\n  - name: app\n    upstream: http://127.0.0.1:8000\n"))
	f.Add([]byte("server:\n  max_header_count: 5\n  max_uri_length: 1KiB\n  max_connections_per_ip: 3\nroutes:\n  - { name: a, match: { host: '*.example.com', path: /x }, upstream: 'unix:/run/a.sock', max_request_body: 1MiB, timeouts: { idle: 10m } }\n"))
	f.Add([]byte("listen: { https: ':0' }\nroutes: []\n"))
	f.Add([]byte("routes:\n  - name: a\n    upstream: http://x\n    bogus: 1\n"))
	f.Add([]byte("timeouts: { total: 5 }\nroutes: [ { name: 'a b' } ]\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					if !strings.Contains(e.Error(), "fuzz.yaml") {
						t.Fatalf("error without the file name: %v", e)
					}
				}
			}
			return
		}
		if len(cfg.Routes) == 0 {
			t.Fatal("accepted a config without routes")
		}
		s := cfg.Server
		if s.ReadHeaderTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxConcurrentStreams < 1 || s.MaxHeaderCount < 1 ||
			s.MaxURILength < 256 || s.MaxURILength > s.MaxHeaderBytes || s.MaxConnections < 0 || s.MaxConnectionsPerIP < 0 {
			t.Fatalf("accepted out-of-range server limits: %+v", s)
		}
		for _, r := range cfg.Routes {
			if r.Timeouts.ResponseHeader == nil || r.Timeouts.Idle == nil || r.Timeouts.Total == nil {
				t.Fatalf("route %q without inherited timeouts", r.Name)
			}
			if !strings.HasPrefix(r.Match.Path, "/") || r.Streaming == "" || r.MaxRequestBody < 0 {
				t.Fatalf("route %q incomplete: %+v", r.Name, r)
			}
			if _, err := ParseUpstream(r.Upstream); err != nil {
				t.Fatalf("route %q: accepted upstream %q: %v", r.Name, r.Upstream, err)
			}
		}
	})
}
