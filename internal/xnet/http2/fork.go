// Definitions the server needs from x/net/http2 files this fork leaves
// out (transport.go, the client). They are copied unchanged; see
// ../UPSTREAM.md.

package http2

const (
	// transportDefaultConnFlow and transportDefaultStreamFlow are the
	// client's flow-control defaults; config.go's shared defaults code
	// names them, although only its server branch runs here.
	transportDefaultConnFlow   = 1 << 30
	transportDefaultStreamFlow = 4 << 20
)

func strSliceContains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}
