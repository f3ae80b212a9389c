//go:build race

package integration

// With "go test -race" the sluice binary under test is built with -race too.
func init() { raceBuild = true }
