package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Default returns the configuration that applies to every key a file
// leaves out.
func Default() Config {
	return Config{
		Listen: Listen{HTTPS: ":8443", HTTP: ":8080"},
		Admin:  "127.0.0.1:9180",
		Server: Server{
			ReadHeaderTimeout:    Duration(10 * time.Second),
			IdleTimeout:          Duration(2 * time.Minute),
			MaxHeaderBytes:       64 << 10,
			MaxConcurrentStreams: 250,
			ShutdownTimeout:      Duration(30 * time.Second),
			MaxHeaderCount:       100,
			MaxURILength:         8 << 10,
			MaxConnections:       10000,
		},
		Log: Log{Level: "info", Format: "json", Access: true},
		Timeouts: Timeouts{
			ResponseHeader: durationPtr(30 * time.Second),
			Idle:           durationPtr(60 * time.Second),
			Total:          durationPtr(60 * time.Second),
		},
	}
}

func durationPtr(d time.Duration) *Duration { v := Duration(d); return &v }

// Load reads and validates the config file at path. Its error, when not
// nil, is an ErrorList holding every problem found, or an I/O error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for i := range cfg.TLS.Certificates {
		c := &cfg.TLS.Certificates[i]
		c.Cert = relativeTo(dir, c.Cert)
		c.Key = relativeTo(dir, c.Key)
	}
	if a := cfg.TLS.ACME; a != nil {
		a.CARoot = relativeTo(dir, a.CARoot)
		a.Storage = relativeTo(dir, a.Storage)
	}
	return cfg, nil
}

func relativeTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Parse decodes and validates config data; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	cfg := Default()
	pos, errs, parsed := decodeYAML(file, data, &cfg)
	if !parsed {
		return nil, errs
	}
	cfg.positions = pos
	cfg.setDefaults()
	// Validate even after decoding errors, so one run reports everything;
	// a key that failed to decode is not reported a second time.
	for _, e := range cfg.validate(file) {
		if !reported(errs, e.Path) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return &cfg, nil
}

