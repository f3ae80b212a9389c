package http2

import (
	"os/exec"
	"testing"
)

// TestForkMatchesUpstream fails when this copy of x/net's HTTP/2 server is
// not exactly golang.org/x/net (at the version go.mod requires) plus
// ../sluice.patch: every change to the copy is recorded in the patch, and
// a bump of x/net in go.mod is not done until the patch is carried over
// (../sync.sh, ../UPSTREAM.md).
func TestForkMatchesUpstream(t *testing.T) {
	out, err := exec.Command("bash", "../sync.sh", "check").CombinedOutput()
	if err != nil {
		t.Fatalf("sync.sh check: %v\n%s", err, out)
	}
}
