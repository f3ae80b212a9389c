package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Raw is a hand-driven HTTP/2 client connection: frames are written
// exactly as the test says, as an attacker would.
type h2Raw struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	wmu  sync.Mutex
}

// dialH2 opens a TLS connection with ALPN h2, sends the preface and the
// given SETTINGS, and acknowledges the server's.
func dialH2(t *testing.T, p *sluiceProc, settings ...http2.Setting) *h2Raw {
	t.Helper()
	cfg := p.tlsConfig()
	cfg.NextProtos = []string{"h2"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatal("h2 not negotiated")
	}
	h := &h2Raw{t: t, conn: c, fr: http2.NewFramer(c, c)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.hbuf)
	io.WriteString(c, http2.ClientPreface)
	h.fr.WriteSettings(settings...)
	return h
}

// headers encodes a request header block.
func (h *h2Raw) headers(fields ...string) []byte {
	h.hbuf.Reset()
	for i := 0; i < len(fields); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), h.hbuf.Bytes()...)
}

func (h *h2Raw) request(id uint32, path string, endStream bool, extra ...string) {
	blk := h.headers(append([]string{":method", "GET", ":scheme", "https", ":path", path, ":authority", "localhost"}, extra...)...)
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: endStream, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
}

// readUntil reads frames (acknowledging SETTINGS) until done returns true,
// the connection ends, or the deadline passes. It returns the error that
// ended the read, if any.
func (h *h2Raw) readUntil(d time.Duration, done func(http2.Frame) bool) error {
	h.conn.SetReadDeadline(time.Now().Add(d))
	defer h.conn.SetReadDeadline(time.Time{})
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return err
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			h.wmu.Lock()
			h.fr.WriteSettingsAck()
			h.wmu.Unlock()
		}
		if done(f) {
			return nil
		}
	}
}

// status waits for the response headers on stream id and returns their
// :status, or "RST_STREAM <code>".
func (h *h2Raw) status(id uint32, d time.Duration) string {
	h.t.Helper()
	got := ""
	err := h.readUntil(d, func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				got = f.PseudoValue("status")
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				got = "RST_STREAM " + f.ErrCode.String()
			}
		case *http2.GoAwayFrame:
			got = "GOAWAY " + f.ErrCode.String()
		}
		return got != ""
	})
	if got == "" {
		h.t.Fatalf("no answer on stream %d: %v", id, err)
	}
	return got
}

func TestRequestLimits(t *testing.T) {
	rec := newRecorder(t, nil)
	p := startSluice(t, `server:
  max_header_count: 20
  max_uri_length: 512
routes:
`+route("small", "/small", rec.url, "max_request_body: 1KiB")+route("app", "/", rec.url))
	h1, h2c := p.h1Client(), p.h2Client()

	many := http.Header{}
	for i := range 21 {
		many.Set(fmt.Sprintf("X-H%d", i), "v")
	}
	for name, c := range map[string]*http.Client{"http1": h1, "http2": h2c} {
		t.Run(name, func(t *testing.T) {
			do := func(method, path string, h http.Header, body io.Reader) int {
				t.Helper()
				req, _ := http.NewRequest(method, p.url(path), body)
				for k, v := range h {
					req.Header[k] = v
				}
				res, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode
			}
			before := rec.requests.Load()
			if s := do("GET", "/count", many, nil); s != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("21 header fields: %d, want 431", s)
			}
			if s := do("GET", "/"+strings.Repeat("u", 600), nil, nil); s != http.StatusRequestURITooLong {
				t.Errorf("long uri: %d, want 414", s)
			}
			if s := do("POST", "/small/cl", nil, bytes.NewReader(make([]byte, 2000))); s != http.StatusRequestEntityTooLarge {
				t.Errorf("body with Content-Length over max_request_body: %d, want 413", s)
			}
			if rec.requests.Load() != before {
				t.Errorf("refused requests reached the upstream: %v", rec.paths())
			}
			// Without a Content-Length the limit is found while streaming.
			if s := do("POST", "/small/stream", nil, io.MultiReader(bytes.NewReader(make([]byte, 3000)))); s != http.StatusRequestEntityTooLarge {
				t.Errorf("streamed body over max_request_body: %d, want 413", s)
			}
			if s := do("POST", "/small/ok", nil, bytes.NewReader(make([]byte, 1000))); s != 200 {
				t.Errorf("body under the limit: %d", s)
			}
			if s := do("POST", "/big", nil, bytes.NewReader(make([]byte, 100000))); s != 200 {
				t.Errorf("route without a body limit: %d", s)
			}
		})
	}
	l := p.accessLine("/count", 5*time.Second)
	if l["close_reason"] != "refused" || l["status"] != float64(431) {
		t.Errorf("access line: %v", l)
	}
}

