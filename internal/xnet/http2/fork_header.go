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

// ReleaseRequest drops the writer's reference to the handler's request
// (see ../UPSTREAM.md, change 7). x/net keeps the request — its struct,
// URL and header map, about 800 bytes — until the handler returns; a
// handler that is done with it (sluice's, once the response head is out)
// lets it go here, so that a stream that lasts hours does not keep it.
// After it, Push fails, and the files of a multipart form the handler
// parsed are the handler's to remove (x/net removes them when the handler
// returns).
func (w *responseWriter) ReleaseRequest() {
	if rws := w.rws; rws != nil {
		rws.req = nil
	}
}
