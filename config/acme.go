package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// The ACME directories of Let's Encrypt.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// The ACME challenge types sluice can answer itself.
const (
	ChallengeHTTP01    = "http-01"     // on listen.http
	ChallengeTLSALPN01 = "tls-alpn-01" // on listen.https
)

// DNSProviders names the DNS-01 providers built into this binary. DNS-01
// is the only challenge that can prove a wildcard name; it is a hook for
// now: no provider is built in, so wildcard names need certificate files.
var DNSProviders = map[string]bool{}

// ACME configures automatic certificates (certmagic).
type ACME struct {
	// Email is the contact address of the ACME account; the CA writes to
	// it about expiring certificates and problems. Default: "" (none).
	Email string `yaml:"email"`

	// CA is the ACME directory URL of the certificate authority.
	// Default: Let's Encrypt production
	// (https://acme-v02.api.letsencrypt.org/directory).
	CA string `yaml:"ca"`

	// Staging uses Let's Encrypt's staging directory: real validation,
	// untrusted certificates, generous rate limits. Not together with ca.
	// Default: false.
	Staging bool `yaml:"staging"`

	// CARoot is a PEM file holding the root certificate(s) to trust for
	// the ACME server's own HTTPS, for a private or internal ACME CA.
	// Relative to the config file. Default: "" (the system's roots).
	CARoot string `yaml:"ca_root"`

	// Storage is the directory for account keys, certificates and locks.
	// Several sluice instances pointed at one shared directory (NFS, a
	// shared volume) coordinate, so each name is issued once.
	// Default: "/var/lib/sluice" when run as root, else the user's data
	// directory ($XDG_DATA_HOME/sluice or ~/.local/share/sluice).
	Storage string `yaml:"storage"`

	// Names are the host names to get certificates for. Wildcards need a
	// DNS provider. Default: every exact match.host of the routes (IP
	// addresses and wildcard hosts are left out; a wildcard route host is
	// an error unless names is set, on_demand is on (each name gets its
	// own certificate) or a DNS provider is configured).
	Names []string `yaml:"names"`

	// Challenges are the ACME challenge types offered: "http-01"
	// (answered on listen.http) and "tls-alpn-01" (answered on
	// listen.https). Default: both, or only tls-alpn-01 when listen.http
	// is "".
	Challenges []string `yaml:"challenges"`

	// DNSProvider names the DNS provider that solves DNS-01 challenges,
	// needed for wildcard names. None is built into this version.
	// Default: "" (no DNS-01).
	DNSProvider string `yaml:"dns_provider"`

	// OnDemand gets certificates during the TLS handshake for names not
	// known in advance, after the ask URL allows the name. Default: off.
	OnDemand *OnDemand `yaml:"on_demand"`

	defaultNames bool
}

// OnDemand configures on-demand certificates.
type OnDemand struct {
	// Ask is the URL asked before a certificate is obtained for a name
	// during a handshake: sluice sends GET ask?domain=NAME and goes on
	// only on a 2xx answer. Required: without it anyone could make
	// sluice request certificates for any name. Default: "" (required).
	Ask string `yaml:"ask"`
}

// DirectoryURL returns the ACME directory to use.
func (a *ACME) DirectoryURL() string {
	switch {
	case a.CA != "":
		return a.CA
	case a.Staging:
		return LetsEncryptStaging
	}
	return LetsEncryptProduction
}

// NamesDefaulted reports whether Names came from the routes rather than
// from the file.
func (a *ACME) NamesDefaulted() bool { return a.defaultNames }

// Offers reports whether challenge type ch is enabled.
func (a *ACME) Offers(ch string) bool { return slices.Contains(a.Challenges, ch) }