func TestHeaderTrust(t *testing.T) {
	rec := newRecorder(t, nil)
	p := startSluice(t, "routes:\n"+route("app", "/", rec.url))
	last := func() *http.Request {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.seen[len(rec.seen)-1]
	}

	t.Run("spoofed forwarding headers replaced", func(t *testing.T) {
		for _, c := range []*http.Client{p.h1Client(), p.h2Client()} {
			req, _ := http.NewRequest("GET", p.url("/xff"), nil)
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			req.Header.Set("X-Real-IP", "6.6.6.6")
			req.Header.Set("Forwarded", "for=6.6.6.6")
			req.Header.Set("X-Forwarded-Proto", "http")
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			up := last()
			if got := up.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For upstream: %q", got)
			}
			if up.Header.Get("X-Real-Ip") != "" || up.Header.Get("Forwarded") != "" || up.Header.Get("X-Forwarded-Proto") != "https" {
				t.Errorf("spoofed headers passed: %v", up.Header)
			}
		}
	})

	t.Run("underscore in header name refused", func(t *testing.T) {
		for _, c := range []*http.Client{p.h1Client(), p.h2Client()} {
			before := rec.requests.Load()
			req, _ := http.NewRequest("GET", p.url("/underscore"), nil)
			req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 400 || rec.requests.Load() != before {
				t.Errorf("status %d, upstream requests +%d", res.StatusCode, rec.requests.Load()-before)
			}
		}
	})

	t.Run("host and authority disagree", func(t *testing.T) {
		before := rec.requests.Load()
		h := dialH2(t, p)
		h.request(1, "/authority", true, "host", "evil.example")
		// x/net or sluice's sanitiser refuses it, either way.
		if s := h.status(1, 5*time.Second); s != "400" && s != "RST_STREAM PROTOCOL_ERROR" {
			t.Errorf("got %s, want 400 or RST_STREAM PROTOCOL_ERROR", s)
		}
		h.request(3, "/authority", true, "host", "localhost")
		if s := h.status(3, 5*time.Second); s != "200" {
			t.Errorf("agreeing host: got %s, want 200", s)
		}
		if got := rec.requests.Load() - before; got != 1 {
			t.Errorf("upstream saw %d requests, want 1", got)
		}
	})

	t.Run("CR LF in host refused", func(t *testing.T) {
		// Over HTTP/2 x/net refuses the field itself; over HTTP/1.1
		// the head filter does (TestRequestFramingRefused "CR in host").
		h := dialH2(t, p)
		h.request(1, "/crlf", true, "host", "localhost\r\nX-Injected: 1")
		if s := h.status(1, 5*time.Second); s != "RST_STREAM PROTOCOL_ERROR" && s != "400" {
			t.Errorf("got %s", s)
		}
	})

	t.Run("upgrade h2c never switches", func(t *testing.T) {
		before := rec.requests.Load()
		out, _ := rawH1(t, p, "GET /h2c HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", 2*time.Second)
		if strings.HasPrefix(out, "HTTP/1.1 101") || !strings.HasPrefix(out, "HTTP/1.1 200") {
			t.Fatalf("response:\n%s", out)
		}
		if rec.requests.Load() != before+1 {
			t.Fatal("request not forwarded")
		}
		up := last()
		if up.Header.Get("Upgrade") != "" || up.Header.Get("Http2-Settings") != "" {
			t.Errorf("upgrade headers reached the upstream: %v", up.Header)
		}
	})
}

// TestConnectionLimits opens connections up to server.max_connections
// and server.max_connections_per_ip: the next one is closed at once and
// logged; after one closes, a new one is served.
func TestConnectionLimits(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	for _, tc := range []struct{ key, conf string }{
		{"server.max_connections", "server: { max_connections: 3 }\n"},
		{"server.max_connections_per_ip", "server: { max_connections_per_ip: 3 }\n"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			p := startSluice(t, tc.conf+"routes:\n"+route("app", "/", up))
			dial := func() (*tls.Conn, error) {
				cfg := p.tlsConfig()
				cfg.NextProtos = []string{"http/1.1"}
				return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.addr, cfg)
			}
			var open []*tls.Conn
			for range 3 {
				c, err := dial()
				if err != nil {
					t.Fatalf("connection under the limit: %v", err)
				}
				open = append(open, c)
			}
			if c, err := dial(); err == nil {
				c.Close()
				t.Fatal("connection over the limit was served")
			}
			p.waitLog(5*time.Second, func(l map[string]any) bool {
				return l["msg"] == "connection limit reached: refusing new connections" && l["limit"] == tc.key
			})
			open[0].Close()
			// The slot comes back once sluice has seen the close.
			deadline := time.Now().Add(5 * time.Second)
			for {
				c, err := dial()
				if err == nil {
					io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
					b, _ := io.ReadAll(c)
					c.Close()
					if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
						t.Fatalf("after a slot freed: %q", b)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no slot after a connection closed: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, c := range open[1:] {
				c.Close()
			}
		})
	}
}

// TestConcurrentStreamsBounded opens more streams than
// server.max_concurrent_streams on one connection, against an upstream
// that holds every request: the extra ones are refused and the upstream
// never sees more than the limit at once.
func TestConcurrentStreamsBounded(t *testing.T) {
	var cur, peak atomic.Int64
	release := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := startSluice(t, "server: { max_concurrent_streams: 4 }\nroutes:\n"+route("app", "/", rec.url))
	h := dialH2(t, p)
	// Let the server's SETTINGS (with the limit) be acknowledged first.
	h.readUntil(2*time.Second, func(f http2.Frame) bool { _, ok := f.(*http2.SettingsFrame); return ok })
	var refused int
	for i := range 10 {
		h.request(uint32(2*i+1), "/hold", true)
	}
	h.readUntil(5*time.Second, func(f http2.Frame) bool {
		if rst, ok := f.(*http2.RSTStreamFrame); ok && (rst.ErrCode == http2.ErrCodeRefusedStream || rst.ErrCode == http2.ErrCodeProtocol) {
			refused++
		}
		return refused == 6
	})
	if refused != 6 {
		t.Errorf("%d streams refused, want 6", refused)
	}
	close(release)
	if pk := peak.Load(); pk > 4 {
		t.Errorf("upstream saw %d requests at once, limit 4", pk)
	}
}
