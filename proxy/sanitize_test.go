package proxy

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

var testLimits = requestLimits{maxHeaderCount: 5, maxURILength: 32}

func TestCheckRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		l      requestLimits
		proto  int
		host   string
		uri    string
		header http.Header
		status int // 0: passes
	}{
		{"plain", testLimits, 1, "example.com", "/", http.Header{"Accept": {"*/*"}}, 0},
		{"host with port", testLimits, 2, "example.com:8443", "/", nil, 0},
		{"ipv6 host", testLimits, 2, "[::1]:8443", "/", nil, 0},
		{"uri at limit", testLimits, 1, "a", "/" + strings.Repeat("a", 31), nil, 0},
		{"uri over limit", testLimits, 1, "a", "/" + strings.Repeat("a", 32), nil, http.StatusRequestURITooLong},
		{"header count at limit", testLimits, 1, "a", "/", http.Header{"A": {"1", "2", "3"}, "B": {"1", "2"}}, 0},
		{"header count over limit", testLimits, 1, "a", "/", http.Header{"A": {"1", "2", "3"}, "B": {"1", "2", "3"}}, http.StatusRequestHeaderFieldsTooLarge},
		{"underscore refused", testLimits, 1, "a", "/", http.Header{"X_Forwarded_For": {"1.2.3.4"}}, http.StatusBadRequest},
		{"underscore allowed", requestLimits{allowUnderscores: true}, 1, "a", "/", http.Header{"X_Custom": {"1"}}, 0},
		{"cr in value", testLimits, 2, "a", "/", http.Header{"A": {"x\ry"}}, http.StatusBadRequest},
		{"lf in value", testLimits, 2, "a", "/", http.Header{"A": {"x\ny"}}, http.StatusBadRequest},
		{"nul in value", testLimits, 2, "a", "/", http.Header{"A": {"x\x00y"}}, http.StatusBadRequest},
		{"space in name", testLimits, 2, "a", "/", http.Header{"A b": {"x"}}, http.StatusBadRequest},
		{"crlf in host", testLimits, 2, "a\r\nX-Injected: 1", "/", nil, http.StatusBadRequest},
		{"userinfo in host", testLimits, 2, "evil.com@example.com", "/", nil, http.StatusBadRequest},
		{"slash in host", testLimits, 2, "example.com/x", "/", nil, http.StatusBadRequest},
		{"host equals authority", testLimits, 2, "example.com", "/", http.Header{"Host": {"EXAMPLE.com"}}, 0},
		{"host disagrees with authority", testLimits, 2, "example.com", "/", http.Header{"Host": {"evil.com"}}, http.StatusBadRequest},
		{"two hosts", testLimits, 2, "example.com", "/", http.Header{"Host": {"example.com", "example.com"}}, http.StatusBadRequest},
		{"h2 without authority", testLimits, 2, "", "/", nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, ok := checkRequest(tc.l, tc.proto, tc.host, tc.uri, tc.header)
			if ok != (tc.status == 0) || why.status != tc.status {
				t.Fatalf("got %v %v, want status %d", why, ok, tc.status)
			}
		})
	}
}

// A request that breaks several rules is refused for the first of: the
// count of fields, the host, a malformed field (one walk of the map finds
// the count and the malformed field together).
func TestCheckRequestReportsInOrder(t *testing.T) {
	for _, tc := range []struct {
		host   string
		header http.Header
		reason string
	}{
		{"a", http.Header{"A b": {"1", "2", "3"}, "B": {"1", "2", "3"}}, "more header fields than server.max_header_count"},
		{"a b", http.Header{"A b": {"1"}}, "invalid host"},
		{"a", http.Header{"A": {"x\x00"}}, "invalid header value"},
	} {
		why, ok := checkRequest(testLimits, 2, tc.host, "/", tc.header)
		if ok || why.reason != tc.reason {
			t.Errorf("host %q, header %v: refused %v (%q), want %q", tc.host, tc.header, !ok, why.reason, tc.reason)
		}
	}
}

// FuzzCheckRequest feeds arbitrary header blocks, hosts and targets to
// the sanitiser and checks that whatever it lets through is clean.
func FuzzCheckRequest(f *testing.F) {
	f.Add("Accept: */*\r\nUser-Agent: curl", "example.com", "/", false)
	f.Add("X_Forwarded_For: 1.2.3.4", "example.com:443", "/a?b=c", false)
	f.Add("Host: evil.com", "example.com", "/", true)
	f.Add("A: x\ny\r\nB: \x00", "a\rb", "/"+strings.Repeat("x", 40), true)
	f.Fuzz(func(t *testing.T, block, host, uri string, underscores bool) {
		l := requestLimits{maxHeaderCount: 8, maxURILength: 64, allowUnderscores: underscores}
		h := http.Header{}
		for _, line := range strings.Split(block, "\r\n") {
			name, value, _ := strings.Cut(line, ":")
			h[name] = append(h[name], strings.TrimLeft(value, " "))
		}
		why, ok := checkRequest(l, 2, host, uri, h)
		if !ok {
			if why.status < 400 || why.status > 499 || why.reason == "" {
				t.Fatalf("bad refusal %v", why)
			}
			return
		}
		if len(uri) > l.maxURILength {
			t.Fatalf("uri of %d bytes passed", len(uri))
		}
		if host == "" || strings.ContainsAny(host, "\r\n\x00 /@") {
			t.Fatalf("host %q passed", host)
		}
		n := 0
		for name, vv := range h {
			n += len(vv)
			if !httpguts.ValidHeaderFieldName(name) || (!underscores && strings.Contains(name, "_")) {
				t.Fatalf("header name %q passed", name)
			}
			for _, v := range vv {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("header value %q passed", v)
				}
			}
			if name == "Host" && !strings.EqualFold(vv[0], host) {
				t.Fatalf("host %q beside :authority %q passed", vv[0], host)
			}
		}
		if n > l.maxHeaderCount {
			t.Fatalf("%d header fields passed", n)
		}
	})
}
