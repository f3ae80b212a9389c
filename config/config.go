// Package config defines sluice's configuration: the schema users write in
// config.yaml, its defaults, and its validation. Errors carry the file, line,
// column and key path of what is wrong.
//
// The package is pure: it reads the bytes it is given and touches no
// sockets and starts no goroutines.
package config

import "net/netip"

// Config is one complete, validated sluice configuration.
type Config struct {
	// Listen holds the addresses sluice accepts client connections on.
	Listen Listen `yaml:"listen"`

	// Admin is the address of the admin listener: /healthz, /readyz,
	// /metrics (Prometheus) and POST /reload. It has no authentication:
	// keep it on loopback or a private network. "" turns it off.
	// Default: "127.0.0.1:9180".
	Admin string `yaml:"admin"`

	// Server holds connection-level limits shared by every route.
	Server Server `yaml:"server"`

	// TLS holds the certificates served to clients.
	TLS TLS `yaml:"tls"`

	// Log controls logging.
	Log Log `yaml:"log"`

	// Timeouts are the defaults for every route; a route inherits each
	// one it does not set.
	Timeouts Timeouts `yaml:"timeouts"`

	// Routes map a host and a path prefix to an upstream. At least one is
	// required.
	Routes []Route `yaml:"routes"`

	// PIDFile is an absolute path where sluice writes its process id at
	// start (and removes it at exit), for `sluice reload` when the admin
	// listener is off. Not needed under systemd. "" = none. Default: "".
	PIDFile string `yaml:"pid_file"`

	positions positions
}

// Listen holds the listening addresses.
type Listen struct {
	// HTTPS is the TLS address; HTTP/2 and HTTP/1.1 are chosen by ALPN.
	// Default: ":8443".
	HTTPS string `yaml:"https"`

	// HTTP is the plain-text address that redirects every request to
	// https with 308 Permanent Redirect and answers ACME HTTP-01
	// challenges. "" turns it off. Default: ":8080".
	HTTP string `yaml:"http"`

	// HTTP3 serves HTTP/3 (QUIC) on the UDP port of the https address,
	// with the same certificates, and advertises it to HTTP/1.1 and
	// HTTP/2 clients with Alt-Svc. Default: false.
	HTTP3 bool `yaml:"http3"`
}

// Server holds connection-level limits that apply to all routes.
type Server struct {
	// ReadHeaderTimeout bounds the TLS handshake and the reading of each
	// HTTP/1.1 request's headers (slowloris protection). Must be above
	// zero. Default: 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`

	// IdleTimeout closes a keep-alive connection that has had no open
	// request or stream for this long. Must be above zero. Default: 2m.
	IdleTimeout Duration `yaml:"idle_timeout"`

	// MaxHeaderBytes caps the size of a request's header block (HTTP/1.1
	// header bytes; HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE). Between 4KiB
	// and 16MiB. Default: 64KiB.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`

	// MaxConcurrentStreams caps the open streams on one HTTP/2 connection
	// (SETTINGS_MAX_CONCURRENT_STREAMS). Between 1 and 100000.
	// Default: 250.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`

	// TrustedProxies lists the CIDRs (or single addresses) of proxies in
	// front of sluice whose X-Forwarded-For, X-Forwarded-Proto and
	// X-Forwarded-Host are kept. From anyone else those headers are
	// replaced. Default: [] (trust no one).
	TrustedProxies []string `yaml:"trusted_proxies"`

	// ShutdownTimeout is how long open exchanges may run on after a stop
	// signal before they are ended. Default: 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	// MaxHeaderCount caps the number of header fields in a request; more
	// get 431 Request Header Fields Too Large. Between 1 and 10000.
	// Default: 100.
	MaxHeaderCount int `yaml:"max_header_count"`

	// MaxURILength caps the length of a request's target (path and
	// query); longer ones get 414 URI Too Long. Between 256B and
	// max_header_bytes. Default: 8KiB.
	MaxURILength Size `yaml:"max_uri_length"`

	// MaxConnections caps the client connections open at once on the
	// https listener; a connection over the limit is closed as soon as
	// it is accepted, and a warning is logged (at most once a second).
	// 0 = no limit. Default: 10000.
	MaxConnections int `yaml:"max_connections"`

	// MaxConnectionsPerIP caps the connections one client address may
	// hold open at once on the https listener, closed and logged like
	// max_connections. Behind a trusted proxy every client shares its
	// address: leave it off there. 0 = no limit. Default: 0.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`

	// AllowUnderscoresInHeaders lets requests carry header names with
	// '_'. They are refused with 400 by default because CGI-style
	// upstreams (WSGI, PHP) turn '-' and '_' both into '_', so
	// "X_Forwarded_For" could pose as "X-Forwarded-For". Default: false.
	AllowUnderscoresInHeaders bool `yaml:"allow_underscores_in_headers"`

	trusted []netip.Prefix
}

// TLS holds certificate settings.
type TLS struct {
	// Certificates are PEM certificate/key file pairs, picked by SNI. With
	// none, a self-signed certificate for localhost, 127.0.0.1 and ::1 is
	// made at start. Relative paths are relative to the config file.
	// Default: [].
	Certificates []Certificate `yaml:"certificates"`

	// ACME turns on automatic certificates from an ACME CA (Let's Encrypt
	// by default) for the exact host names of the routes. Certificates
	// from files win for the names they cover. Default: off.
	ACME *ACME `yaml:"acme"`
}

