package tls

import (
	"context"
	stdtls "crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
)

// ACMEError is a tls.acme setting that could not be used; Key is its
// config key path.
type ACMEError struct {
	Key string
	Err error
}

func (e *ACMEError) Error() string { return e.Err.Error() }
func (e *ACMEError) Unwrap() error { return e.Err }

// ACME manages certificates from an ACME CA through certmagic: obtaining
// them in the background, renewing them, stapling OCSP, and answering the
// HTTP-01 and TLS-ALPN-01 challenges on sluice's own listeners.
type ACME struct {
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	names  []string
	files  []stdtls.Certificate
	log    *zap.Logger
}

// askTimeout bounds the on-demand ask request, which runs inside a
// client's TLS handshake.
const askTimeout = 10 * time.Second

// NewACME sets up certificate management for a. files are the
// certificates loaded from tls.certificates: names they cover are served
// from them and not requested from the CA. listen gives the ports the
// challenges are answered on. Nothing is requested until Start.
func NewACME(a *config.ACME, listen config.Listen, files []stdtls.Certificate, log *zap.Logger) (*ACME, error) {
	m := &ACME{files: files, log: log}
	for _, name := range a.Names {
		if f := coveringFile(files, name); f != nil {
			log.Info("name served from a certificate file, not managed by acme", zap.String("name", name))
			continue
		}
		m.names = append(m.names, name)
	}

	storage := a.Storage
	if storage == "" {
		storage = DefaultStorage()
	}
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return nil, &ACMEError{Key: "tls.acme.storage", Err: fmt.Errorf("creating %s: %w", storage, err)}
	}

	roots, err := loadRoots(a)
	if err != nil {
		return nil, err
	}

	cmLog := log.Named("certmagic")
	tmpl := certmagic.Config{
		Storage: &certmagic.FileStorage{Path: storage},
		Logger:  cmLog,
		OnEvent: m.onEvent,
	}
	if a.OnDemand != nil {
		tmpl.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: askDecision(a.OnDemand.Ask)}
	}
	// The cache asks for the config of each certificate it maintains;
	// there is one config, made once below.
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		Logger:           cmLog,
	})
	m.magic = certmagic.New(m.cache, tmpl)

	issuer := certmagic.ACMEIssuer{
		CA:     a.DirectoryURL(),
		Email:  a.Email,
		Agreed: true, // configuring a CA is accepting its subscriber agreement
		// The challenges are answered by sluice's own listeners; these
		// ports tell certmagic where they are, so that it does not try
		// to open listeners of its own on 80 and 443.
		DisableHTTPChallenge:    !a.Offers(config.ChallengeHTTP01),
		DisableTLSALPNChallenge: !a.Offers(config.ChallengeTLSALPN01),
		TrustedRoots:            roots,
		Logger:                  cmLog,
	}
	if host, port := splitPort(listen.HTTPS); port != 0 {
		issuer.ListenHost, issuer.AltTLSALPNPort = host, port
	}
	if _, port := splitPort(listen.HTTP); port != 0 {
		issuer.AltHTTPPort = port
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, issuer)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// DefaultStorage is where certificates are kept when tls.acme.storage is
// not set: /var/lib/sluice for root, else the user's data directory.
func DefaultStorage() string {
	if os.Geteuid() == 0 {
		return "/var/lib/sluice"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "sluice")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "sluice")
	}
	return filepath.Join(os.TempDir(), "sluice")
}

// Names are the names managed (tls.acme.names less those served from
// files).
func (m *ACME) Names() []string { return m.names }

// Start loads the stored certificates of the managed names and obtains or
// renews the others in the background; progress and failures are logged.
// Instances sharing one storage coordinate through its locks, so each
// name is issued once.
func (m *ACME) Start(ctx context.Context) error {
	if len(m.names) == 0 {
		return nil
	}
	m.log.Info("managing certificates", zap.Strings("names", m.names), zap.String("ca", m.issuer.CA))
	if err := m.magic.ManageAsync(ctx, m.names); err != nil {
		return fmt.Errorf("managing certificates for %v: %w", m.names, err)
	}
	return nil
}

// Stop ends renewal and OCSP maintenance.
func (m *ACME) Stop() { m.cache.Stop() }

// HTTPHandler answers ACME HTTP-01 challenges (also those started by
// another instance sharing the storage) and passes other requests to next.
func (m *ACME) HTTPHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// Apply makes tc serve the file certificates for the names they cover and
// ACME certificates for all others, and answer TLS-ALPN-01 challenges.
func (m *ACME) Apply(tc *stdtls.Config) {
	tc.Certificates = nil
	tc.NextProtos = append(tc.NextProtos, acmez.ACMETLS1Protocol)
	tc.GetCertificate = func(hello *stdtls.ClientHelloInfo) (*stdtls.Certificate, error) {
		if !isChallenge(hello) {
			for i := range m.files {
				if hello.SupportsCertificate(&m.files[i]) == nil {
					return &m.files[i], nil
				}
			}
		}
		return m.magic.GetCertificate(hello)
	}
}

// isChallenge reports a TLS-ALPN-01 validation handshake.
func isChallenge(hello *stdtls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol
}

func coveringFile(files []stdtls.Certificate, name string) *stdtls.Certificate {
	for i := range files {
		if leaf := files[i].Leaf; leaf != nil && leaf.VerifyHostname(name) == nil {
			return &files[i]
		}
	}
	return nil
}

// onEvent logs what happened to each certificate, in sluice's words.
func (m *ACME) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtaining":
		m.log.Info("obtaining certificate", zap.String("name", name), zap.Bool("renewal", renewal))
	case "cert_obtained":
		msg := "certificate obtained"
		if renewal {
			msg = "certificate renewed"
		}
		issuer, _ := data["issuer"].(string)
		m.log.Info(msg, zap.String("name", name), zap.String("issuer", issuer), zap.Any("path", data["certificate_path"]))
	case "cert_failed":
		err, _ := data["error"].(error)
		m.log.Error("certificate failed: will retry with backoff; other names are not affected",
			zap.String("name", name), zap.Bool("renewal", renewal), zap.Error(err))
	case "cached_managed_cert":
		m.log.Info("certificate in use", zap.Any("names", data["sans"]))
	}
	return nil
}

// askDecision allows an on-demand name only when ask answers 2xx to
// GET ask?domain=NAME.
func askDecision(ask string) func(ctx context.Context, name string) error {
	client := &http.Client{Timeout: askTimeout}
	return func(ctx context.Context, name string) error {
		u, err := url.Parse(ask)
		if err != nil {
			return err
		}
		q := u.Query()
		q.Set("domain", name)
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("asking %s about %s: %w", ask, name, err)
		}
		res.Body.Close()
		if res.StatusCode < 200 || res.StatusCode > 299 {
			return fmt.Errorf("%s refused %s: %s", ask, name, res.Status)
		}
		return nil
	}
}

func splitPort(addr string) (host string, port int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// CheckACME checks what tls.acme names outside the config file (the
// ca_root file), without creating anything.
func CheckACME(a *config.ACME) error {
	if a == nil {
		return nil
	}
	_, err := loadRoots(a)
	return err
}

// loadRoots reads tls.acme.ca_root; nil means the system's roots.
func loadRoots(a *config.ACME) (*x509.CertPool, error) {
	if a.CARoot == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(a.CARoot)
	if err != nil {
		return nil, &ACMEError{Key: "tls.acme.ca_root", Err: err}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, &ACMEError{Key: "tls.acme.ca_root", Err: fmt.Errorf("%s holds no PEM certificate", a.CARoot)}
	}
	return roots, nil
}
