package proxy

import (
	"net/http"
	"testing"
)

func TestChooseEncoding(t *testing.T) {
	for _, tc := range []struct {
		ae   []string
		want string
	}{
		{nil, ""},
		{[]string{"gzip"}, "gzip"},
		{[]string{"gzip, deflate, br, zstd"}, "zstd"},
		{[]string{"gzip, br"}, "br"},
		{[]string{"gzip;q=1.0, br;q=0.5"}, "gzip"},
		{[]string{"zstd;q=0, gzip"}, "gzip"},
		{[]string{"*"}, "zstd"},
		{[]string{"*;q=0.1, gzip;q=0.5"}, "gzip"},
		{[]string{"identity"}, ""},
		{[]string{"*;q=0"}, ""},
		{[]string{"GZIP"}, "gzip"},
		{[]string{"deflate", "br"}, "br"},
	} {
		if got := chooseEncoding(tc.ae); got != tc.want {
			t.Errorf("Accept-Encoding %q: %q, want %q", tc.ae, got, tc.want)
		}
	}
}

func TestCompressible(t *testing.T) {
	rule := &compressRule{types: []string{"text/*", "application/json"}, minLength: 100}
	res := func(status int, length int64, h ...string) *http.Response {
		r := &http.Response{StatusCode: status, ContentLength: length, Header: http.Header{}}
		for i := 0; i < len(h); i += 2 {
			r.Header.Set(h[i], h[i+1])
		}
		return r
	}
	get, _ := http.NewRequest("GET", "/", nil)
	head, _ := http.NewRequest("HEAD", "/", nil)
	for _, tc := range []struct {
		name string
		rule *compressRule
		req  *http.Request
		res  *http.Response
		want bool
	}{
		{"html", rule, get, res(200, 1000, "Content-Type", "text/html; charset=utf-8"), true},
		{"stream of unknown length", rule, get, res(200, -1, "Content-Type", "text/event-stream"), true},
		{"json", rule, get, res(200, 1000, "Content-Type", "application/json"), true},
		{"too short", rule, get, res(200, 99, "Content-Type", "text/html"), false},
		{"image", rule, get, res(200, 1000, "Content-Type", "image/png"), false},
		{"no type", rule, get, res(200, 1000), false},
		{"encoded", rule, get, res(200, 1000, "Content-Type", "text/html", "Content-Encoding", "br"), false},
		{"range", rule, get, res(206, 1000, "Content-Type", "text/html", "Content-Range", "bytes 0-999/5000"), false},
		{"no-transform", rule, get, res(200, 1000, "Content-Type", "text/html", "Cache-Control", "public, no-transform"), false},
		{"304", rule, get, res(304, -1, "Content-Type", "text/html"), false},
		{"204", rule, get, res(204, 0, "Content-Type", "text/html"), false},
		{"HEAD", rule, head, res(200, 1000, "Content-Type", "text/html"), false},
		{"off", nil, get, res(200, 1000, "Content-Type", "text/html"), false},
	} {
		if got := tc.rule.compressible(tc.req, tc.res); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
