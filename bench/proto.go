package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/sluiceproxy/sluice/internal/xnet/http2"
)

// serveProto is an experiment, not a peer in the default run: the same
// x/net/http2 server sluice uses, with an upstream HTTP/1.1 exchange done
// in the handler goroutine on a plain connection (no net/http.Transport,
// so no readLoop/writeLoop goroutines and no persistConn), one upstream
// connection per request and nothing else. It bounds from below what a
// held stream costs with sluice's HTTP/2 server and its own upstream
// client ("-peers sluice,h2proto -workloads held"), and a quiet stream
// that holds no copy buffer while it waits. It handles GET without a
// body only.
var protoBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

func serveProto(args []string) error {
	opt := parseServeFlags("serve-h2proto", args)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(r.Context(), "tcp", opt.upstream)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer c.Close()
		stop := context.AfterFunc(r.Context(), func() { c.Close() })
		defer stop()
		bw := bufio.NewWriterSize(c, 512)
		fmt.Fprintf(bw, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", r.URL.RequestURI(), opt.upstream)
		if err := bw.Flush(); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		br := bufio.NewReaderSize(c, 2048)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		f := w.(http.Flusher)
		f.Flush()
		rc, _ := c.(*net.TCPConn).SyscallConn()
		for {
			// A quiet stream holds no copy buffer: wait until the
			// upstream socket has bytes (MSG_PEEK, so nothing is
			// consumed), then take one from the pool for one read.
			if br.Buffered() == 0 {
				var one [1]byte
				rc.Read(func(fd uintptr) bool {
					_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
					return err != syscall.EAGAIN
				})
			}
			buf := protoBufs.Get().(*[]byte)
			n, err := res.Body.Read(*buf)
			if n > 0 {
				if _, werr := w.Write((*buf)[:n]); werr != nil {
					protoBufs.Put(buf)
					return
				}
				f.Flush()
			}
			protoBufs.Put(buf)
			if err == io.EOF {
				return
			}
			if err != nil {
				panic(http.ErrAbortHandler)
			}
		}
	})
	return serveXNet(opt.listen, opt.cert, opt.key, h)
}

// serveFloor is an experiment: the HTTP/2 server sluice uses (its copy of
// x/net/http2, internal/xnet), set up
// as serveProto sets it up, with a handler that answers an event stream
// itself and then waits for the client to go, and no upstream at all.
// What a held stream costs here is what any proxy built on x/net/http2
// pays before it does any proxying ("-peers h2floor -workloads held");
// it answers the small requests itself too ("-workloads small").
// sluice's copy keeps less per quiet stream than x/net itself
// (internal/xnet/UPSTREAM.md).
func serveFloor(args []string) error {
	opt := parseServeFlags("serve-h2floor", args)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sse":
		case "/small":
			// What the upstream answers, from the server itself: the
			// small-request workload's floor.
			serveSmall(w, r)
			return
		default:
			io.WriteString(w, "ok\n")
			return
		}
		if writeHeld(w, r, nil) {
			<-r.Context().Done()
		}
	})
	return serveXNet(opt.listen, opt.cert, opt.key, h)
}

// serveXNet serves h over TLS with the HTTP/2 server sluice uses
// until a signal ends the process.
func serveXNet(listen, cert, key string, h http.Handler) error {
	srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := http2.ConfigureServer(srv, &http2.Server{MaxConcurrentStreams: 250}); err != nil {
		return err
	}
	go waitSignal(func() { srv.Close() })
	if err := srv.ListenAndServeTLS(cert, key); err != http.ErrServerClosed {
		return err
	}
	return nil
}
