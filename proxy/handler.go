package proxy

import (
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ServeHTTP forwards one request to its route's upstream.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t := p.table.Load()
	if why, ok := checkRequest(t.limits, r.ProtoMajor, r.Host, r.RequestURI, r.Header); !ok {
		p.refuse(w, r, t, nil, start, why)
		return
	}
	rt := t.router.match(r.Host, routingPath(r.URL.Path))
	p.observeStart(rt)
	if rt == nil {
		http.Error(w, "404 no route for this host and path", http.StatusNotFound)
		info := accessInfo{status: http.StatusNotFound, reason: reasonDone}
		t.logAccess(r, nil, start, info)
		p.observeEnd(nil, start, info)
		return
	}
	if r.Method == http.MethodConnect && !rt.upgradeAllowed(extendedProtocol(r)) {
		http.Error(w, "405 CONNECT is not proxied", http.StatusMethodNotAllowed)
		info := accessInfo{status: http.StatusMethodNotAllowed, reason: reasonDone}
		t.logAccess(r, rt, start, info)
		p.observeEnd(rt, start, info)
		return
	}

	ex := newExchange(r.Context(), p.stopCtx, rt, w, start)
	info := accessInfo{}
	defer func() {
		ex.finish()
		t.logAccess(r, rt, start, info)
		p.observeEnd(rt, start, info)
	}()
	if p.forward(ex, w, r, t, &info) {
		return
	}
	// The response is under way and cannot be completed: reset the stream
	// (HTTP/2 RST_STREAM, HTTP/1.1 close without the last chunk) so the
	// client never takes a truncated response for a whole one.
	panic(http.ErrAbortHandler)
}

// forward runs the exchange and fills info. It returns false when the
// client stream must be aborted.
func (p *Proxy) forward(ex *exchange, w http.ResponseWriter, r *http.Request, t *table, info *accessInfo) bool {
	rt := ex.rt
	upgrade := upgradeType(r.Header)
	if upgrade != "" && (!rt.upgradeAllowed(upgrade) || r.ProtoMajor != 1) {
		// Only the route's upgrades (WebSocket) over HTTP/1.1 are
		// tunnelled; "h2c" and any other upgrade are dropped and the
		// request forwarded as a plain one.
		upgrade = ""
	}
	// ServeHTTP lets CONNECT through only as an allowed RFC 8441 upgrade.
	extended := r.Method == http.MethodConnect
	if extended {
		upgrade = extendedProtocol(r)
	}
	if rt.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > rt.maxBody {
			*info = accessInfo{status: http.StatusRequestEntityTooLarge, reason: reasonRefused}
			p.writeRefusal(w, r, rt, refusal{http.StatusRequestEntityTooLarge, "request body over the route's max_request_body"})
			return true
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}
	out := r.Clone(ex.ctx)
	out.RequestURI = ""
	out.URL.Scheme = "http"
	out.Close = false
	// Trailers arrive in r.Trailer when the body ends; sharing the map
	// lets the transport send them on.
	out.Trailer = r.Trailer
	prepareRequestHeader(out.Header, r, upgrade, t.trusted)
	var (
		body  *requestBody
		sb    *sendBody
		wsKey string
	)
	if extended {
		wsKey = prepareExtendedConnect(out)
		ex.requestBodyDone.Store(true)
	} else if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		// Issue 16036: a nil Body lets the transport retry a request that
		// failed on a reused connection before anything was sent.
		out.Body = nil
		ex.requestBodyDone.Store(true)
	} else {
		body = &requestBody{ReadCloser: r.Body, ex: ex}
		sb = &sendBody{rc: body}
		out.Body = sb
	}

	res, b, setCookie, err := p.send(ex, r, out, sb)
	if b != nil {
		// least_conn counts the exchange open until it ends, tunnels
		// and streams included.
		defer b.active.Add(-1)
		info.upstream = b.up.addr.String()
	}
	ex.headersIn.Store(true)
	ex.touch()
	if err != nil && r.ProtoMajor == 1 && body.malformed(r) {
		// The client's chunked framing broke (net/http refused it as it
		// read): the upstream got the head and the body up to there,
		// then its exchange is cancelled; it never sees a complete
		// request. The client connection closes after the 400.
		info.status, info.reason = http.StatusBadRequest, reasonRefused
		p.writeRefusal(w, r, rt, refusal{http.StatusBadRequest, "malformed request body framing"})
		return true
	}
	if err != nil && body.tooLarge() {
		// The body crossed max_request_body on its way up; the upstream
		// exchange is cancelled with it.
		info.status, info.reason = http.StatusRequestEntityTooLarge, reasonRefused
		p.writeRefusal(w, r, rt, refusal{http.StatusRequestEntityTooLarge, "request body over the route's max_request_body"})
		return true
	}
	if err != nil {
		switch {
		case errors.Is(err, errNoBackend):
			// Every backend is down: say so at once, no connect timeout.
			info.reason, info.status = reasonUpstreamError, http.StatusServiceUnavailable
		default:
			info.reason = p.classify(ex, r, body, err)
			info.status = statusFor(info.reason)
		}
		if info.reason != reasonClientGone {
			p.log.Debug("upstream request failed", zap.String("route", rt.name), zap.String("upstream", info.upstream), zap.Error(err))
			writeError(w, r, info.status)
		}
		return true
	}
	info.status = res.StatusCode
	p.observeHeaders(rt, time.Since(ex.start))

	if res.StatusCode == http.StatusSwitchingProtocols {
		if extended {
			return p.tunnelH2(ex, w, r, res, wsKey, info)
		}
		return p.tunnel(ex, w, r, res, upgrade, info)
	}

	announced := len(res.Trailer)
	copyResponseHeader(w.Header(), res)
	if setCookie != "" {
		w.Header().Add("Set-Cookie", setCookie)
	}
	stream := shouldStream(rt.streaming, res)
	cw := rt.compress.start(w.Header(), r, res, w)
	w.WriteHeader(res.StatusCode)
	ex.markHeadersOut()
	info.ttfb = time.Since(ex.start)
	flusher, _ := w.(http.Flusher)
	if stream && flusher != nil {
		// Headers go out now, so an event-stream client sees the
		// response open before the first event. A gRPC trailers-only
		// answer must stay one HEADERS frame, so it is not flushed.
		if !grpcTrailersOnly(res) {
			flusher.Flush()
		}
	} else {
		flusher = nil
	}

	var dst io.Writer = w
	if cw != nil {
		dst = cw
		if flusher != nil {
			flusher = cw
		}
	}
	n, err := copyBody(ex, dst, res.Body, flusher)
	info.bytesOut = n
	res.Body.Close()
	if cw != nil {
		if ferr := cw.finish(err == nil); err == nil && ferr != nil {
			err = errClientWrite{ferr}
		}
	}
	if err != nil {
		info.reason = p.classify(ex, r, body, err)
		return false
	}
	copyTrailers(w.Header(), res.Trailer, announced)
	info.reason = reasonDone
	return true
}

