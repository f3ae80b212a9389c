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
		p.answerLocally(w, r, t, nil, start, http.StatusNotFound, "404 no route for this host and path")
		return
	}
	if r.Method == http.MethodConnect && !rt.upgradeAllowed(extendedProtocol(r)) {
		p.answerLocally(w, r, t, rt, start, http.StatusMethodNotAllowed, "405 CONNECT is not proxied")
		return
	}

	ex := newExchange(r.Context(), &p.live, rt, w, start)
	// The log line's part of the request is in the exchange, not in this
	// frame, which every held stream's handler sits under.
	ex.line.set(r)
	info := accessInfo{}
	defer func() {
		ex.finish(&p.live)
		t.logAccess(&ex.line, rt, start, info)
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

// answerLocally answers a request sluice does not forward, and logs it.
func (p *Proxy) answerLocally(w http.ResponseWriter, r *http.Request, t *table, rt *route, start time.Time, status int, msg string) {
	http.Error(w, msg, status)
	info := accessInfo{status: status, reason: reasonDone}
	t.logRequest(r, rt, start, info)
	p.observeEnd(rt, start, info)
}

// forward runs the exchange and fills info. It returns false when the
// client stream must be aborted.
//
// Its phases are functions of their own, and the rare paths (refusals,
// failures, logging) are out of line: a goroutine's stack grows to the
// deepest call it ever made and keeps that size while it is blocked, and
// the handler of a quiet stream blocks for as long as the stream lasts.
// Kept shallow, it stays at the runtime's smallest stack but one.
func (p *Proxy) forward(ex *exchange, w http.ResponseWriter, r *http.Request, t *table, info *accessInfo) bool {
	var up answer
	done := p.request(ex, w, r, t, &up, info)
	if up.b != nil {
		// least_conn counts the exchange open until it ends, tunnels
		// and streams included.
		defer up.b.active.Add(-1)
	}
	if done {
		return true
	}
	if up.res.StatusCode == http.StatusSwitchingProtocols {
		if up.extended {
			return p.tunnelH2(ex, w, r, up.res, up.wsKey, info)
		}
		return p.tunnel(ex, w, r, up.res, up.upgrade, info)
	}
	return p.respond(ex, w, r, &up, info)
}

// answer is what the request phase of an exchange hands the response
// phase.
type answer struct {
	res       *http.Response
	b         *backend // the backend that answered; nil if none was tried
	setCookie string   // the sticky-session cookie to add, if any
	body      *requestBody
	upgrade   string // the HTTP/1.1 upgrade being tunnelled, if any
	extended  bool   // an RFC 8441/9220 extended CONNECT
	wsKey     string // the WebSocket key made up for an extended CONNECT
}

// request sends the request upstream and waits for the response head. It
// returns true when the exchange is over: refused, or failed with the
// client already answered.
func (p *Proxy) request(ex *exchange, w http.ResponseWriter, r *http.Request, t *table, up *answer, info *accessInfo) bool {
	rt := ex.rt
	up.upgrade = upgradeType(r.Header)
	if up.upgrade != "" && (!rt.upgradeAllowed(up.upgrade) || r.ProtoMajor != 1) {
		// Only the route's upgrades (WebSocket) over HTTP/1.1 are
		// tunnelled; "h2c" and any other upgrade are dropped and the
		// request forwarded as a plain one.
		up.upgrade = ""
	}
	// ServeHTTP lets CONNECT through only as an allowed RFC 8441 upgrade.
	up.extended = r.Method == http.MethodConnect
	if up.extended {
		up.upgrade = extendedProtocol(r)
	}
	if rt.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > rt.maxBody {
			p.refuseBody(w, r, rt, info, http.StatusRequestEntityTooLarge)
			return true
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}
	out, sb := p.outgoing(ex, r, t, up)
	res, b, setCookie, err := p.send(ex, r, out, sb)
	up.res, up.b, up.setCookie = res, b, setCookie
	if b != nil {
		info.upstream = b.up.name
	}
	ex.gotHeaders()
	ex.touch()
	if err != nil {
		p.requestFailed(ex, w, r, up.body, err, info)
		return true
	}
	info.status = res.StatusCode
	p.observeHeaders(rt, time.Since(ex.start))
	// The outgoing request is not needed again; a long stream should not
	// keep its clone of the client's headers.
	res.Request = nil
	return false
}

// outgoing makes the request sluice sends upstream, and the wrapper of
// its body while a retry may still need it.
//
// The client's header map and URL are not copied: they become the
// upstream request's (hop-by-hop fields out, X-Forwarded-* in), which
// saves a copy of every header per request. What reads r.Header later
// (Accept-Encoding, Content-Type, Grpc-Timeout) is not changed by that,
// and neither server under it reads the header once the handler runs
// (net/http notes so for issue 14940; the HTTP/2 server is sluice's
// copy). HTTP/3 requests, whose server sluice does not own, and extended
// CONNECT, whose header is rewritten further, are cloned.
func (p *Proxy) outgoing(ex *exchange, r *http.Request, t *table, up *answer) (*http.Request, *sendBody) {
	var out *http.Request
	if r.ProtoMajor <= 2 && !up.extended {
		out = r.WithContext(ex)
	} else {
		out = r.Clone(ex)
	}
	out.RequestURI = ""
	out.URL.Scheme = "http"
	out.Close = false
	// Trailers arrive in r.Trailer when the body ends; sharing the map
	// lets the transport send them on.
	out.Trailer = r.Trailer
	prepareRequestHeader(out.Header, r, up.upgrade, t.trusted)
	switch {
	case up.extended:
		up.wsKey = prepareExtendedConnect(out)
		ex.requestBodyDone.Store(true)
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		// Issue 16036: a nil Body lets the transport retry a request that
		// failed on a reused connection before anything was sent.
		out.Body = nil
		ex.requestBodyDone.Store(true)
	default:
		up.body = &requestBody{ReadCloser: r.Body, ex: ex}
		sb := &sendBody{rc: up.body}
		out.Body = sb
		return out, sb
	}
	return out, nil
}

// refuseBody answers a request whose body sluice will not forward.
func (p *Proxy) refuseBody(w http.ResponseWriter, r *http.Request, rt *route, info *accessInfo, status int) {
	*info = accessInfo{status: status, reason: reasonRefused, upstream: info.upstream}
	why := refusal{status, "request body over the route's max_request_body"}
	if status == http.StatusBadRequest {
		why.reason = "malformed request body framing"
	}
	p.writeRefusal(w, r, rt, why)
}

// requestFailed answers a request that got no response head from the
// upstream.
func (p *Proxy) requestFailed(ex *exchange, w http.ResponseWriter, r *http.Request, body *requestBody, err error, info *accessInfo) {
	rt := ex.rt
	switch {
	case r.ProtoMajor == 1 && body.malformed(r):
		// The client's chunked framing broke (net/http refused it as it
		// read): the upstream got the head and the body up to there,
		// then its exchange is cancelled; it never sees a complete
		// request. The client connection closes after the 400.
		p.refuseBody(w, r, rt, info, http.StatusBadRequest)
		return
	case body.tooLarge():
		// The body crossed max_request_body on its way up; the upstream
		// exchange is cancelled with it.
		p.refuseBody(w, r, rt, info, http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, errNoBackend):
		// Every backend is down: say so at once, no connect timeout.
		info.reason, info.status = reasonUpstreamError, http.StatusServiceUnavailable
	default:
		info.reason = p.classify(ex, body, err)
		info.status = statusFor(info.reason)
		if info.reason == reasonUpstreamError && grpcDeadlinePassed(r, ex.start) {
			info.status = http.StatusGatewayTimeout
		}
	}
	if info.reason != reasonClientGone {
		p.log.Debug("upstream request failed", zap.String("route", rt.name), zap.String("upstream", info.upstream), zap.Error(err))
		writeError(w, r, info.status)
	}
}

// respond sends the response head and streams the body to the client.
func (p *Proxy) respond(ex *exchange, w http.ResponseWriter, r *http.Request, up *answer, info *accessInfo) bool {
	res := up.res
	announced := len(res.Trailer)
	dst, flusher, cw := p.writeHead(ex, w, r, up, info)
	n, err := copyBody(ex, dst, res.Body, flusher)
	info.bytesOut = n
	res.Body.Close()
	if cw != nil {
		if ferr := cw.finish(err == nil); err == nil && ferr != nil {
			err = errClientWrite{ferr}
		}
	}
	if err != nil {
		info.reason = p.classify(ex, up.body, err)
		return false
	}
	if len(res.Trailer) > 0 {
		// Only then: after the head, Header() makes a new map.
		copyTrailers(w.Header(), res.Trailer, announced)
	}
	info.reason = reasonDone
	return true
}

// writeHead writes the response head to the client, flushed when the
// response streams, and returns where the body goes: the client or a
// compressor in front of it, and the flusher to call after each chunk
// (nil when the response does not stream).
func (p *Proxy) writeHead(ex *exchange, w http.ResponseWriter, r *http.Request, up *answer, info *accessInfo) (io.Writer, http.Flusher, *compressWriter) {
	res := up.res
	// Before copyResponseHeader, which takes X-Accel-Buffering out.
	stream := shouldStream(ex.rt.streaming, res)
	copyResponseHeader(w, res)
	if up.setCookie != "" {
		w.Header().Add("Set-Cookie", up.setCookie)
	}
	cw := ex.rt.compress.start(w.Header(), r, res, w)
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
	// The head is sent: a quiet stream need not keep its header map, and
	// sluice's HTTP/2 server need not keep the client's request (it would
	// until the handler returns); what the access log needs is in ex.line.
	res.Header = nil
	if rr, ok := w.(requestReleaser); ok {
		rr.ReleaseRequest()
	}
	if cw == nil {
		return w, flusher, nil
	}
	if flusher != nil {
		flusher = cw
	}
	return cw, flusher, cw
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
		next := nextBufSize(n, size)
		// Drained: the next data may be minutes away, so the buffer goes
		// back as soon as the writer has taken the bytes, before the
		// flush waits for the client side (streams opening together then
		// hold fewer buffers at once).
		drained := next == smallBufSize && wt != nil && rerr == nil
		if n > 0 {
			ex.touch()
			m, werr := w.Write((*buf)[:n])
			written += int64(m)
			if drained {
				putBuf(buf)
				buf, size = nil, next
			}
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
		switch {
		case buf == nil:
		case drained:
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
func (p *Proxy) classify(ex *exchange, body *requestBody, err error) closeReason {
	if reason := ex.expiredReason(); reason != "" {
		return reason
	}
	var cw errClientWrite
	switch {
	case errors.As(err, &cw), ex.clientGone():
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
