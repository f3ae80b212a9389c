package h1client

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// headPool holds request-head buffers; one that grew for a long head goes
// back grown.
var headPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// bodyBufSize is the buffer the request body goroutine reads into, and so
// the largest write of a body to the upstream. 32 KiB, as Go's own client
// copies with: a 1 GiB upload made half the writes of 16 KiB, at 5 % less
// CPU per MB (docs/benchmarks.md, optimisation 55); 64 KiB is just over
// one loopback segment, and each write went as two.
const bodyBufSize = 32 << 10

var bodyBufPool = sync.Pool{New: func() any { b := make([]byte, bodyBufSize); return &b }}

// hasBody reports whether req carries a body to send.
func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody
}

// reqBodyLength is the request body's declared length, -1 for unknown
// (sent chunked).
func reqBodyLength(req *http.Request) int64 {
	if !hasBody(req) {
		return 0
	}
	if req.ContentLength > 0 {
		return req.ContentLength
	}
	return -1
}

// appendHead appends the request line and header block to b. Header names
// and values are checked: a CR, LF or NUL smuggled into one would split
// the request.
func appendHead(b []byte, req *http.Request) ([]byte, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validMethod(method) {
		return b, fmt.Errorf("h1client: invalid method %q", method)
	}
	uri := req.URL.RequestURI()
	if uri == "" || strings.ContainsAny(uri, " \t\r\n\x00") {
		return b, fmt.Errorf("h1client: invalid request target %q", uri)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return b, fmt.Errorf("h1client: invalid Host %q", host)
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	// Each part is a call of its own so that this frame, which is on the
	// stack of every exchange, stays small (see proxy.forward).
	b, err := appendFields(b, req)
	if err != nil {
		return b, err
	}
	b, err = appendFraming(b, req, method)
	if err != nil {
		return b, err
	}
	return append(b, "\r\n"...), nil
}

// appendFields appends the request's own header fields.
func appendFields(b []byte, req *http.Request) ([]byte, error) {
	// On the stack for a typical request's fields.
	var room [32]string
	keys := room[:0]
	for k := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			// The transport frames the message itself.
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			return b, fmt.Errorf("h1client: invalid header name %q", k)
		}
		for _, v := range req.Header[k] {
			if !httpguts.ValidHeaderFieldValue(v) {
				return b, fmt.Errorf("h1client: invalid value for header %q", k)
			}
			if v == "" && k == "User-Agent" {
				// An empty User-Agent means "send none", as in net/http.
				continue
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if req.Close && !httpguts.HeaderValuesContainsToken(req.Header["Connection"], "close") {
		b = append(b, "Connection: close\r\n"...)
	}
	return b, nil
}

// appendFraming appends the fields that frame the request body.
func appendFraming(b []byte, req *http.Request, method string) ([]byte, error) {
	switch n := reqBodyLength(req); {
	case n > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, "\r\n"...)
	case n < 0:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		if len(req.Trailer) > 0 {
			names := make([]string, 0, len(req.Trailer))
			for k := range req.Trailer {
				if !httpguts.ValidHeaderFieldName(k) {
					return b, fmt.Errorf("h1client: invalid trailer name %q", k)
				}
				names = append(names, http.CanonicalHeaderKey(k))
			}
			slices.Sort(names)
			b = append(b, "Trailer: "...)
			b = append(b, strings.Join(names, ", ")...)
			b = append(b, "\r\n"...)
		}
	case method != http.MethodGet && method != http.MethodHead:
		// Many servers want a length on a body-less POST, as net/http
		// sends it.
		b = append(b, "Content-Length: 0\r\n"...)
	}
	return b, nil
}

func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return m != ""
}

// errBodyNotSent: the upstream answered an Expect: 100-continue request
// with a final status, so the body stays unsent.
var errBodyNotSent = errors.New("h1client: request body not sent")

// bodyReadError is a failure to read the request body (the client's
// side), as opposed to a failure to write it upstream.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "reading request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// writeBody streams the request body to the upstream: Content-Length bytes
// exactly, or chunked with req.Trailer after the last chunk.
func writeBody(nc net.Conn, req *http.Request) error {
	bp := bodyBufPool.Get().(*[]byte)
	defer bodyBufPool.Put(bp)
	buf := *bp
	n := reqBodyLength(req)
	if n > 0 {
		left := n
		for left > 0 {
			m, rerr := req.Body.Read(buf[:min(int64(len(buf)), left)])
			if m > 0 {
				if _, err := nc.Write(buf[:m]); err != nil {
					return err
				}
				left -= int64(m)
			}
			if rerr == io.EOF && left > 0 {
				return &bodyReadError{fmt.Errorf("body ended %d bytes short of its Content-Length", left)}
			}
			if rerr != nil && rerr != io.EOF {
				return &bodyReadError{rerr}
			}
		}
		return nil
	}
	var size [20]byte
	for {
		m, rerr := req.Body.Read(buf)
		if m > 0 {
			hdr := strconv.AppendInt(size[:0], int64(m), 16)
			hdr = append(hdr, '\r', '\n')
			// One writev per chunk: the chunk's framing goes with it.
			bufs := net.Buffers{hdr, buf[:m], crlf}
			if _, err := bufs.WriteTo(nc); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &bodyReadError{rerr}
		}
	}
	end := append(make([]byte, 0, 64), "0\r\n"...)
	for k, vv := range req.Trailer {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("h1client: invalid trailer name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("h1client: invalid value for trailer %q", k)
			}
			end = append(end, http.CanonicalHeaderKey(k)...)
			end = append(end, ": "...)
			end = append(end, v...)
			end = append(end, "\r\n"...)
		}
	}
	end = append(end, "\r\n"...)
	_, err := nc.Write(end)
	return err
}

var crlf = []byte("\r\n")