func (c *Config) setACMEDefaults() {
	a := c.TLS.ACME
	if a == nil {
		return
	}
	for i, n := range a.Names {
		a.Names[i] = strings.TrimSuffix(strings.ToLower(n), ".")
	}
	if len(a.Names) == 0 {
		a.defaultNames = true
		for _, r := range c.Routes {
			h := r.Match.Host
			if h == "" || strings.HasPrefix(h, "*.") || net.ParseIP(h) != nil || slices.Contains(a.Names, h) {
				continue
			}
			a.Names = append(a.Names, h)
		}
	}
	if a.Challenges == nil {
		if c.Listen.HTTP != "" {
			a.Challenges = append(a.Challenges, ChallengeHTTP01)
		}
		a.Challenges = append(a.Challenges, ChallengeTLSALPN01)
	}
}

func (c *Config) validateACME(file string) ErrorList {
	a := c.TLS.ACME
	if a == nil {
		return nil
	}
	var errs ErrorList
	bad := func(path, format string, args ...any) {
		errs = append(errs, c.ErrorAt(file, path, format, args...))
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t<>")) {
		bad("tls.acme.email", "%q is not an email address", a.Email)
	}
	if a.CA != "" {
		if a.Staging {
			bad("tls.acme.staging", "staging picks Let's Encrypt's staging CA, but tls.acme.ca names another: set one of them")
		}
		if err := checkHTTPURL(a.CA, true); err != nil {
			bad("tls.acme.ca", "%v", err)
		}
	}
	if a.DNSProvider != "" && !DNSProviders[a.DNSProvider] {
		bad("tls.acme.dns_provider", "unknown DNS provider %q: this build has none (DNS-01 is not available yet)", a.DNSProvider)
	}
	if a.OnDemand != nil {
		if a.OnDemand.Ask == "" {
			bad("tls.acme.on_demand.ask", "on-demand certificates need an ask URL that allows each name; without it anyone could make sluice request certificates for any name")
		} else if err := checkHTTPURL(a.OnDemand.Ask, false); err != nil {
			bad("tls.acme.on_demand.ask", "%v", err)
		}
	}

	seen := map[string]bool{}
	for i, ch := range a.Challenges {
		path := fmt.Sprintf("tls.acme.challenges[%d]", i)
		switch ch {
		case ChallengeHTTP01:
			if c.Listen.HTTP == "" {
				bad(path, "http-01 is answered on listen.http, which is off")
			}
		case ChallengeTLSALPN01:
		default:
			bad(path, "%q is not one of http-01, tls-alpn-01", ch)
		}
		if seen[ch] {
			bad(path, "%q is listed twice", ch)
		}
		seen[ch] = true
	}
	if len(a.Challenges) == 0 {
		bad("tls.acme.challenges", "at least one challenge type is required (http-01, tls-alpn-01)")
	}

	if a.defaultNames {
		// With on-demand, each name under a wildcard host gets its own
		// certificate at its first handshake: no DNS-01 needed.
		if a.DNSProvider == "" && a.OnDemand == nil {
			for i, r := range c.Routes {
				if strings.HasPrefix(r.Match.Host, "*.") {
					bad(fmt.Sprintf("routes[%d].match.host", i), "%q: a wildcard certificate needs the DNS-01 challenge and tls.acme has no dns_provider: list the names to manage in tls.acme.names (serving this host from tls.certificates), or turn on tls.acme.on_demand", r.Match.Host)
				}
			}
		}
		if len(a.Names) == 0 && a.OnDemand == nil {
			bad("tls.acme", "no names to manage: no route has an exact match.host; set tls.acme.names or tls.acme.on_demand")
		}
	} else {
		for i, n := range a.Names {
			path := fmt.Sprintf("tls.acme.names[%d]", i)
			if err := checkHost(n); err != nil || n == "" {
				if err == nil {
					err = fmt.Errorf("a name may not be empty")
				}
				bad(path, "%v", err)
				continue
			}
			if strings.HasPrefix(n, "*.") && a.DNSProvider == "" {
				bad(path, "%q: a wildcard certificate needs the DNS-01 challenge and tls.acme has no dns_provider", n)
			}
		}
	}
	return errs
}

func checkHTTPURL(s string, httpsOnly bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (httpsOnly || u.Scheme != "http")) {
		if httpsOnly {
			return fmt.Errorf("%q is not an https:// URL", s)
		}
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}
