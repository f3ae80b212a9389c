package proxy

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"time"

	// Advertises SETTINGS_ENABLE_CONNECT_PROTOCOL on HTTP/2 connections.
	_ "github.com/sluiceproxy/sluice/internal/h2xconnect"
)

// extendedProtocol returns the :protocol of an HTTP/2 (or HTTP/3)
// extended CONNECT request (RFC 8441), lowercased, or "".
func extendedProtocol(r *http.Request) string {
	if r.Method != http.MethodConnect || r.ProtoMajor < 2 {
		return ""
	}
	if r.ProtoMajor == 3 {
		// quic-go's HTTP/3 server (RFC 9220) hands :protocol over as
		// the request's Proto.
		return strings.ToLower(r.Proto)
	}
	return strings.ToLower(r.Header.Get(":protocol"))
}

// prepareExtendedConnect turns the upstream copy of an extended CONNECT
// into the HTTP/1.1 WebSocket handshake the upstream expects (RFC 8441
// section 5 leaves the key out; HTTP/1.1 needs one) and returns the key.
// The stream's data is the tunnel, not a request body.
func prepareExtendedConnect(out *http.Request) string {
	out.Method = http.MethodGet
	out.Header.Del(":protocol")
	out.Body = nil
	out.ContentLength = 0
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	out.Header.Set("Sec-WebSocket-Key", key)
	if out.Header.Get("Sec-WebSocket-Version") == "" {
		out.Header.Set("Sec-WebSocket-Version", "13")
	}
	return key
}

// websocketAccept is the Sec-WebSocket-Accept an upstream must answer to
// key (RFC 6455 section 4.2.2).
func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// tunnelH2 completes an extended CONNECT that the upstream accepted with
// 101: the client gets 200 and the HTTP/2 stream's data is copied to and
// from the upstream connection, every chunk flushed, until either side
// ends, the route's idle or total timeout passes, or sluice shuts down.
func (p *Proxy) tunnelH2(ex *exchange, w http.ResponseWriter, r *http.Request, res *http.Response, key string, info *accessInfo) bool {
	back, ok := res.Body.(io.ReadWriteCloser)
	if !ok || upgradeType(res.Header) != "websocket" || res.Header.Get("Sec-WebSocket-Accept") != websocketAccept(key) {
		res.Body.Close()
		info.status, info.reason = http.StatusBadGateway, reasonUpstreamError
		http.Error(w, statusText(http.StatusBadGateway), http.StatusBadGateway)
		return true
	}
	defer back.Close()
	rc := http.NewResponseController(w)
	closeBoth := func() {
		back.Close()
		r.Body.Close()
	}
	expire := func() {
		closeBoth()
		// Unblocks a write to a client that stopped reading.
		_ = rc.SetWriteDeadline(time.Now())
	}
	if !ex.setOnExpire(expire) {
		info.reason = ex.expiredReason()
		return true
	}

	removeHopByHop(res.Header)
	res.Header.Del("Sec-Websocket-Accept")
	for k, vv := range res.Header {
		w.Header()[k] = vv
	}
	w.WriteHeader(http.StatusOK)
	info.status = http.StatusOK
	if err := rc.Flush(); err != nil {
		info.reason = reasonClientGone
		return true
	}
	info.ttfb = time.Since(ex.start)

	splice(ex, back, r.Body, flushWriter{w, rc}, back, closeBoth, info)
	return true
}

// flushWriter flushes after every write: tunnel bytes are never held.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}
