package h2

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
	sluicetls "github.com/sluiceproxy/sluice/tls"
)

func newTestServer(t *testing.T, listen config.Listen, admin string) *Server {
	t.Helper()
	tc, err := sluicetls.NewConfig(nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	s, err := New(Options{
		Listen: listen, Limits: cfg.Server, TLS: tc, Log: zap.NewNop(),
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "proxy") }),
		AdminAddr: admin,
		AdminHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "admin")
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(listen); err != nil {
		t.Fatal(err)
	}
	s.Serve()
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusPermanentRedirect {
		return "redirect " + res.Header.Get("Location")
	}
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err != nil
}

func TestPrepareCommitMovesOnlyChangedListeners(t *testing.T) {
	s := newTestServer(t, config.Listen{HTTPS: "127.0.0.1:0"}, "127.0.0.1:0")
	https, plain := s.Addrs()
	admin := s.Addr(NameAdmin)
	if plain != "" || !s.Serving() {
		t.Fatalf("plain %q serving %v", plain, s.Serving())
	}

	// The http listener turns on, admin moves, https stays.
	c, err := s.Prepare(config.Listen{HTTPS: "127.0.0.1:0", HTTP: "127.0.0.1:0"}, "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	// Before Commit, the old admin still serves.
	if got := get(t, "http://"+admin+"/"); got != "admin" {
		t.Fatalf("old admin before commit: %q", got)
	}
	c.Commit()
	https2, plain2 := s.Addrs()
	admin2 := s.Addr(NameAdmin)
	if https2 != https {
		t.Fatalf("https moved from %s to %s", https, https2)
	}
	if got := get(t, "https://"+https2+"/"); got != "proxy" {
		t.Fatalf("https: %q", got)
	}
	_, port, _ := net.SplitHostPort(https)
	if got := get(t, "http://"+plain2+"/p"); got != "redirect https://127.0.0.1:"+port+"/p" {
		t.Fatalf("plain: %q", got)
	}
	if got := get(t, "http://"+admin2+"/"); got != "admin" || admin2 == admin {
		t.Fatalf("admin at %s: %q", admin2, got)
	}
	if !refused(admin) {
		t.Fatalf("old admin %s still accepts", admin)
	}

	// An address that cannot be bound refuses the change: nothing moves.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := s.Prepare(config.Listen{HTTPS: "127.0.0.1:0", HTTP: "127.0.0.1:0"}, busy.Addr().String()); err == nil {
		t.Fatal("Prepare bound a busy address")
	}
	if got := get(t, "http://"+admin2+"/"); got != "admin" {
		t.Fatalf("admin after a refused change: %q", got)
	}

	// Abort closes what Prepare bound.
	c, err = s.Prepare(config.Listen{HTTPS: "127.0.0.1:0"}, "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	pending := c.lns[2].Addr().String()
	c.Abort()
	if !refused(pending) {
		t.Fatalf("aborted listener %s still accepts", pending)
	}
	if got := get(t, "http://"+admin2+"/"); got != "admin" {
		t.Fatalf("admin after abort: %q", got)
	}
	if _, plain3 := s.Addrs(); plain3 != plain2 {
		t.Fatalf("plain moved on abort: %s -> %s", plain2, plain3)
	}
}

func TestSetTLSSwapsCertificatesForNewConnections(t *testing.T) {
	s := newTestServer(t, config.Listen{HTTPS: "127.0.0.1:0"}, "")
	https, _ := s.Addrs()
	leaf := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", https, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st := c.ConnectionState()
		if st.NegotiatedProtocol != "h2" {
			t.Fatalf("ALPN %q after SetTLS, want h2", st.NegotiatedProtocol)
		}
		return st.PeerCertificates[0].SerialNumber.String()
	}
	before := leaf()
	tc, err := sluicetls.NewConfig(nil, zap.NewNop()) // a new self-signed certificate
	if err != nil {
		t.Fatal(err)
	}
	s.SetTLS(tc)
	after := leaf()
	if after == before || after != tc.Certificates[0].Leaf.SerialNumber.String() {
		t.Fatalf("serial %s before, %s after SetTLS, want %s", before, after, tc.Certificates[0].Leaf.SerialNumber)
	}
}