// errClientWrite marks a failed write to the client.
type errClientWrite struct{ err error }

func (e errClientWrite) Error() string { return "writing to client: " + e.err.Error() }
func (e errClientWrite) Unwrap() error { return e.err }

// copyBody copies the upstream body to the client. With a flusher, every
// read is written and flushed before the next read: one upstream chunk,
// one HTTP/2 DATA frame, no timer. A body that can wait for data (a
// waiter) is waited on before a buffer is taken whenever the last read
// drained the upstream, so a quiet stream holds no copy buffer; while data
// keeps flowing the buffer is kept from read to read.
func copyBody(ex *exchange, w io.Writer, body io.Reader, flusher http.Flusher) (int64, error) {
	var written int64
	wt, _ := body.(waiter)
	size := smallBufSize
	var buf *[]byte
	defer func() {
		if buf != nil {
			putBuf(buf)
		}
	}()
	for {
		if buf == nil {
			if wt != nil {
				if err := wt.Wait(); err != nil {
					return written, err
				}
			}
			buf = getBuf(size)
		}
		n, rerr := body.Read(*buf)
		if n > 0 {
			ex.touch()
			m, werr := w.Write((*buf)[:n])
			written += int64(m)
			if werr == nil && flusher != nil {
				flusher.Flush()
			}
			if werr != nil {
				return written, errClientWrite{werr}
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
		next := nextBufSize(n, size)
		switch {
		case next == smallBufSize && wt != nil:
			// Drained: the next data may be minutes away.
			putBuf(buf)
			buf, size = nil, next
		case next != size:
			putBuf(buf)
			size, buf = next, getBuf(next)
		}
	}
}

// waiter is a response body that can wait for its next data without a
// buffer (h1client's); closing its connection wakes the wait.
type waiter interface {
	Wait() error
}

// classify names why an exchange failed: a timeout or shutdown sluice
// applied, the client going away, or the upstream's fault.
func (p *Proxy) classify(ex *exchange, r *http.Request, body *requestBody, err error) closeReason {
	if reason := ex.expiredReason(); reason != "" {
		return reason
	}
	var cw errClientWrite
	switch {
	case errors.As(err, &cw), r.Context().Err() != nil:
		return reasonClientGone
	case body != nil && body.err.Load() != nil:
		return reasonClientGone
	}
	return reasonUpstreamError
}

func statusFor(reason closeReason) int {
	switch reason {
	case reasonHeaderTimeout, reasonTotalTimeout, reasonIdleTimeout:
		return http.StatusGatewayTimeout
	case reasonShutdown:
		return http.StatusServiceUnavailable
	case reasonClientGone:
		return 499 // nginx's "client closed request", for the log only
	}
	return http.StatusBadGateway
}

func statusText(code int) string {
	return strconv.Itoa(code) + " " + strings.ToLower(http.StatusText(code))
}

// routingPath cleans "." and ".." segments and doubled slashes out of the
// path used to pick a route, so "/public/../admin" is routed as "/admin".
// The request goes upstream with its path as the client sent it.
func routingPath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.Contains(p, "/.") && !strings.Contains(p, "//") {
		return p
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}
