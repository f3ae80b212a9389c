package docgen

import (
	"os"
	"strings"
	"testing"
)

// TestReferenceUpToDate fails when docs/config-reference.md no longer
// matches the config structs' doc comments.
func TestReferenceUpToDate(t *testing.T) {
	want, err := Generate("../../config")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/config-reference.md")
	if err != nil {
		t.Fatalf("%v: regenerate it with `go run ./docs/gen` from the repository root", err)
	}
	if string(got) != string(want) {
		t.Fatalf("docs/config-reference.md is stale: a config struct or its doc comment changed.\n" +
			"Regenerate it with `go run ./docs/gen` from the repository root and commit the result.")
	}
}

// TestEveryKeyDocumented checks the generated reference names each key
// the shipped config.yaml uses, with a default for each leaf.
func TestEveryKeyDocumented(t *testing.T) {
	b, err := Generate("../../config")
	if err != nil {
		t.Fatal(err)
	}
	ref := string(b)
	for _, key := range []string{
		"listen.https", "listen.http", "admin", "server.idle_timeout", "server.trusted_proxies",
		"tls.certificates[].cert", "log.level", "timeouts.idle", "routes[].name", "routes[].match.host",
		"routes[].match.path", "routes[].upstream", "routes[].streaming", "routes[].timeouts.total",
	} {
		if !strings.Contains(ref, "### `"+key+"`") {
			t.Errorf("reference has no entry for %s", key)
		}
	}
	for _, want := range []string{"Type: duration · Default: `10s`", "`always`: flushes every response"} {
		if !strings.Contains(ref, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}

func TestSplitDefault(t *testing.T) {
	for _, c := range []struct{ in, body, def string }{
		{"Level is the level.\nDefault: info.", "Level is the level.", "info"},
		{"No default here.", "No default here.", ""},
		{"Host is a host. Default: \"\" (any\nhost).", "Host is a host.", "\"\" (any\nhost)"},
	} {
		body, def := splitDefault(c.in)
		if body != c.body || def != c.def {
			t.Errorf("splitDefault(%q) = %q, %q; want %q, %q", c.in, body, def, c.body, c.def)
		}
	}
}
