package tls

import (
	"context"
	stdtls "crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
)

func TestACMEFilesWinForTheirNames(t *testing.T) {
	file, err := SelfSigned([]string{"files.example.com", "*.wild.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := &config.ACME{
		CA:         "https://127.0.0.1:1/dir",
		Storage:    t.TempDir(),
		Names:      []string{"files.example.com", "x.wild.example.com", "acme.example.com"},
		Challenges: []string{config.ChallengeTLSALPN01},
	}
	m, err := NewACME(a, config.Listen{HTTPS: "127.0.0.1:8443"}, []stdtls.Certificate{file}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if want := []string{"acme.example.com"}; !slices.Equal(m.Names(), want) {
		t.Fatalf("managed %v, want %v: names covered by files are not requested", m.Names(), want)
	}

	tc := &stdtls.Config{NextProtos: []string{"h2", "http/1.1"}}
	m.Apply(tc)
	if !slices.Contains(tc.NextProtos, "acme-tls/1") {
		t.Fatalf("NextProtos %v lack acme-tls/1 (TLS-ALPN-01)", tc.NextProtos)
	}
	hello := func(name string, protos ...string) *stdtls.ClientHelloInfo {
		if protos == nil {
			protos = []string{"h2"}
		}
		return &stdtls.ClientHelloInfo{
			ServerName: name, SupportedProtos: protos,
			SupportedVersions: []uint16{stdtls.VersionTLS13},
			SignatureSchemes:  []stdtls.SignatureScheme{stdtls.ECDSAWithP256AndSHA256},
			SupportedCurves:   []stdtls.CurveID{stdtls.CurveP256},
			Conn:              fakeConn{},
		}
	}
	for _, name := range []string{"files.example.com", "x.wild.example.com"} {
		got, err := tc.GetCertificate(hello(name))
		if err != nil || got == nil || got.Leaf != file.Leaf {
			t.Fatalf("%s: got %v, %v; want the file certificate", name, got, err)
		}
	}
	// A name without file or ACME certificate yet: certmagic answers, not
	// the file certificate.
	if got, err := tc.GetCertificate(hello("acme.example.com")); err == nil && got != nil && got.Leaf == file.Leaf {
		t.Fatal("acme.example.com got the file certificate")
	}
	// A TLS-ALPN-01 validation handshake always goes to certmagic, even
	// for a name a file covers.
	if got, _ := tc.GetCertificate(hello("files.example.com", "acme-tls/1")); got != nil && got.Leaf == file.Leaf {
		t.Fatal("TLS-ALPN-01 handshake got the file certificate")
	}
}

func TestAskDecision(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("domain") != "allowed.example.com" {
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	decide := askDecision(srv.URL + "/check")
	if err := decide(context.Background(), "allowed.example.com"); err != nil {
		t.Fatalf("allowed name refused: %v", err)
	}
	if err := decide(context.Background(), "other.example.com"); err == nil {
		t.Fatal("refused name allowed")
	}
}

type fakeConn struct{ net.Conn }

func (fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
