package integration

import (
	"encoding/xml"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// h2specPath finds the h2spec binary that .ci/run installs with go install:
// on PATH or in $(go env GOPATH)/bin. A missing tool fails the test.
func h2specPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "h2spec")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatal("h2spec not found on PATH or in $(go env GOPATH)/bin: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible (.ci/run does)")
	return ""
}

type h2specReport struct {
	Suites []struct {
		Cases []struct {
			Package   string    `xml:"package,attr"`
			ClassName string    `xml:"classname,attr"`
			Failure   *struct{} `xml:"failure"`
			Skipped   *struct{} `xml:"skipped"`
			Error     *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestH2spec runs the HTTP/2 conformance suite h2spec against the real
// binary, plain and strict. Every case must pass: docs/conformance.md says
// which ones sluice's h2/ layer fixes over x/net and how.
func TestH2spec(t *testing.T) {
	bin := h2specPath(t)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Several cases need a response with a body (6.5.3 checks the
		// length of the first DATA frame).
		w.Write([]byte("h2spec says hello\n"))
	}))
	p := startSluice(t, "routes:\n"+route("app", "/", up))
	host, port, _ := net.SplitHostPort(p.addr)

	for _, tc := range []struct {
		name  string
		args  []string
		cases int
	}{
		{"default", nil, 145},
		{"strict", []string{"-S"}, 146},
	} {
		t.Run(tc.name, func(t *testing.T) {
			report := filepath.Join(t.TempDir(), "h2spec.xml")
			args := append([]string{"-t", "-k", "-h", host, "-p", port, "-o", "5", "-j", report}, tc.args...)
			cmd := exec.Command(bin, args...)
			done := make(chan struct{})
			var out []byte
			go func() { out, _ = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(50 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("h2spec did not finish in 50s:\n%s", out)
			}
			data, err := os.ReadFile(report)
			if err != nil {
				t.Fatalf("no h2spec report (%v); output:\n%s", err, out)
			}
			var r h2specReport
			if err := xml.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			total := 0
			var failed []string
			for _, s := range r.Suites {
				for _, c := range s.Cases {
					total++
					if c.Failure != nil || c.Error != nil || c.Skipped != nil {
						failed = append(failed, c.Package+": "+c.ClassName)
					}
				}
			}
			if total != tc.cases {
				t.Errorf("h2spec ran %d cases, want %d", total, tc.cases)
			}
			if len(failed) > 0 {
				t.Errorf("%d h2spec case(s) did not pass:\n  %s\noutput:\n%s", len(failed), strings.Join(failed, "\n  "), out)
			}
		})
	}
}