// Certificate is one PEM certificate chain and its private key.
type Certificate struct {
	// Cert is the path of the PEM certificate chain. Required.
	Cert string `yaml:"cert"`
	// Key is the path of the PEM private key. Required.
	Key string `yaml:"key"`
}

// Log controls logging.
type Log struct {
	// Level is the lowest level logged: debug, info, warn or error.
	// Default: info.
	Level string `yaml:"level"`

	// Format is json (for machines and journald) or console (for people).
	// Default: json.
	Format string `yaml:"format"`

	// Access turns on one access-log line per exchange. Default: true.
	Access bool `yaml:"access"`
}

// Timeouts bound the phases of one exchange. In a route, a timeout left
// unset is inherited from the top-level timeouts. After Load, every field
// is non-nil.
type Timeouts struct {
	// ResponseHeader bounds the wait for the upstream's response headers;
	// when it passes the client gets 504. It is checked every 50 ms, as
	// Idle is. 0s = no limit. Default: 30s.
	ResponseHeader *Duration `yaml:"response_header"`

	// Idle is the longest silence allowed on an open exchange, in either
	// direction; when it passes the stream is reset and the upstream
	// exchange closed. It is checked every 50 ms, so it acts up to 50 ms
	// after it passes. 0s = no limit. Default: 60s.
	Idle *Duration `yaml:"idle"`

	// Total caps the whole exchange, from the request's arrival to the
	// response's last byte. It is checked every 50 ms, as Idle is.
	// 0s = no limit. Default: 60s.
	Total *Duration `yaml:"total"`
}

// Route sends the requests it matches to one upstream.
type Route struct {
	// Name identifies the route in logs and metrics: letters, digits,
	// '.', '_' and '-', unique in the file. Required.
	Name string `yaml:"name"`

	// Match selects the requests of this route.
	Match Match `yaml:"match"`

	// Upstream is where requests go: "http://host:port",
	// "unix:/path/to.sock", or "h2c://host:port" (HTTP/2 without TLS,
	// for gRPC). Exactly one of upstream and upstreams is required.
	// Default: "".
	Upstream string `yaml:"upstream"`

	// Streaming decides when responses are flushed to the client after
	// every upstream read: auto, always or never. Default: auto.
	Streaming Streaming `yaml:"streaming"`

	// Timeouts override the top-level timeouts for this route.
	Timeouts Timeouts `yaml:"timeouts"`

	// Upstreams is a pool of backends, each written like upstream; requests
	// are spread over the healthy ones by load_balancing. Exactly one of
	// upstream and upstreams is required. Default: [].
	Upstreams []string `yaml:"upstreams"`

	// LoadBalancing picks a backend of the pool for each request:
	// round_robin, least_conn (fewest open exchanges, so long streams do
	// not pile up on one backend), random_two (the less busy of two picked
	// at random), ip_hash (same client address, same backend) or cookie
	// (sticky sessions: the first response sets a cookie naming the
	// backend). Default: round_robin.
	LoadBalancing LoadBalancing `yaml:"load_balancing"`

	// Health holds the active and passive health checks of the backends.
	Health Health `yaml:"health"`

	// Retry says when a failed request is tried again on another backend.
	Retry Retry `yaml:"retry"`

	// Compress compresses responses for clients that accept it.
	Compress Compress `yaml:"compress"`

	// MaxRequestBody caps the size of a request body; a larger one is
	// answered 413. 0 = no limit. Default: 0.
	MaxRequestBody Size `yaml:"max_request_body"`

	// Upgrades lists the protocols a client may switch to on this route,
	// over HTTP/1.1 (Upgrade header) or HTTP/2 (extended CONNECT, RFC
	// 8441). Only websocket is supported; [] allows none.
	// Default: [websocket].
	Upgrades []string `yaml:"upgrades"`
}

// Match selects requests by host and path prefix.
type Match struct {
	// Host is an exact host name ("example.com"), a wildcard for one or
	// more labels ("*.example.com"), or "" for any host. Compared without
	// case and without the port. Default: "" (any host).
	Host string `yaml:"host"`

	// Path is a path prefix. "/api" matches "/api" and "/api/..." but not
	// "/apix"; "/api/" matches only below "/api/". Among the routes whose
	// host matches, the longest prefix wins. Default: "/".
	Path string `yaml:"path"`
}

// Streaming is a route's flush policy.
type Streaming string

// The streaming policies.
const (
	// StreamAuto streams a response that has no Content-Length or whose
	// Content-Type is text/event-stream, application/x-ndjson or
	// application/grpc*, and follows X-Accel-Buffering when present.
	StreamAuto Streaming = "auto"
	// StreamAlways flushes every response after every upstream read.
	StreamAlways Streaming = "always"
	// StreamNever copies responses in large writes.
	StreamNever Streaming = "never"
)

// TrustedPrefixes returns server.trusted_proxies parsed.
func (s Server) TrustedPrefixes() []netip.Prefix { return s.trusted }
