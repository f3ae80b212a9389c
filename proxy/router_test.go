package proxy

import "testing"

func TestRouter(t *testing.T) {
	mk := func(name, host, path string) *route { return &route{name: name, host: host, path: path} }
	rt := newRouter([]*route{
		mk("any-root", "", "/"),
		mk("any-api", "", "/api"),
		mk("exact-root", "example.com", "/"),
		mk("exact-events", "example.com", "/events/"),
		mk("exact-only-x", "x.example.com", "/x"),
		mk("wild", "*.example.com", "/"),
		mk("wild-deep", "*.eu.example.com", "/"),
		mk("wild-static", "*.example.com", "/static/"),
	})
	for _, c := range []struct{ host, path, want string }{
		{"example.com", "/", "exact-root"},
		{"EXAMPLE.com:8443", "/page", "exact-root"},
		{"example.com.", "/page", "exact-root"},
		{"example.com", "/events/feed", "exact-events"},
		{"example.com", "/events", "exact-root"}, // "/events/" covers only below it
		{"a.example.com", "/", "wild"},
		{"a.b.example.com", "/static/x.css", "wild-static"},
		{"a.eu.example.com", "/", "wild-deep"}, // longer wildcard suffix first
		{"x.example.com", "/x/1", "exact-only-x"},
		{"x.example.com", "/y", "wild"}, // exact host has no matching path: next tier
		{"other.org", "/api", "any-api"},
		{"other.org", "/api/v1", "any-api"},
		{"other.org", "/apix", "any-root"}, // prefixes match whole segments
		{"", "/", "any-root"},
		{"[::1]:8443", "/api", "any-api"},
	} {
		r := rt.match(c.host, c.path)
		if r == nil || r.name != c.want {
			got := "<nil>"
			if r != nil {
				got = r.name
			}
			t.Errorf("match(%q, %q) = %s, want %s", c.host, c.path, got, c.want)
		}
	}
	only := newRouter([]*route{mk("exact", "example.com", "/")})
	if r := only.match("example.org", "/"); r != nil {
		t.Errorf("no route should match another host, got %s", r.name)
	}
	if r := only.match("example.com", "*"); r != nil {
		t.Errorf("OPTIONS * should match no route, got %s", r.name)
	}
}

func TestRoutingPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "/",
		"/a/b":               "/a/b",
		"/public/../admin":   "/admin",
		"/public/./x/":       "/public/x/",
		"//admin":            "/admin",
		"/a/..":              "/",
		"/events/../events/": "/events/",
	} {
		if got := routingPath(in); got != want {
			t.Errorf("routingPath(%q) = %q, want %q", in, got, want)
		}
	}
}
