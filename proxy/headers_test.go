package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"
)

func TestPrepareRequestHeader(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	newReq := func(remote string, kv ...string) *http.Request {
		r := httptest.NewRequest("GET", "https://example.com/x", nil)
		r.RemoteAddr = remote
		for i := 0; i < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
		return r
	}

	t.Run("hop-by-hop and Connection tokens removed", func(t *testing.T) {
		r := newReq("192.0.2.1:5000",
			"Connection", "keep-alive, X-Secret", "X-Secret", "1", "Keep-Alive", "timeout=5",
			"Proxy-Authorization", "Basic x", "Te", "trailers, gzip", "Upgrade", "h2c",
			"Http2-Settings", "AAA", "Transfer-Encoding", "chunked", "X-Keep", "yes")
		h := r.Header.Clone()
		prepareRequestHeader(h, r, "", nil)
		for _, name := range []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Authorization", "Upgrade", "Http2-Settings", "Transfer-Encoding"} {
			if _, ok := h[name]; ok {
				t.Errorf("%s forwarded", name)
			}
		}
		if h.Get("Te") != "trailers" || h.Get("X-Keep") != "yes" {
			t.Errorf("Te %q, X-Keep %q", h.Get("Te"), h.Get("X-Keep"))
		}
	})
	t.Run("untrusted peer: spoofed forwarding headers replaced", func(t *testing.T) {
		r := newReq("192.0.2.1:5000", "X-Forwarded-For", "1.2.3.4", "X-Forwarded-Proto", "http",
			"X-Forwarded-Host", "evil.com", "Forwarded", "for=1.2.3.4", "X-Real-Ip", "1.2.3.4")
		h := r.Header.Clone()
		prepareRequestHeader(h, r, "", trusted)
		want := http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"example.com"}, "User-Agent": {""}}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("got %v\nwant %v", h, want)
		}
	})
	t.Run("trusted peer: chain kept and extended", func(t *testing.T) {
		r := newReq("10.1.2.3:5000", "X-Forwarded-For", "198.51.100.7", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "shop.example")
		h := r.Header.Clone()
		prepareRequestHeader(h, r, "", trusted)
		if got := h.Get("X-Forwarded-For"); got != "198.51.100.7, 10.1.2.3" {
			t.Errorf("X-Forwarded-For %q", got)
		}
		if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") != "shop.example" {
			t.Errorf("trusted proto/host replaced: %v", h)
		}
	})
	t.Run("IPv4-mapped peer matches IPv4 prefix", func(t *testing.T) {
		r := newReq("[::ffff:10.0.0.9]:5000", "X-Forwarded-For", "198.51.100.7")
		h := r.Header.Clone()
		prepareRequestHeader(h, r, "", trusted)
		if got := h.Get("X-Forwarded-For"); got != "198.51.100.7, 10.0.0.9" {
			t.Errorf("X-Forwarded-For %q", got)
		}
	})
	t.Run("websocket upgrade put back", func(t *testing.T) {
		r := newReq("192.0.2.1:5000", "Connection", "Upgrade", "Upgrade", "websocket")
		h := r.Header.Clone()
		prepareRequestHeader(h, r, "websocket", nil)
		if h.Get("Connection") != "Upgrade" || h.Get("Upgrade") != "websocket" {
			t.Errorf("upgrade headers: %v", h)
		}
	})
}

func TestCopyResponseHeader(t *testing.T) {
	res := &http.Response{
		Header: http.Header{
			"Connection":        {"close, X-Hop"},
			"X-Hop":             {"1"},
			"Keep-Alive":        {"timeout=5"},
			"X-Accel-Buffering": {"no"},
			"Content-Type":      {"text/plain"},
			"Trailer":           {"X-Checksum"},
		},
		Trailer: http.Header{"X-Checksum": nil},
	}
	rec := httptest.NewRecorder()
	copyResponseHeader(rec, res)
	dst := rec.Header()
	want := http.Header{"Content-Type": {"text/plain"}, "Trailer": {"X-Checksum"}}
	if !reflect.DeepEqual(dst, want) {
		t.Errorf("got %v, want %v", dst, want)
	}

	announced := http.Header{}
	copyTrailers(announced, http.Header{"X-Checksum": {"abc"}}, 1)
	if announced.Get("X-Checksum") != "abc" {
		t.Errorf("announced trailer: %v", announced)
	}
	surprise := http.Header{}
	copyTrailers(surprise, http.Header{"X-Checksum": {"abc"}, "X-Extra": {"1"}}, 1)
	if surprise.Get(http.TrailerPrefix+"X-Extra") != "1" || surprise.Get(http.TrailerPrefix+"X-Checksum") != "abc" {
		t.Errorf("unannounced trailers: %v", surprise)
	}
}

