package tls

import stdtls "crypto/tls"

// modernCipherSuites are the TLS 1.2 suites offered: forward-secret ECDHE
// with AEAD ciphers only (Mozilla's "intermediate" profile). TLS 1.3
// suites are not configurable and all modern.
var modernCipherSuites = []uint16{
	stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	stdtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	stdtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	stdtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	stdtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	stdtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
