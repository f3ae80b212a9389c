package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// hopHeaders are meaningful for one connection only and are never
// forwarded, in either direction (RFC 9110, section 7.6.1).
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection", // non-standard, but sent by old clients
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",      // canonicalized form of "TE"; "trailers" is put back for requests
	"Trailer", // announced again from the response's trailers, see copyResponseHeader
	"Transfer-Encoding",
	"Upgrade",        // put back only for an allowed upgrade (websocket)
	"Http2-Settings", // h2c upgrade, never passed through
}

// removeHopByHop deletes the hop-by-hop headers of h: first every header
// that Connection names, then the fixed list.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name) // already canonical: Del would canonicalize each again
	}
}

// upgradeType returns the protocol a request or response asks to switch
// to, lowercased, or "".
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return strings.ToLower(h.Get("Upgrade"))
}

// prepareRequestHeader rewrites the client's request headers for the
// upstream: hop-by-hop headers out, an allowed upgrade and "TE: trailers"
// back in, and the X-Forwarded-* headers set from what sluice saw, keeping
// the client's own only when it is a trusted proxy.
func prepareRequestHeader(h http.Header, r *http.Request, upgrade string, trusted []netip.Prefix) {
	te := httpguts.HeaderValuesContainsToken(h["Te"], "trailers")
	removeHopByHop(h)
	if te {
		h.Set("Te", "trailers")
	}
	if upgrade != "" {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", upgrade)
	}
	// Without this the Go transport would add its own User-Agent.
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", "")
	}

	peer, peerText := peerAddr(r.RemoteAddr)
	if peer.IsValid() && isTrusted(peer, trusted) {
		prior := strings.Join(h.Values("X-Forwarded-For"), ", ")
		if prior != "" {
			h.Set("X-Forwarded-For", prior+", "+peerText)
		} else {
			h.Set("X-Forwarded-For", peerText)
		}
		if h.Get("X-Forwarded-Proto") == "" {
			h.Set("X-Forwarded-Proto", scheme(r))
		}
		if h.Get("X-Forwarded-Host") == "" {
			h.Set("X-Forwarded-Host", r.Host)
		}
		return
	}
	// From an untrusted peer every claim about the client is a spoof.
	h.Del("Forwarded")
	h.Del("X-Real-Ip")
	// The three values share one array: one allocation, not three.
	vals := []string{scheme(r), r.Host, peerText}
	h["X-Forwarded-Proto"] = vals[0:1:1]
	h["X-Forwarded-Host"] = vals[1:2:2]
	if peer.IsValid() {
		h["X-Forwarded-For"] = vals[2:3:3]
	} else {
		delete(h, "X-Forwarded-For")
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// peerAddr parses the client's address from a RemoteAddr and returns it
// with its text form. A plain IPv4 address's text is the one in remote
// (the parser takes only its canonical form), so it costs no allocation.
func peerAddr(remote string) (netip.Addr, string) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, ""
	}
	if a.Is4() {
		return a, host
	}
	a = a.Unmap()
	return a, a.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// copyResponseHeader gives w the upstream's response headers without
// hop-by-hop headers and X-Accel-Buffering (an instruction to sluice, not
// to the client), and announces the upstream's trailers so HTTP/1.1
// chunked trailers reach HTTP/2 clients as trailers.
//
// res.Header is the transport's fresh map for this response and the
// caller drops it once the head is written, so it is edited in place and,
// where the response writer can take a map (sluice's HTTP/2 server,
// internal/xnet's AdoptHeader), handed over whole: three allocations and
// a map insert per field fewer per response. Otherwise its value slices
// are shared, not copied: dst is only ever changed by replacing a slice or
// appending to it, which never shows in res.Header. A quiet stream kept
// the copies for as long as it lasted.
func copyResponseHeader(w http.ResponseWriter, res *http.Response) {
	removeHopByHop(res.Header)
	delete(res.Header, "X-Accel-Buffering")
	if len(res.Trailer) > 0 {
		names := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			names = append(names, k)
		}
		res.Header["Trailer"] = []string{strings.Join(names, ", ")}
	}
	if a, ok := w.(headerAdopter); ok && a.AdoptHeader(res.Header) {
		return
	}
	dst := w.Header()
	for k, vv := range res.Header {
		dst[k] = vv
	}
}

// headerAdopter is a response writer that can take a header map whole.
type headerAdopter interface {
	AdoptHeader(h http.Header) bool
}

// requestReleaser is a response writer whose server can be told that the
// handler is done with its request (internal/xnet's ReleaseRequest).
type requestReleaser interface {
	ReleaseRequest()
}

// copyTrailers sets the upstream's trailers, known once its body has been
// read to the end, on the client response. If the upstream sent trailers
// it had not announced (announced counts those it had), all of them go out
// with http.TrailerPrefix, which net/http and x/net/http2 accept after the
// header is written.
func copyTrailers(dst http.Header, trailer http.Header, announced int) {
	if len(trailer) == announced {
		for k, vv := range trailer {
			dst[k] = vv
		}
		return
	}
	for k, vv := range trailer {
		for _, v := range vv {
			dst.Add(http.TrailerPrefix+k, v)
		}
	}
}
