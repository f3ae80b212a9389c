package proxy

import (
	"strings"
	"testing"
)

var fuzzRoutes = []*route{
	{name: "exact-root", host: "example.com", path: "/"},
	{name: "exact-api", host: "example.com", path: "/api"},
	{name: "exact-api-v2", host: "example.com", path: "/api/v2/"},
	{name: "wild", host: "*.example.com", path: "/"},
	{name: "wild-deep", host: "*.a.example.com", path: "/x"},
	{name: "any-admin", path: "/admin/"},
	{name: "any-static", path: "/static"},
}

// hostMatches is the spec of host matching, written independently of the
// router: exact, or a wildcard covering one or more labels, or any.
func hostMatches(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		return len(host) > len(pattern)-1 && strings.HasSuffix(host, pattern[1:])
	}
	return host == pattern
}

func tier(r *route) int {
	switch {
	case r.host == "":
		return 0
	case strings.HasPrefix(r.host, "*."):
		return 1
	}
	return 2
}

// FuzzRouter checks the router against the route-choice rule in the
// design: among routes whose host matches (exact beats wildcard beats
// none; a tier with no path match falls through), the longest path prefix
// on a segment boundary wins; no match is nil.
func FuzzRouter(f *testing.F) {
	for _, s := range [][2]string{
		{"example.com", "/api/v2/x"}, {"EXAMPLE.com:8443", "/api"}, {"b.a.example.com.", "/x/y"},
		{"other.org", "/admin"}, {"[::1]:443", "/static/../admin/"}, {"example.com", "//api"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	rt := newRouter(fuzzRoutes)
	f.Fuzz(func(t *testing.T, host, path string) {
		p := routingPath(path)
		if !strings.HasPrefix(p, "/") && path != "" && strings.HasPrefix(path, "/") {
			t.Fatalf("routingPath(%q) = %q lost its leading slash", path, p)
		}
		got := rt.match(host, p)
		h := normalizeHost(host)
		var want *route
		for _, r := range fuzzRoutes {
			if !hostMatches(r.host, h) || !pathHasPrefix(p, r.path) {
				continue
			}
			if want == nil || tier(r) > tier(want) ||
				(tier(r) == tier(want) && len(r.host) > len(want.host)) ||
				(tier(r) == tier(want) && r.host == want.host && len(r.path) > len(want.path)) {
				want = r
			}
		}
		if got != want {
			t.Fatalf("match(%q, %q) = %v, want %v", host, p, name(got), name(want))
		}
	})
}

func name(r *route) string {
	if r == nil {
		return "<nil>"
	}
	return r.name
}
