package h2

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/sluiceproxy/sluice/config"
	sluicetls "github.com/sluiceproxy/sluice/tls"
)

// The benchmarks below measure the client side of sluice alone (TLS,
// the filters, x/net's server) with a handler in place of the proxy, over
// loopback with x/net's client:
//
//	go test -run '^$' -bench H2 -count 5 ./h2

// benchServer serves h on a fresh HTTPS listener and returns an HTTP/2
// client for it and its base URL. With stock set, the server is a plain
// net/http server with x/net's ConfigureServer and the same HTTP/2
// settings, terminating TLS itself: the baseline without sluice's
// clientConn, combineConn and filters.
func benchServer(b *testing.B, stock bool, h http.HandlerFunc) (*http.Client, string) {
	b.Helper()
	tc, err := sluicetls.NewConfig(nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	var addr string
	if stock {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: h, TLSConfig: tc.Clone()}
		if err := http2.ConfigureServer(hs, &http2.Server{
			MaxReadFrameSize: maxReadFrameSize, WriteByteTimeout: writeByteTimeout,
			MaxUploadBufferPerConnection: maxUploadBufferPerConn, MaxUploadBufferPerStream: maxUploadBufferPerStream,
		}); err != nil {
			b.Fatal(err)
		}
		go hs.Serve(tls.NewListener(ln, hs.TLSConfig))
		b.Cleanup(func() { hs.Close() })
		addr = ln.Addr().String()
	} else {
		listen := config.Listen{HTTPS: "127.0.0.1:0"}
		s, err := New(Options{Listen: listen, Limits: config.Default().Server, TLS: tc, Log: zap.NewNop(), Handler: h})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Listen(listen); err != nil {
			b.Fatal(err)
		}
		s.Serve()
		b.Cleanup(s.Close)
		addr, _ = s.Addrs()
	}
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, "https://" + addr
}

// both runs bench against sluice's listener and the stock baseline.
func both(b *testing.B, bench func(b *testing.B, stock bool)) {
	b.Run("sluice", func(b *testing.B) { bench(b, false) })
	b.Run("stock", func(b *testing.B) { bench(b, true) })
}

// BenchmarkH2Request: one small request and response at a time on a warm
// connection (what the ttfb workload measures, without the upstream).
func BenchmarkH2Request(b *testing.B) { both(b, benchRequest) }

func benchRequest(b *testing.B, stock bool) {
	body := []byte("hello, this is a short response\n")
	c, url := benchServer(b, stock, func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
		w.(http.Flusher).Flush()
	})
	get := func() {
		res, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	get()
	for b.Loop() {
		get()
	}
}

// BenchmarkH2Echo: a 64-byte DATA frame to the handler and its echo back,
// one at a time on one stream (per-chunk latency, both directions).
func BenchmarkH2Echo(b *testing.B) { both(b, benchEcho) }

func benchEcho(b *testing.B, stock bool) {
	c, url := benchServer(b, stock, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	defer pw.Close()
	chunk := make([]byte, 64)
	got := make([]byte, 64)
	for b.Loop() {
		if _, err := pw.Write(chunk); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(res.Body, got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkH2Download: a response written in 64 KiB writes (the big
// stream workload, without the upstream).
func BenchmarkH2Download(b *testing.B) { both(b, benchDownload) }

func benchDownload(b *testing.B, stock bool) {
	const writeSize, writes = 64 << 10, 256
	block := make([]byte, writeSize)
	c, url := benchServer(b, stock, func(w http.ResponseWriter, r *http.Request) {
		for range writes {
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	})
	b.SetBytes(writeSize * writes)
	for b.Loop() {
		res, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, res.Body); err != nil || n != writeSize*writes {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		res.Body.Close()
	}
}
