// sluice's addition to the x/net copy (see ../UPSTREAM.md, change 14): a
// handler can hand over a header map it built for the response instead of
// copying it field by field into Header().

package http2

import "net/http"

// AdoptHeader makes h the response's header map, as if the handler had
// set each of its fields through Header(), without copying them: a proxy
// that parsed a fresh map from its upstream's response passes it on. After
// the call h belongs to the writer and the handler reaches it only through
// Header(), as for a map Header() returned. It does nothing and reports
// false once Header() has been called or the header written; the handler
// then copies.
func (w *responseWriter) AdoptHeader(h http.Header) bool {
	rws := w.rws
	if rws == nil {
		panic("AdoptHeader called after Handler finished")
	}
	if rws.handlerHeader != nil || rws.wroteHeader || h == nil {
		return false
	}
	rws.handlerHeader = h
	return true
}
