// Command gen regenerates docs/config-reference.md from the doc comments
// of the structs in config/. Run it from the repository root after
// changing a config field:
//
//	go run ./docs/gen
package main

import (
	"fmt"
	"os"

	"github.com/sluiceproxy/sluice/internal/docgen"
)

func main() {
	if err := docgen.WriteFile("config", "docs/config-reference.md"); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
