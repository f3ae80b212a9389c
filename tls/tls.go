// Package tls provides the certificates sluice serves: PEM files named in
// the config, or a self-signed certificate for localhost when there are
// none. ACME (certmagic) arrives here too.
package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
)

// CertError is a certificate file that could not be used; Index is its
// place in tls.certificates.
type CertError struct {
	Index int
	Err   error
}

func (e *CertError) Error() string { return e.Err.Error() }
func (e *CertError) Unwrap() error { return e.Err }

// LocalhostNames are the names of the self-signed certificate.
var LocalhostNames = []string{"localhost", "127.0.0.1", "::1"}

// NewConfig returns the server TLS config for certs: TLS 1.2 and up, Go's
// modern cipher suites, and ALPN h2 then http/1.1. Certificates are picked
// by SNI. With no certs a self-signed localhost certificate is generated,
// and logged as such.
func NewConfig(certs []config.Certificate, log *zap.Logger) (*stdtls.Config, error) {
	tc := &stdtls.Config{
		MinVersion:   stdtls.VersionTLS12,
		CipherSuites: modernCipherSuites,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	for i, c := range certs {
		pair, err := stdtls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, &CertError{Index: i, Err: fmt.Errorf("loading %s and %s: %w", c.Cert, c.Key, err)}
		}
		if pair.Leaf != nil && time.Now().After(pair.Leaf.NotAfter) {
			return nil, &CertError{Index: i, Err: fmt.Errorf("%s expired on %s", c.Cert, pair.Leaf.NotAfter.Format(time.DateOnly))}
		}
		log.Info("certificate loaded", zap.String("file", c.Cert), zap.Strings("names", pair.Leaf.DNSNames), zap.Time("not_after", pair.Leaf.NotAfter))
		tc.Certificates = append(tc.Certificates, pair)
	}
	if len(tc.Certificates) == 0 {
		cert, err := SelfSigned(LocalhostNames, 90*24*time.Hour)
		if err != nil {
			return nil, err
		}
		log.Warn("no certificates configured: serving a self-signed certificate for localhost (clients will not trust it)",
			zap.Strings("names", LocalhostNames))
		tc.Certificates = []stdtls.Certificate{cert}
	}
	return tc, nil
}

// SelfSigned makes an ECDSA P-256 certificate for names (host names or IP
// addresses), valid from now for validity.
func SelfSigned(names []string, validity time.Duration) (stdtls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return stdtls.Certificate{}, fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return stdtls.Certificate{}, fmt.Errorf("generating serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"sluice self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return stdtls.Certificate{}, fmt.Errorf("creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return stdtls.Certificate{}, err
	}
	return stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
