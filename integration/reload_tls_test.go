package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sluicetls "github.com/sluiceproxy/sluice/tls"
)

func writeCertPEM(t *testing.T, c tls.Certificate, certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A reload reads the certificate files again: a renewed certificate is
// served to new connections, open ones go on, and a broken file is
// refused.
func TestReloadCertificates(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	var certs [2]tls.Certificate
	pool := x509.NewCertPool()
	for i := range certs {
		c, err := sluicetls.SelfSigned([]string{"localhost", "127.0.0.1"}, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certs[i] = c
		pool.AddCert(c.Leaf)
	}
	dir := t.TempDir()
	tc := testCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: pool}
	writeCertPEM(t, certs[0], tc.certFile, tc.keyFile)
	p := startSluiceConfig(t, headerAdmin(tc, "127.0.0.1:0")+"routes:\n"+route("app", "/", up), tc)
	admin := p.listenerAddr("admin", 1)

	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := served(); got != certs[0].Leaf.SerialNumber.String() {
		t.Fatalf("serving serial %s, want the first certificate", got)
	}
	client := p.h2Client()
	if code, _ := getText(t, client, p.url("/")); code != 200 {
		t.Fatal(code)
	}

	writeCertPEM(t, certs[1], tc.certFile, tc.keyFile)
	p.signal(syscall.SIGHUP)
	p.waitNth(1, 10*time.Second, "config reloaded")
	if got := served(); got != certs[1].Leaf.SerialNumber.String() {
		t.Fatalf("after reload serving serial %s, want the renewed certificate", got)
	}
	// The HTTP/2 connection opened before the reload still serves.
	if code, _ := getText(t, client, p.url("/")); code != 200 {
		t.Fatal(code)
	}
	_, body := getText(t, nil, "http://"+admin+"/metrics")
	want := fmt.Sprintf(`sluice_certificate_expiry_timestamp_seconds{name="localhost"} %g`, float64(certs[1].Leaf.NotAfter.Unix()))
	if !strings.Contains(body, want) {
		t.Fatalf("metrics lack %q", want)
	}

	if err := os.WriteFile(tc.keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	l := p.waitNth(1, 10*time.Second, "reload refused: the running config stays")
	if !strings.Contains(fmt.Sprint(l["error"]), "tls.certificates[0]") {
		t.Fatalf("refusal does not name the certificate: %v", l["error"])
	}
	if got := served(); got != certs[1].Leaf.SerialNumber.String() {
		t.Fatalf("after a refused reload serving serial %s", got)
	}
}
