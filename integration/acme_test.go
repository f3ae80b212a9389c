package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// acmeSluice describes one sluice instance of an ACME test.
type acmeSluice struct {
	httpsPort, httpPort int // httpPort 0: listen.http off
	storage             string
	extra               string // more lines under tls.acme
	hosts               []string
	upstream            string
	http3               bool
}

func (a acmeSluice) config(pb *pebble) string {
	plain := `""`
	if a.httpPort != 0 {
		plain = fmt.Sprintf(`"127.0.0.1:%d"`, a.httpPort)
	}
	s := fmt.Sprintf(`listen:
  https: "127.0.0.1:%d"
  http: %s
  http3: %t
admin: ""
tls:
  acme:
    email: ops@example.com
    ca: %q
    ca_root: %q
    storage: %q
%s
log: { level: debug, format: json }
routes:
`, a.httpsPort, plain, a.http3, pb.dir, pb.caRoot, a.storage, a.extra)
	for i, h := range a.hosts {
		s += fmt.Sprintf("  - name: r%d\n    match: { host: %s, path: / }\n    upstream: %s\n", i, h, a.upstream)
	}
	return s
}

// waitCertificate waits for the log line saying sluice serves a managed
// certificate for name.
func (p *sluiceProc) waitCertificate(name string, timeout time.Duration) {
	p.t.Helper()
	p.waitLog(timeout, func(l map[string]any) bool {
		if l["msg"] != "certificate in use" {
			return false
		}
		names, _ := l["names"].([]any)
		return slices.Contains(names, any(name))
	})
}

// servedChallenge checks that sluice answered an ACME challenge of type
// typ (certmagic's log line).
func (p *sluiceProc) servedChallenge(typ string) {
	p.t.Helper()
	p.waitLog(time.Second, func(l map[string]any) bool {
		msg, _ := l["msg"].(string)
		return strings.HasPrefix(msg, "served key authentication") && l["challenge"] == typ
	})
}

// getAs makes an HTTP/2 request to sluice for name, trusting only roots:
// the certificate must be valid for name and chain to roots.
func (p *sluiceProc) getAs(t *testing.T, name string, roots *x509.CertPool) (*http.Response, string) {
	t.Helper()
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", p.url("/hello"), nil)
	req.Host = name
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("request for %s: %v", name, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func helloUpstream(t *testing.T) string {
	return upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over %s", r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
}

// checkServes asserts that a client trusting only Pebble's root gets a
// proxied answer for name over HTTP/2.
func checkServes(t *testing.T, p *sluiceProc, pb *pebble, name string) {
	t.Helper()
	res, body := p.getAs(t, name, pb.roots())
	if res.StatusCode != 200 || res.ProtoMajor != 2 || !strings.Contains(body, "hello "+name+" over https") {
		t.Fatalf("got %s %s %q", res.Proto, res.Status, body)
	}
	leaf := res.TLS.PeerCertificates[0]
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Fatalf("certificate issued by %q, want Pebble", leaf.Issuer.CommonName)
	}
}

func TestACMEHTTP01(t *testing.T) {
	pb := startPebble(t)
	cfg := acmeSluice{
		httpsPort: freePort(t), httpPort: pb.httpPort, storage: t.TempDir(),
		extra: "    challenges: [http-01]", hosts: []string{"web.sluice.test"}, upstream: helloUpstream(t),
	}
	p := startSluiceConfig(t, cfg.config(pb), newTestCert(t))
	p.waitCertificate("web.sluice.test", 30*time.Second)
	checkServes(t, p, pb, "web.sluice.test")
	if !strings.Contains(pb.logText(), "Attempting to validate w/ HTTP") {
		t.Fatal("pebble did not validate through http-01")
	}
	p.servedChallenge("http-01")

	// Everything else on the plain listener is still redirected.
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/some/page?q=1", pb.httpPort), nil)
	req.Host = "web.sluice.test"
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := fmt.Sprintf("https://web.sluice.test:%d/some/page?q=1", cfg.httpsPort); res.StatusCode != 308 || res.Header.Get("Location") != want {
		t.Fatalf("plain request: %s to %q, want 308 to %q", res.Status, res.Header.Get("Location"), want)
	}
	if n := pb.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates, want 1", n)
	}
}

func TestACMETLSALPN01(t *testing.T) {
	pb := startPebble(t)
	// listen.http is off, so TLS-ALPN-01 on listen.https is the only way.
	cfg := acmeSluice{
		httpsPort: pb.tlsPort, storage: t.TempDir(), hosts: []string{"alpn.sluice.test"}, upstream: helloUpstream(t),
		http3: true,
	}
	p := startSluiceConfig(t, cfg.config(pb), newTestCert(t))
	p.waitCertificate("alpn.sluice.test", 30*time.Second)
	checkServes(t, p, pb, "alpn.sluice.test")
	if strings.Contains(pb.logText(), "Attempting to validate w/ HTTP") {
		t.Fatal("pebble validated through http-01, want tls-alpn-01 only")
	}
	p.servedChallenge("tls-alpn-01")

	// HTTP/3 serves the same ACME certificate.
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pb.roots(), ServerName: "alpn.sluice.test"}}
	defer h3.Close()
	req, _ := http.NewRequest("GET", p.url("/h3"), nil)
	req.Host = "alpn.sluice.test"
	res, err := (&http.Client{Transport: h3, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("HTTP/3 with the ACME certificate: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 3 || !strings.Contains(string(body), "hello alpn.sluice.test over https") {
		t.Fatalf("HTTP/3: %s %q", res.Proto, body)
	}
	if n := pb.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates, want 1", n)
	}
}

