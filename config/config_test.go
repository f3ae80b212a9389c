package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestShippedConfigIsValid(t *testing.T) {
	cfg, err := Load("../config.yaml")
	if err != nil {
		t.Fatalf("shipped config.yaml: %v", err)
	}
	if len(cfg.Routes) == 0 {
		t.Fatal("shipped config has no routes")
	}
}

func TestDefaultsAndInheritance(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(`
timeouts: { idle: 5s }
routes:
  - name: events
    match: { host: Example.COM., path: /events/ }
    upstream: http://127.0.0.1:8000
    timeouts: { idle: 10m, total: 0s }
  - name: app
    upstream: unix:/run/gunicorn.sock
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.HTTPS != ":8443" || cfg.Listen.HTTP != ":8080" || cfg.Admin != "127.0.0.1:9180" {
		t.Errorf("listen defaults: %+v admin %q", cfg.Listen, cfg.Admin)
	}
	if cfg.Server.MaxHeaderBytes != 64<<10 || cfg.Server.MaxConcurrentStreams != 250 || cfg.Server.ShutdownTimeout.D() != 30*time.Second {
		t.Errorf("server defaults: %+v", cfg.Server)
	}
	if !cfg.Log.Access || cfg.Log.Level != "info" || cfg.Log.Format != "json" {
		t.Errorf("log defaults: %+v", cfg.Log)
	}
	ev, app := cfg.Routes[0], cfg.Routes[1]
	if ev.Match.Host != "example.com" {
		t.Errorf("host not normalised: %q", ev.Match.Host)
	}
	if ev.Streaming != StreamAuto || app.Match.Path != "/" {
		t.Errorf("route defaults: %+v %+v", ev, app)
	}
	check := func(name string, got *Duration, want time.Duration) {
		t.Helper()
		if got == nil || got.D() != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("events idle", ev.Timeouts.Idle, 10*time.Minute)
	check("events total", ev.Timeouts.Total, 0)
	check("events response_header", ev.Timeouts.ResponseHeader, 30*time.Second)
	check("app idle (from top level)", app.Timeouts.Idle, 5*time.Second)
	check("app total (default)", app.Timeouts.Total, 60*time.Second)
}

// TestErrors checks that each kind of mistake is reported with its file,
// line, column and key path, and that all of them are reported at once.
func TestErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("bad.yaml", data)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	want := []string{
		`bad.yaml:3:3: listen.htps: unknown key (allowed here: https, http, http3)`,
		`bad.yaml:5:17: server.idle_timeout: "5 minutes" is not a duration`,
		`bad.yaml:6:21: server.max_header_bytes: "12 bytes" is not a size`,
		`bad.yaml:7:21: server.trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR`,
		`bad.yaml:8:19: timeouts.idle: "10" is not a duration`,
		`bad.yaml:10:10: log.level: "loud" is not one of debug, info, warn, error`,
		`bad.yaml:13:20: routes[0].match.host: "a*.example.com": a wildcard may only be a whole first label`,
		`bad.yaml:14:15: routes[0].upstream: "ftp://x": the scheme must be http://, h2c:// or unix:`,
		`bad.yaml:15:11: routes[1].name: "a" is already the name of routes[0]`,
		`bad.yaml:16:15: routes[1].upstream: "http://127.0.0.1:8000/app": an upstream is only scheme://host:port`,
		`bad.yaml:17:16: routes[1].streaming: "sometimes" is not one of auto, always, never`,
		`bad.yaml:19:7: routes[1].timeouts.totl: unknown key (allowed here: response_header, idle, total)`,
		`bad.yaml:20:5: routes[2].name: a route name is required`,
		`bad.yaml:20:15: routes[2].upstream: "unix:relative.sock": the socket path must be absolute`,
		`bad.yaml:21:20: routes[2].match.path: "nope" must start with /`,
	}
	if len(list) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if i >= len(list) {
			break
		}
		if got := list[i].Error(); !strings.HasPrefix(got, w) {
			t.Errorf("error %d:\n got  %s\n want %s...", i, got, w)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"syntax", "routes:\n  - [\n", "s.yaml:2:5: YAML syntax:"},
		{"no routes", "listen: { https: \":1\" }\n", "s.yaml: routes: at least one route is required"},
		{"wrong type", "routes: 3\n", "s.yaml:1:9: routes: want a list, got a number 3"},
		{"bool", "log: { access: maybe }\nroutes: []\n", `s.yaml:1:16: log.access: want true or false, got "maybe"`},
		{"bad address", "listen: { https: \"8443\" }\n", `s.yaml:1:18: listen.https: "8443" is not host:port`},
		{"duplicate key", "admin: \"\"\nadmin: \"\"\n", `s.yaml:2:1: YAML syntax: mapping key "admin" already defined`},
		{"same match twice", "routes:\n  - { name: a, upstream: \"http://x:1\" }\n  - { name: b, upstream: \"http://x:2\" }\n", `s.yaml:3:5: routes[1].match: same host and path as route "a"`},
		{"zero read header timeout", "server: { read_header_timeout: 0s }\n", "s.yaml:1:32: server.read_header_timeout: must be above zero"},
		{"stream limit", "server: { max_concurrent_streams: 0 }\n", "s.yaml:1:35: server.max_concurrent_streams: 0 is outside 1..100000"},
		{"two documents", "admin: \"\"\n---\nadmin: \"\"\n", "s.yaml:2:1: the file holds more than one YAML document"},
		{"empty second document", "0\n--- ", "s.yaml:2:1: the file holds more than one YAML document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]Size{"512": 512, "64KiB": 64 << 10, "4 MiB": 4 << 20, "1GiB": 1 << 30, "10KB": 10000, "3B": 3} {
		var s Size
		if err := s.parseScalar(in); err != nil || s != want {
			t.Errorf("%q: %v, %v; want %v", in, s, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "12 bytes", "KiB", "99999999999GiB"} {
		var s Size
		if err := s.parseScalar(in); err == nil {
			t.Errorf("%q accepted as %v", in, s)
		}
	}
}

func TestUpstreams(t *testing.T) {
	for in, want := range map[string]Upstream{
		"http://127.0.0.1:8000":     {Network: "tcp", Address: "127.0.0.1:8000"},
		"http://app.internal":       {Network: "tcp", Address: "app.internal:80"},
		"http://[::1]:9000/":        {Network: "tcp", Address: "[::1]:9000"},
		"unix:/run/gunicorn.sock":   {Network: "unix", Address: "/run/gunicorn.sock"},
		"unix:///run/gunicorn.sock": {Network: "unix", Address: "/run/gunicorn.sock"},
		"h2c://127.0.0.1:50051":     {Network: "tcp", Address: "127.0.0.1:50051", H2C: true},
	} {
		got, err := ParseUpstream(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"127.0.0.1:8000", "https://x:1", "http://", "http://x:0", "http://u:p@x:1", "http://x:1/path", "http://x:1?q", "unix:run.sock"} {
		if u, err := ParseUpstream(in); err == nil {
			t.Errorf("%q accepted as %+v", in, u)
		}
	}
}
