// Package integration drives the real sluice binary, built once per test
// run, with real configs on :0 ports, in front of real upstreams, with
// real clients (a Go HTTP/2 client, curl).
package integration

import (
	"bufio"
	"bytes"
	"context"
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
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	sluicetls "github.com/sluiceproxy/sluice/tls"
)

var (
	sluiceBin string
	// workDir holds the binary and the shared test certificate; TestMain
	// removes it, so runs leave nothing behind in the temp directory.
	workDir   string
	raceBuild = os.Getenv("SLUICE_RACE") == "1"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	sluiceBin = filepath.Join(dir, "sluice")
	args := []string{"build", "-o", sluiceBin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/sluice")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testCert is a certificate for localhost and 127.0.0.1 written to PEM
// files, with a pool that trusts exactly it.
type testCert struct {
	certFile, keyFile string
	pool              *x509.CertPool
}

var (
	certOnce   sync.Once
	sharedCert testCert
)

func newTestCert(t *testing.T) testCert {
	certOnce.Do(func() {
		c, err := sluicetls.SelfSigned([]string{"localhost", "127.0.0.1", "example.com", "*.example.com"}, 24*time.Hour)
		if err != nil {
			panic(err)
		}
		dir, err := os.MkdirTemp(workDir, "cert-")
		if err != nil {
			panic(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			panic(err)
		}
		sharedCert.certFile = filepath.Join(dir, "cert.pem")
		sharedCert.keyFile = filepath.Join(dir, "key.pem")
		os.WriteFile(sharedCert.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
		os.WriteFile(sharedCert.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
		sharedCert.pool = x509.NewCertPool()
		sharedCert.pool.AddCert(c.Leaf)
	})
	return sharedCert
}

// sluiceProc is a running sluice binary.
type sluiceProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	cert    testCert
	addr    string // bound https address
	config  string // config file path
	mu      sync.Mutex
	lines   []map[string]any
	raw     bytes.Buffer
	newLine chan struct{}
	exited  chan struct{}
	exitErr error
}

// header is prepended to every test config: loopback :0 listener, the
// test certificate, JSON debug logs.
func header(c testCert) string {
	return fmt.Sprintf(`listen:
  https: "127.0.0.1:0"
  http: ""
admin: ""
tls:
  certificates:
    - { cert: %q, key: %q }
log:
  level: debug
  format: json
`, c.certFile, c.keyFile)
}

// startSluice runs sluice with the test header plus body (timeouts,
// routes, server settings) and waits until it listens.
func startSluice(t *testing.T, body string) *sluiceProc {
	t.Helper()
	cert := newTestCert(t)
	return startSluiceConfig(t, header(cert)+body, cert)
}

func startSluiceConfig(t *testing.T, cfg string, cert testCert) *sluiceProc {
	t.Helper()
	return startSluiceCmd(t, cfg, cert, nil)
}

// startSluiceCmd is startSluiceConfig with setup run on the command
// before it starts (environment, inherited files, a wrapper).
func startSluiceCmd(t *testing.T, cfg string, cert testCert, setup func(*exec.Cmd)) *sluiceProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &sluiceProc{t: t, cert: cert, config: path, newLine: make(chan struct{}, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(sluiceBin, "run", "--config", path)
	if setup != nil {
		setup(p.cmd)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.readLogs(stderr)
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		p.mu.Lock()
		raced := strings.Contains(p.raw.String(), "WARNING: DATA RACE")
		p.mu.Unlock()
		if raced {
			t.Error("the race detector found a data race in sluice")
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("sluice log:\n%s", p.raw.String())
			p.mu.Unlock()
		}
	})
	line := p.waitLog(10*time.Second, func(l map[string]any) bool {
		return l["msg"] == "listening" && l["listener"] == "https"
	})
	p.addr = line["addr"].(string)
	return p
}

func (p *sluiceProc) readLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if raceBuild && !json.Valid(sc.Bytes()) {
			os.Stderr.Write(append(sc.Bytes(), '\n'))
		}
		var m map[string]any
		_ = json.Unmarshal(sc.Bytes(), &m)
		p.mu.Lock()
		p.raw.Write(sc.Bytes())
		p.raw.WriteByte('\n')
		if m != nil {
			p.lines = append(p.lines, m)
		}
		p.mu.Unlock()
		select {
		case p.newLine <- struct{}{}:
		default:
		}
	}
	p.exitErr = p.cmd.Wait()
	close(p.exited)
}

// waitLog returns the first log line for which match is true, waiting up
// to timeout for it.
func (p *sluiceProc) waitLog(timeout time.Duration, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if match(p.lines[seen]) {
				l := p.lines[seen]
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.newLine:
		case <-p.exited:
			p.t.Fatalf("sluice exited (%v) before the awaited log line", p.exitErr)
		case <-deadline:
			p.t.Fatalf("no matching log line within %s", timeout)
		}
	}
}

// accessLine waits for the access-log line of a request to path.
func (p *sluiceProc) accessLine(path string, timeout time.Duration) map[string]any {
	p.t.Helper()
	return p.waitLog(timeout, func(l map[string]any) bool {
		return l["logger"] == "proxy.access" && l["path"] == path
	})
}

func (p *sluiceProc) url(path string) string { return "https://" + p.addr + path }

func (p *sluiceProc) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: p.cert.pool, ServerName: "localhost"}
}

// h2Client is an HTTP/2-only client (x/net/http2) that trusts the test
// certificate.
func (p *sluiceProc) h2Client() *http.Client {
	tr := &http2.Transport{TLSClientConfig: p.tlsConfig()}
	p.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// h1Client is an HTTP/1.1-only client.
func (p *sluiceProc) h1Client() *http.Client {
	tr := &http.Transport{TLSClientConfig: p.tlsConfig(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	p.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (p *sluiceProc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *sluiceProc) waitExit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("sluice still running after %s", timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// upstream is a Go HTTP/1.1 server on a loopback port.
func upstream(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// route returns one YAML route entry.
func route(name, path, upstream string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    match: { path: %s }\n    upstream: %s\n", name, path, upstream)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// h2ClientFrom is an HTTP/2 client whose connections come from the
// loopback address local (any of 127.0.0.0/8).
func (p *sluiceProc) h2ClientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	tr := &http2.Transport{
		TLSClientConfig: p.tlsConfig(),
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			return (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, network, addr)
		},
	}
	p.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
