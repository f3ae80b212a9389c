package integration

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	sluicetls "github.com/sluiceproxy/sluice/tls"
)

// freePort returns a loopback TCP port that was free a moment ago. Only
// for ports Pebble must know before sluice starts: the ports it connects
// to for HTTP-01 and TLS-ALPN-01 validation, and its own listeners.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testDNS serves A 127.0.0.1 for every name except those in nxdomain, on
// a loopback UDP port, so that Pebble's validation of a test name reaches
// sluice. It returns the server's address.
func testDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// pebble is a running Pebble ACME server on loopback.
type pebble struct {
	t         *testing.T
	dir       string // ACME directory URL
	mgmt      string // management API base URL
	caRoot    string // PEM file of the certificate of Pebble's own HTTPS
	httpPort  int    // where Pebble validates HTTP-01
	tlsPort   int    // where Pebble validates TLS-ALPN-01
	apiClient *http.Client
	mu        sync.Mutex
	log       bytes.Buffer
}

// startPebble runs Pebble with real validation (no always-valid) against
// names resolved by a test DNS server; blocked names are refused.
func startPebble(t *testing.T, blocked ...string) *pebble {
	t.Helper()
	dir := t.TempDir()
	cert, err := sluicetls.SelfSigned([]string{"localhost", "127.0.0.1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "pebble.crt"), filepath.Join(dir, "pebble.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	pb := &pebble{t: t, caRoot: certFile, httpPort: freePort(t), tlsPort: freePort(t)}
	listen, mgmt := freePort(t), freePort(t)
	if blocked == nil {
		blocked = []string{}
	}
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                pb.httpPort,
		"tlsPort":                 pb.tlsPort,
		"ocspResponderURL":        "",
		"domainBlocklist":         blocked,
	}})
	confFile := filepath.Join(dir, "pebble.json")
	os.WriteFile(confFile, conf, 0o600)

	cmd := exec.Command("pebble", "-config", confFile, "-dnsserver", testDNS(t))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pebble (Debian package pebble, installed by .ci/run): %v", err)
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			pb.mu.Lock()
			pb.log.Write(sc.Bytes())
			pb.log.WriteByte('\n')
			pb.mu.Unlock()
			if strings.Contains(sc.Text(), "ACME directory available at") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", pb.logText())
		}
	})
	select {
	case <-ready:
	case <-done:
		t.Fatalf("pebble exited:\n%s", pb.logText())
	case <-time.After(10 * time.Second):
		t.Fatalf("pebble not ready within 10s:\n%s", pb.logText())
	}
	pb.dir = fmt.Sprintf("https://127.0.0.1:%d/dir", listen)
	pb.mgmt = fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	pb.apiClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return pb
}

func (pb *pebble) logText() string {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return pb.log.String()
}

// orders counts the orders Pebble has accepted.
func (pb *pebble) orders() int { return strings.Count(pb.logText(), "Added order") }

// issued counts the certificates Pebble has issued.
func (pb *pebble) issued() int { return strings.Count(pb.logText(), "Issued certificate serial") }

// roots returns a pool holding only Pebble's issuing root, fetched from
// its management API (it is made anew at each start).
func (pb *pebble) roots() *x509.CertPool {
	pb.t.Helper()
	res, err := pb.apiClient.Get(pb.mgmt + "/roots/0")
	if err != nil {
		pb.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		pb.t.Fatalf("pebble /roots/0 gave no certificate: %q", body)
	}
	return pool
}