func TestACMERestartReusesStoredCertificate(t *testing.T) {
	pb := startPebble(t)
	cfg := acmeSluice{
		httpsPort: pb.tlsPort, httpPort: pb.httpPort, storage: t.TempDir(),
		hosts: []string{"keep.sluice.test"}, upstream: helloUpstream(t),
	}
	first := startSluiceConfig(t, cfg.config(pb), newTestCert(t))
	first.waitCertificate("keep.sluice.test", 30*time.Second)
	serial := func(p *sluiceProc) string {
		res, _ := p.getAs(t, "keep.sluice.test", pb.roots())
		return res.TLS.PeerCertificates[0].SerialNumber.String()
	}
	s1 := serial(first)
	first.signal(15)
	if code := first.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("first sluice exited with %d", code)
	}

	second := startSluiceConfig(t, cfg.config(pb), newTestCert(t))
	second.waitCertificate("keep.sluice.test", 10*time.Second)
	if s2 := serial(second); s2 != s1 {
		t.Fatalf("after restart sluice serves serial %s, want the stored %s", s2, s1)
	}
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble saw %d orders, want 1: the restart ordered again", n)
	}
}

func TestACMESharedStorageIssuesOnce(t *testing.T) {
	pb := startPebble(t)
	storage, up := t.TempDir(), helloUpstream(t)
	hosts := []string{"shared.sluice.test"}
	// Pebble validates on a's ports; b may still win the storage lock,
	// and then a answers b's challenge from the shared storage.
	a := acmeSluice{httpsPort: pb.tlsPort, httpPort: pb.httpPort, storage: storage, hosts: hosts, upstream: up}
	b := acmeSluice{httpsPort: freePort(t), httpPort: freePort(t), storage: storage, hosts: hosts, upstream: up}
	pa := startSluiceConfig(t, a.config(pb), newTestCert(t))
	pbb := startSluiceConfig(t, b.config(pb), newTestCert(t))
	pa.waitCertificate("shared.sluice.test", 30*time.Second)
	pbb.waitCertificate("shared.sluice.test", 30*time.Second)
	checkServes(t, pa, pb, "shared.sluice.test")
	checkServes(t, pbb, pb, "shared.sluice.test")
	if n, m := pb.orders(), pb.issued(); n != 1 || m != 1 {
		t.Fatalf("pebble saw %d orders and issued %d certificates for two instances, want 1 and 1", n, m)
	}
	obtained := 0
	for _, p := range []*sluiceProc{pa, pbb} {
		p.mu.Lock()
		for _, l := range p.lines {
			if l["msg"] == "certificate obtained" {
				obtained++
			}
		}
		p.mu.Unlock()
	}
	if obtained != 1 {
		t.Fatalf("%d instances logged obtaining the certificate, want 1 (the other loads it from storage)", obtained)
	}
}

func TestACMERefusedNameIsLoggedOthersServed(t *testing.T) {
	pb := startPebble(t, "refused.sluice.test")
	cfg := acmeSluice{
		httpsPort: pb.tlsPort, httpPort: pb.httpPort, storage: t.TempDir(),
		hosts: []string{"refused.sluice.test", "fine.sluice.test"}, upstream: helloUpstream(t),
	}
	p := startSluiceConfig(t, cfg.config(pb), newTestCert(t))
	line := p.waitLog(30*time.Second, func(l map[string]any) bool {
		return l["logger"] == "tls.acme" && l["level"] == "error" && l["name"] == "refused.sluice.test"
	})
	if msg, _ := line["msg"].(string); !strings.Contains(msg, "certificate failed") {
		t.Fatalf("failure line %v", line)
	}
	if e, _ := line["error"].(string); !strings.Contains(e, "rejectedIdentifier") && !strings.Contains(e, "blocked") {
		t.Fatalf("failure line does not say why: %v", line)
	}
	t.Logf("failure logged: %s: %v", line["msg"], line["error"])
	p.waitCertificate("fine.sluice.test", 30*time.Second)
	checkServes(t, p, pb, "fine.sluice.test")
}

func TestACMEOnDemandAsks(t *testing.T) {
	pb := startPebble(t)
	asked := make(chan string, 10)
	ask := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("domain")
		asked <- d
		if d != "demand.sluice.test" {
			http.Error(w, "not ours", http.StatusForbidden)
		}
	}))
	cfg := acmeSluice{
		httpsPort: pb.tlsPort, httpPort: pb.httpPort, storage: t.TempDir(), upstream: helloUpstream(t),
		extra: fmt.Sprintf("    on_demand: { ask: %q }", ask+"/allow"),
	}
	// One route for any host: no names are known in advance.
	p := startSluiceConfig(t, cfg.config(pb)+route("any", "/", cfg.upstream), newTestCert(t))
	if n := pb.orders(); n != 0 {
		t.Fatalf("%d orders before any handshake", n)
	}
	checkServes(t, p, pb, "demand.sluice.test")
	if n := pb.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates, want 1", n)
	}

	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pb.roots(), ServerName: "other.sluice.test"}}
	defer tr.CloseIdleConnections()
	if _, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(p.url("/")); err == nil {
		t.Fatal("a name the ask URL refuses got a certificate")
	}
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble saw %d orders, want 1: the refused name was ordered", n)
	}
	got := map[string]bool{}
	for len(asked) > 0 {
		got[<-asked] = true
	}
	if !got["demand.sluice.test"] || !got["other.sluice.test"] {
		t.Fatalf("ask URL was asked about %v, want both names", got)
	}
}
