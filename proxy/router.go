package proxy

import (
	"net"
	"sort"
	"strings"
)

// router picks a route for a request by host, then by longest path prefix.
// It is built once per config snapshot and never changed, so lookups need
// no locks.
type router struct {
	exact    map[string][]*route
	wildcard []wildcardGroup // longest suffix first
	anyHost  []*route
}

type wildcardGroup struct {
	suffix string // ".example.com"
	routes []*route
}

func newRouter(routes []*route) *router {
	rt := &router{exact: map[string][]*route{}}
	wild := map[string][]*route{}
	for _, r := range routes {
		switch {
		case r.host == "":
			rt.anyHost = append(rt.anyHost, r)
		case strings.HasPrefix(r.host, "*."):
			suffix := r.host[1:]
			wild[suffix] = append(wild[suffix], r)
		default:
			rt.exact[r.host] = append(rt.exact[r.host], r)
		}
	}
	for suffix, rs := range wild {
		rt.wildcard = append(rt.wildcard, wildcardGroup{suffix, rs})
	}
	sort.Slice(rt.wildcard, func(i, j int) bool {
		a, b := rt.wildcard[i].suffix, rt.wildcard[j].suffix
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	byPath := func(rs []*route) {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].path) > len(rs[j].path) })
	}
	for _, rs := range rt.exact {
		byPath(rs)
	}
	for _, g := range rt.wildcard {
		byPath(g.routes)
	}
	byPath(rt.anyHost)
	return rt
}

// match returns the route for host (a Host header or :authority, port
// allowed) and path, or nil. A host tier whose routes match no path falls
// through to the next, less specific tier.
func (rt *router) match(host, path string) *route {
	host = normalizeHost(host)
	if r := matchPath(rt.exact[host], path); r != nil {
		return r
	}
	for _, g := range rt.wildcard {
		if len(host) > len(g.suffix) && strings.HasSuffix(host, g.suffix) {
			if r := matchPath(g.routes, path); r != nil {
				return r
			}
		}
	}
	return matchPath(rt.anyHost, path)
}

func matchPath(routes []*route, path string) *route {
	for _, r := range routes {
		if pathHasPrefix(path, r.path) {
			return r
		}
	}
	return nil
}

// pathHasPrefix reports whether prefix covers path on segment boundaries:
// "/api" covers "/api" and "/api/x" but not "/apix"; "/api/" covers only
// what lies below it.
func pathHasPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// normalizeHost lowercases host and strips its port and trailing dot.
func normalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}
