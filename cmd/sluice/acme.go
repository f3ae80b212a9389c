package main

import (
	"context"
	stdtls "crypto/tls"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
	sluicetls "github.com/sluiceproxy/sluice/tls"
)

// setupTLS builds the server TLS config: certificate files, and with
// tls.acme the certmagic manager for every other name (nil without).
func setupTLS(cfg *config.Config, log *zap.Logger) (*stdtls.Config, *sluicetls.ACME, error) {
	a := cfg.TLS.ACME
	if a == nil {
		tc, err := sluicetls.NewConfig(cfg.TLS.Certificates, log)
		return tc, nil, err
	}
	certLog := log
	if len(cfg.TLS.Certificates) == 0 {
		// ACME serves every name: no self-signed fallback to warn about.
		certLog = zap.NewNop()
	}
	tc, err := sluicetls.NewConfig(cfg.TLS.Certificates, certLog)
	if err != nil {
		return nil, nil, err
	}
	var files []stdtls.Certificate
	if len(cfg.TLS.Certificates) > 0 {
		files = tc.Certificates
	}
	m, err := sluicetls.NewACME(a, cfg.Listen, files, log.Named("acme"))
	if err != nil {
		return nil, nil, err
	}
	m.Apply(tc)
	return tc, m, nil
}

// acmeHTTP is the plain listener's HTTP-01 wrapper, nil without ACME.
func acmeHTTP(m *sluicetls.ACME) func(http.Handler) http.Handler {
	if m == nil {
		return nil
	}
	return m.HTTPHandler
}

// startACME begins obtaining and renewing certificates; it returns a
// function that stops that.
func startACME(m *sluicetls.ACME, log *zap.Logger) (stop func()) {
	if m == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		log.Error("acme: cannot manage certificates", zap.Error(err))
	}
	return func() {
		cancel()
		m.Stop()
	}
}

// acmeError places a tls.acme problem at its config key.
func acmeError(cfg *config.Config, path string, err error) error {
	var ae *sluicetls.ACMEError
	if errors.As(err, &ae) {
		return cfg.ErrorAt(path, ae.Key, "%v", ae.Err)
	}
	return certError(cfg, path, err)
}
