package h2

import "crypto/tls"

// dynamicTLS returns the TLS config the https server is built with: each
// handshake uses the config most recently given to SetTLS (at first,
// base), so a reload can swap certificates for new connections while
// open ones keep theirs.
func (s *Server) dynamicTLS(base *tls.Config) *tls.Config {
	s.tlsConfig.Store(base)
	tc := base.Clone()
	tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		cur := s.tlsConfig.Load()
		if cur.GetConfigForClient != nil {
			return cur.GetConfigForClient(hello)
		}
		return cur, nil
	}
	return tc
}

// SetTLS makes new TLS handshakes use c. It must offer the same ALPN
// protocols (h2, http/1.1) as the config the server was built with.
func (s *Server) SetTLS(c *tls.Config) { s.tlsConfig.Store(c) }
