package proxy

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/net/http/httpguts"
)

// compressRule is a route's compress setting, compiled.
type compressRule struct {
	types     []string // lowercased media types; "text/*" ranges allowed
	minLength int64
}

// encoder is what gzip, zstd and brotli writers have in common.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(io.Writer)
}

// Encoders are pooled: a zstd or brotli encoder's tables cost far more to
// build than to reset. Levels and windows are modest on purpose: memory
// per open stream stays bounded (zstd: 64 KiB window, one goroutine;
// brotli: 256 KiB window).
var encoderPools = map[string]*sync.Pool{
	"zstd": {New: func() any {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10),
			zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic("proxy: zstd options: " + err.Error())
		}
		return e
	}},
	"br": {New: func() any {
		return brotli.NewWriterOptions(io.Discard, brotli.WriterOptions{Quality: 4, LGWin: 18})
	}},
	"gzip": {New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, 5)
		return w
	}},
}

// serverPreference breaks ties between encodings the client weighs the
// same: zstd compresses best per CPU, then brotli, then gzip.
var serverPreference = []string{"zstd", "br", "gzip"}

// chooseEncoding returns the encoding to use for a client's
// Accept-Encoding, or "" for none: the highest q-value wins, ties go by
// serverPreference, q=0 refuses, and "*" covers what is not listed.
func chooseEncoding(acceptEncoding []string) string {
	q := map[string]float64{}
	star := -1.0
	for _, line := range acceptEncoding {
		for _, part := range strings.Split(line, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			weight := 1.0
			if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(strings.ToLower(k)) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					weight = f
				}
			}
			if name == "*" {
				star = weight
			} else {
				q[name] = weight
			}
		}
	}
	best, bestQ := "", 0.0
	for _, enc := range serverPreference {
		w, ok := q[enc]
		if !ok {
			w = max(star, 0)
		}
		if w > bestQ {
			best, bestQ = enc, w
		}
	}
	return best
}

// compressible reports whether the rule applies to res at all (whatever
// the client accepts): then the response varies by Accept-Encoding.
func (c *compressRule) compressible(r *http.Request, res *http.Response) bool {
	if c == nil || len(c.types) == 0 || r.Method == http.MethodHead {
		return false
	}
	switch {
	case res.StatusCode < 200, res.StatusCode == http.StatusNoContent,
		res.StatusCode == http.StatusPartialContent, res.StatusCode == http.StatusNotModified:
		return false
	}
	h := res.Header
	if h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" ||
		httpguts.HeaderValuesContainsToken(h["Cache-Control"], "no-transform") {
		return false
	}
	if res.ContentLength >= 0 && res.ContentLength < c.minLength {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return false
	}
	for _, t := range c.types {
		if t == mt || strings.HasSuffix(t, "/*") && strings.HasPrefix(mt, t[:len(t)-1]) {
			return true
		}
	}
	return false
}

// compressWriter compresses a response body into the client's
// ResponseWriter.
type compressWriter struct {
	enc  encoder
	pool *sync.Pool
	w    http.ResponseWriter
}

// startCompression decides whether res is compressed for r and, if so,
// rewrites the headers in dst (already copied from res) and returns the
// writer the body goes through. It must run before WriteHeader.
func (c *compressRule) start(dst http.Header, r *http.Request, res *http.Response, w http.ResponseWriter) *compressWriter {
	if !c.compressible(r, res) {
		return nil
	}
	if !httpguts.HeaderValuesContainsToken(dst["Vary"], "Accept-Encoding") {
		dst.Add("Vary", "Accept-Encoding")
	}
	enc := chooseEncoding(r.Header["Accept-Encoding"])
	if enc == "" {
		return nil
	}
	dst.Del("Content-Length")
	dst.Set("Content-Encoding", enc)
	// The bytes differ from the upstream's now: a strong validator
	// would lie.
	if et := dst.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		dst.Set("Etag", "W/"+et)
	}
	pool := encoderPools[enc]
	e := pool.Get().(encoder)
	e.Reset(w)
	return &compressWriter{enc: e, pool: pool, w: w}
}

func (cw *compressWriter) Write(p []byte) (int, error) { return cw.enc.Write(p) }

// Flush pushes everything written so far through the compressor and on
// to the client: a streamed chunk is never held back in the encoder.
func (cw *compressWriter) Flush() {
	if cw.enc.Flush() == nil {
		if f, ok := cw.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// finish ends the compressed stream (complete says whether to write its
// end, or whether the response is being abandoned) and returns the encoder
// to its pool.
func (cw *compressWriter) finish(complete bool) error {
	var err error
	if complete {
		err = cw.enc.Close()
	}
	cw.enc.Reset(io.Discard)
	cw.pool.Put(cw.enc)
	return err
}
