package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// tunnel completes an HTTP/1.1 protocol switch (WebSocket) that the
// upstream accepted with 101: the client connection is hijacked and bytes
// are copied both ways until either side closes, the route's idle or total
// timeout passes, or sluice shuts down.
func (p *Proxy) tunnel(ex *exchange, w http.ResponseWriter, r *http.Request, res *http.Response, upgrade string, info *accessInfo) bool {
	fail := func() bool {
		res.Body.Close()
		info.status, info.reason = http.StatusBadGateway, reasonUpstreamError
		http.Error(w, statusText(http.StatusBadGateway), http.StatusBadGateway)
		return true
	}
	if upgrade == "" || upgradeType(res.Header) != upgrade {
		// The upstream switched to a protocol the client did not ask
		// for, or one sluice does not pass.
		return fail()
	}
	back, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return fail()
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fail()
	}
	defer conn.Close()
	defer back.Close()
	closeBoth := func() { conn.Close(); back.Close() }
	if !ex.setOnExpire(closeBoth) {
		info.reason = ex.expiredReason()
		return true
	}

	removeHopByHop(res.Header)
	res.Header.Set("Connection", "Upgrade")
	res.Header.Set("Upgrade", upgrade)
	res.Body = nil // res.Write then writes only the status line and headers
	if err := res.Write(brw); err != nil {
		info.reason = reasonClientGone
		return true
	}
	if err := brw.Flush(); err != nil {
		info.reason = reasonClientGone
		return true
	}
	info.ttfb = time.Since(ex.start)
	ex.requestBodyDone.Store(true)

	splice(ex, back, brw.Reader, conn, back, closeBoth, info)
	return true
}

// splice copies a tunnel both ways — client to upstream and upstream to
// client — until either direction ends; then closeBoth ends the other. It
// records the bytes sent to the client and how the tunnel ended.
func splice(ex *exchange, toUpstream io.Writer, fromClient io.Reader, toClient io.Writer, fromUpstream io.Reader, closeBoth func(), info *accessInfo) {
	var out atomic.Int64
	done := make(chan error, 2)
	go func() { done <- copyTouching(ex, toUpstream, fromClient, nil) }()
	go func() { done <- copyTouching(ex, toClient, fromUpstream, &out) }()
	<-done
	// One direction ended: close both so the other ends too.
	closeBoth()
	<-done
	info.bytesOut = out.Load()
	if reason := ex.expiredReason(); reason != "" {
		info.reason = reason
	} else {
		info.reason = reasonDone
	}
}

// copyTouching copies src to dst, recording activity for the idle
// timeout and, when counter is set, the bytes copied.
func copyTouching(ex *exchange, dst io.Writer, src io.Reader, counter *atomic.Int64) error {
	buf := getBuf(smallBufSize)
	defer putBuf(buf)
	for {
		n, rerr := src.Read(*buf)
		if n > 0 {
			ex.touch()
			if _, werr := dst.Write((*buf)[:n]); werr != nil {
				return werr
			}
			if counter != nil {
				counter.Add(int64(n))
			}
		}
		if rerr != nil {
			return rerr
		}
	}
}
