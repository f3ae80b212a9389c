// Package h2xconnect turns on HTTP/2 extended CONNECT (RFC 8441,
// WebSockets over HTTP/2) in golang.org/x/net/http2 and net/http.
//
// Both read GODEBUG=http2xconnect=1 from the environment once, in their
// package init, and have no other switch. This package sets it in its own
// init, which runs first: since Go 1.21 packages are initialized in
// import-path order among those whose imports are done, this package
// imports only os and strings, and "github.com/..." sorts before
// "golang.org/..." and "net/http". A GODEBUG that already names
// http2xconnect (=0 to turn it off) is left alone.
package h2xconnect

import (
	"os"
	"strings"
)

func init() {
	v := os.Getenv("GODEBUG")
	if strings.Contains(v, "http2xconnect=") {
		return
	}
	if v != "" {
		v += ","
	}
	os.Setenv("GODEBUG", v+"http2xconnect=1")
}
