package config

import (
	"slices"
	"strings"
	"testing"
)

const acmeRoutes = `
routes:
  - name: a
    match: { host: example.com }
    upstream: http://127.0.0.1:8000
  - name: b
    match: { host: www.example.com, path: /api }
    upstream: http://127.0.0.1:8000
  - name: c
    match: { host: example.com, path: /x }
    upstream: http://127.0.0.1:8000
  - name: ip
    match: { host: 192.0.2.1 }
    upstream: http://127.0.0.1:8000
  - name: any
    match: { path: /any }
    upstream: http://127.0.0.1:8000
`

func TestACMEDefaults(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("tls:\n  acme: {}\n"+acmeRoutes))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.TLS.ACME
	if want := []string{"example.com", "www.example.com"}; !slices.Equal(a.Names, want) || !a.NamesDefaulted() {
		t.Fatalf("names %v (defaulted %v), want %v from the routes' exact hosts", a.Names, a.NamesDefaulted(), want)
	}
	if want := []string{ChallengeHTTP01, ChallengeTLSALPN01}; !slices.Equal(a.Challenges, want) {
		t.Fatalf("challenges %v, want %v", a.Challenges, want)
	}
	if a.DirectoryURL() != LetsEncryptProduction {
		t.Fatalf("directory %s, want Let's Encrypt production", a.DirectoryURL())
	}

	cfg, err = Parse("t.yaml", []byte("listen: { http: \"\" }\ntls:\n  acme: { staging: true }\n"+acmeRoutes))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.TLS.ACME; !slices.Equal(a.Challenges, []string{ChallengeTLSALPN01}) || a.DirectoryURL() != LetsEncryptStaging {
		t.Fatalf("without listen.http: challenges %v, directory %s", a.Challenges, a.DirectoryURL())
	}

	cfg, err = Parse("t.yaml", []byte("routes:\n  - { name: a, match: { host: example.com }, upstream: \"http://127.0.0.1:1\" }\n"))
	if err != nil || cfg.TLS.ACME != nil {
		t.Fatalf("acme must stay off unless configured: %v %+v", err, cfg.TLS.ACME)
	}
}

func TestACMEErrors(t *testing.T) {
	wildcard := "\n  - name: w\n    match: { host: \"*.example.com\" }\n    upstream: http://127.0.0.1:8000\n"
	for _, c := range []struct {
		name, acme, extraRoutes, listenHTTP string
		want                                []string // "key: fragment"
	}{
		{name: "wildcard route host without dns provider", acme: "{}", extraRoutes: wildcard,
			want: []string{"routes[5].match.host: \"*.example.com\": a wildcard certificate needs the DNS-01 challenge"}},
		{name: "wildcard route host with explicit names is fine", acme: "{ names: [example.com] }", extraRoutes: wildcard},
		{name: "wildcard route host with on-demand is fine", acme: "{ on_demand: { ask: \"http://127.0.0.1:9/ok\" } }", extraRoutes: wildcard},
		{name: "wildcard name", acme: "{ names: [\"*.example.com\"] }",
			want: []string{"tls.acme.names[0]: \"*.example.com\": a wildcard certificate needs the DNS-01 challenge"}},
		{name: "unknown dns provider", acme: "{ dns_provider: route53 }",
			want: []string{"tls.acme.dns_provider: unknown DNS provider \"route53\""}},
		{name: "on demand without ask", acme: "{ on_demand: {} }",
			want: []string{"tls.acme.on_demand.ask: on-demand certificates need an ask URL"}},
		{name: "on demand ask not a URL", acme: "{ on_demand: { ask: \"localhost:9000\" } }",
			want: []string{"tls.acme.on_demand.ask: \"localhost:9000\" is not an http:// or https:// URL"}},
		{name: "staging and ca", acme: "{ staging: true, ca: \"https://ca.internal/dir\" }",
			want: []string{"tls.acme.staging: staging picks"}},
		{name: "ca not https", acme: "{ ca: \"http://ca.internal/dir\" }",
			want: []string{"tls.acme.ca: \"http://ca.internal/dir\" is not an https:// URL"}},
		{name: "http-01 without listen.http", acme: "{ challenges: [http-01] }", listenHTTP: "listen: { http: \"\" }\n",
			want: []string{"tls.acme.challenges[0]: http-01 is answered on listen.http, which is off"}},
		{name: "unknown challenge", acme: "{ challenges: [dns-01] }",
			want: []string{"tls.acme.challenges[0]: \"dns-01\" is not one of http-01, tls-alpn-01"}},
		{name: "no challenges", acme: "{ challenges: [] }",
			want: []string{"tls.acme.challenges: at least one challenge type is required"}},
		{name: "bad email", acme: "{ email: nobody }",
			want: []string{"tls.acme.email: \"nobody\" is not an email address"}},
		{name: "bad name", acme: "{ names: [\"exa mple.com\"] }",
			want: []string{"tls.acme.names[0]: \"exa mple.com\" is not a valid host name"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.listenHTTP+"tls:\n  acme: "+c.acme+"\n"+acmeRoutes+c.extraRoutes))
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestACMENoNames(t *testing.T) {
	_, err := Parse("t.yaml", []byte("tls:\n  acme: {}\nroutes:\n  - { name: a, upstream: \"http://127.0.0.1:1\" }\n"))
	if err == nil || !strings.Contains(err.Error(), "no names to manage") {
		t.Fatalf("got %v, want a no-names error", err)
	}
	if _, err := Parse("t.yaml", []byte("tls:\n  acme: { on_demand: { ask: \"http://127.0.0.1:9/ok\" } }\nroutes:\n  - { name: a, upstream: \"http://127.0.0.1:1\" }\n")); err != nil {
		t.Fatalf("on-demand needs no names: %v", err)
	}
}

func TestListenHTTP3(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("listen: { http3: true }\n"+acmeRoutes))
	if err != nil || !cfg.Listen.HTTP3 {
		t.Fatalf("listen.http3: %v %v", err, cfg)
	}
	if _, err := Parse("t.yaml", []byte("listen: { http3: yes please }\n"+acmeRoutes)); err == nil || !strings.Contains(err.Error(), "listen.http3") {
		t.Fatalf("bad http3 value: %v", err)
	}
}