// TestCopyResponseHeaderShared: the value slices are shared with the
// upstream response, and what writeHead adds to dst afterwards (the
// sticky cookie, Vary, a weakened ETag) does not show in res.Header.
func TestCopyResponseHeaderShared(t *testing.T) {
	cookies := make([]string, 1, 4) // spare capacity, as append leaves it
	cookies[0] = "a=1"
	res := &http.Response{Header: http.Header{
		"Set-Cookie": cookies,
		"Vary":       {"Origin"},
		"Etag":       {`"x"`},
	}}
	rec := httptest.NewRecorder()
	copyResponseHeader(rec, res)
	dst := rec.Header()
	if &dst["Set-Cookie"][0] != &cookies[0] {
		t.Fatal("value slice copied, want shared")
	}
	dst.Add("Set-Cookie", "sluice=b")
	dst.Add("Vary", "Accept-Encoding")
	dst.Set("Etag", `W/"x"`)
	want := http.Header{"Set-Cookie": {"a=1"}, "Vary": {"Origin"}, "Etag": {`"x"`}}
	if !reflect.DeepEqual(res.Header, want) {
		t.Errorf("upstream header changed to %v", res.Header)
	}
	if got := dst.Values("Set-Cookie"); len(got) != 2 || got[1] != "sluice=b" {
		t.Errorf("client Set-Cookie %v", got)
	}
}

// removeHopByHop deletes the fixed list by key, so every entry must be in
// the canonical form http.Header keys have.
func TestHopHeadersAreCanonical(t *testing.T) {
	for _, h := range hopHeaders {
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("hop-by-hop header %q is not canonical (%q)", h, c)
		}
	}
}

// TestPeerAddrText checks that the text peerAddr returns without
// allocating is the address's own text form, for every shape of
// RemoteAddr.
func TestPeerAddrText(t *testing.T) {
	for _, remote := range []string{"192.0.2.1:5000", "10.0.0.9", "[::1]:443", "[::ffff:10.0.0.9]:80", "[fe80::1%eth0]:80", "[2001:db8::1]:1"} {
		a, text := peerAddr(remote)
		if !a.IsValid() || text != a.String() {
			t.Errorf("%s: %v %q", remote, a, text)
		}
	}
	for _, bad := range []string{"", "host:80", "01.2.3.4:80", "[::1"} {
		if a, text := peerAddr(bad); a.IsValid() || text != "" {
			t.Errorf("%q: %v %q, want nothing", bad, a, text)
		}
	}
}

// adoptingWriter is a response writer that takes a header map whole, as
// sluice's HTTP/2 server does.
type adoptingWriter struct {
	*httptest.ResponseRecorder
	adopted http.Header
}

func (w *adoptingWriter) AdoptHeader(h http.Header) bool {
	if w.adopted != nil {
		return false
	}
	w.adopted = h
	return true
}

// TestCopyResponseHeaderAdopted: a writer that can take the map gets the
// upstream's, cleaned, and nothing is copied into its own Header().
func TestCopyResponseHeaderAdopted(t *testing.T) {
	res := &http.Response{
		Header: http.Header{
			"Connection":        {"close, X-Hop"},
			"X-Hop":             {"1"},
			"X-Accel-Buffering": {"no"},
			"Content-Type":      {"text/plain"},
		},
		Trailer: http.Header{"X-Checksum": nil},
	}
	upstream := res.Header
	w := &adoptingWriter{ResponseRecorder: httptest.NewRecorder()}
	copyResponseHeader(w, res)
	want := http.Header{"Content-Type": {"text/plain"}, "Trailer": {"X-Checksum"}}
	if !reflect.DeepEqual(w.adopted, want) {
		t.Errorf("adopted %v, want %v", w.adopted, want)
	}
	if reflect.ValueOf(w.adopted).UnsafePointer() != reflect.ValueOf(upstream).UnsafePointer() {
		t.Error("the map was copied, want the upstream's handed over")
	}
	if len(w.ResponseRecorder.Header()) != 0 {
		t.Errorf("copied into Header() too: %v", w.ResponseRecorder.Header())
	}
	// A writer whose header is already in use gets a copy.
	res.Header = http.Header{"Content-Type": {"text/html"}}
	copyResponseHeader(w, res)
	if w.ResponseRecorder.Header().Get("Content-Type") != "text/html" {
		t.Errorf("refused adoption did not copy: %v", w.ResponseRecorder.Header())
	}
}
