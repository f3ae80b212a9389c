package h2

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRedirect(t *testing.T) {
	for _, c := range []struct {
		port, host, uri, want string
		status                int
	}{
		{"8443", "example.com", "/a?b=c", "https://example.com:8443/a?b=c", 308},
		{"443", "example.com:80", "/", "https://example.com/", 308},
		{"443", "[::1]:80", "/x", "https://[::1]/x", 308},
		{"8443", "[::1]:80", "/x", "https://[::1]:8443/x", 308},
		{"443", "evil.com/@x", "/", "", 400},
		{"443", "", "/", "", 400},
	} {
		s := &Server{}
		s.httpsPort.Store(&c.port)
		r := httptest.NewRequest("GET", "http://placeholder"+c.uri, nil)
		r.Host = c.host
		w := httptest.NewRecorder()
		s.redirect(w, r)
		if w.Code != c.status || w.Header().Get("Location") != c.want {
			t.Errorf("host %q uri %q: %d %q, want %d %q", c.host, c.uri, w.Code, w.Header().Get("Location"), c.status, c.want)
		}
	}
	_ = http.StatusPermanentRedirect
}