// ErrorAt builds an error about the value at path, located where the file
// wrote it. Checks outside this package (certificate files, say) use it to
// report their findings like the rest.
func (c *Config) ErrorAt(file, path, format string, args ...any) *Error {
	return &Error{File: file, Pos: c.positions.lookup(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

func reported(errs ErrorList, path string) bool {
	for _, e := range errs {
		if e.Path == path || strings.HasPrefix(path, e.Path+".") {
			return true
		}
	}
	return false
}

func (c *Config) setDefaults() {
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Streaming == "" {
			r.Streaming = StreamAuto
		}
		if r.Match.Path == "" {
			r.Match.Path = "/"
		}
		r.Match.Host = strings.TrimSuffix(strings.ToLower(r.Match.Host), ".")
		inherit(&r.Timeouts.ResponseHeader, c.Timeouts.ResponseHeader)
		inherit(&r.Timeouts.Idle, c.Timeouts.Idle)
		inherit(&r.Timeouts.Total, c.Timeouts.Total)
		r.setPoolDefaults()
	}
	c.setACMEDefaults()
}

func inherit(dst **Duration, from *Duration) {
	if *dst == nil {
		v := *from
		*dst = &v
	}
}

var routeName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (c *Config) validate(file string) ErrorList {
	var errs ErrorList
	bad := func(path, format string, args ...any) {
		errs = append(errs, c.ErrorAt(file, path, format, args...))
	}

	if c.Listen.HTTPS == "" {
		bad("listen.https", "an https address is required")
	} else if err := checkAddr(c.Listen.HTTPS); err != nil {
		bad("listen.https", "%v", err)
	}
	if c.Listen.HTTP != "" {
		if err := checkAddr(c.Listen.HTTP); err != nil {
			bad("listen.http", "%v", err)
		}
	}
	if c.Admin != "" {
		if err := checkAddr(c.Admin); err != nil {
			bad("admin", "%v", err)
		}
	}

	if c.PIDFile != "" && !filepath.IsAbs(c.PIDFile) {
		bad("pid_file", "%q must be an absolute path", c.PIDFile)
	}

	s := &c.Server
	if s.ReadHeaderTimeout <= 0 {
		bad("server.read_header_timeout", "must be above zero: without it a client can hold a connection open forever")
	}
	if s.IdleTimeout <= 0 {
		bad("server.idle_timeout", "must be above zero: without it idle keep-alive connections are never closed")
	}
	if s.MaxHeaderBytes < 4<<10 || s.MaxHeaderBytes > 16<<20 {
		bad("server.max_header_bytes", "%s is outside 4KiB..16MiB", s.MaxHeaderBytes)
	}
	if s.MaxConcurrentStreams < 1 || s.MaxConcurrentStreams > 100000 {
		bad("server.max_concurrent_streams", "%d is outside 1..100000", s.MaxConcurrentStreams)
	}
	if s.MaxHeaderCount < 1 || s.MaxHeaderCount > 10000 {
		bad("server.max_header_count", "%d is outside 1..10000", s.MaxHeaderCount)
	}
	if s.MaxURILength < 256 || s.MaxURILength > s.MaxHeaderBytes {
		bad("server.max_uri_length", "%s is outside 256B..max_header_bytes (%s)", s.MaxURILength, s.MaxHeaderBytes)
	}
	if s.MaxConnections < 0 {
		bad("server.max_connections", "%d is negative (0 = no limit)", s.MaxConnections)
	}
	if s.MaxConnectionsPerIP < 0 {
		bad("server.max_connections_per_ip", "%d is negative (0 = no limit)", s.MaxConnectionsPerIP)
	}
	s.trusted = nil
	for i, p := range s.TrustedProxies {
		prefix, err := parsePrefix(p)
		if err != nil {
			bad(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
			continue
		}
		s.trusted = append(s.trusted, prefix)
	}

	for i, cert := range c.TLS.Certificates {
		path := fmt.Sprintf("tls.certificates[%d]", i)
		if cert.Cert == "" {
			bad(path+".cert", "a certificate file is required")
		}
		if cert.Key == "" {
			bad(path+".key", "a key file is required")
		}
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		bad("log.format", "%q is not one of json, console", c.Log.Format)
	}

	if len(c.Routes) == 0 {
		bad("routes", "at least one route is required")
	}
	names := map[string]int{}
	type matchKey struct{ host, path string }
	matches := map[matchKey]string{}
	for i := range c.Routes {
		r := &c.Routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			bad(path+".name", "a route name is required")
		case !routeName.MatchString(r.Name):
			bad(path+".name", "%q may hold only letters, digits, '.', '_' and '-'", r.Name)
		default:
			if first, dup := names[r.Name]; dup {
				bad(path+".name", "%q is already the name of routes[%d]", r.Name, first)
			} else {
				names[r.Name] = i
			}
		}
		if err := checkHost(r.Match.Host); err != nil {
			bad(path+".match.host", "%v", err)
		}
		if !strings.HasPrefix(r.Match.Path, "/") {
			bad(path+".match.path", "%q must start with /", r.Match.Path)
		}
		k := matchKey{r.Match.Host, r.Match.Path}
		if other, dup := matches[k]; dup {
			bad(path+".match", "same host and path as route %q: this route could never match", other)
		} else {
			matches[k] = r.Name
		}
		c.validatePool(path, r, bad)
	}
	errs = append(errs, c.validateACME(file)...)
	return errs
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for all interfaces write \":8443\")", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && checkHostname(host) != nil {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func checkHost(h string) error {
	if h == "" {
		return nil
	}
	name := h
	if strings.HasPrefix(h, "*.") {
		name = h[2:]
	} else if strings.Contains(h, "*") {
		return fmt.Errorf("%q: a wildcard may only be a whole first label, as in *.example.com", h)
	}
	if strings.Contains(name, ":") {
		return fmt.Errorf("%q: write the host without a port", h)
	}
	if net.ParseIP(name) != nil && name == h {
		return nil
	}
	return checkHostname(name)
}

func checkHostname(name string) error {
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a valid host name", name)
		}
		for _, ch := range label {
			ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_'
			if !ok {
				return fmt.Errorf("%q is not a valid host name", name)
			}
		}
	}
	return nil
}

// Upstream is a parsed upstream address.
type Upstream struct {
	// Network is "tcp" or "unix".
	Network string
	// Address is host:port for tcp, the socket path for unix.
	Address string
	// H2C is set for "h2c://" upstreams: HTTP/2 with prior knowledge,
	// without TLS (gRPC servers).
	H2C bool
}

func (u Upstream) String() string {
	switch {
	case u.Network == "unix":
		return "unix:" + u.Address
	case u.H2C:
		return "h2c://" + u.Address
	}
	return "http://" + u.Address
}

// ParseUpstream parses an upstream address: "http://host:port" (port 80
// when left out), "h2c://host:port" or "unix:/path/to.sock".
func ParseUpstream(s string) (Upstream, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Upstream{}, fmt.Errorf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "unix":
		p := u.Opaque
		if p == "" {
			p = u.Path
		}
		if !strings.HasPrefix(p, "/") {
			return Upstream{}, fmt.Errorf("%q: the socket path must be absolute, as in unix:/run/gunicorn.sock", s)
		}
		return Upstream{Network: "unix", Address: p}, nil
	case "http", "h2c":
		if u.Host == "" {
			return Upstream{}, fmt.Errorf("%q has no host", s)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			return Upstream{}, fmt.Errorf("%q: an upstream is only scheme://host:port; paths, queries and credentials are not supported", s)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "80"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Upstream{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
		}
		return Upstream{Network: "tcp", Address: net.JoinHostPort(host, port), H2C: u.Scheme == "h2c"}, nil
	}
	return Upstream{}, fmt.Errorf("%q: the scheme must be http://, h2c:// or unix:", s)
}
