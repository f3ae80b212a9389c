package h1client

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sluiceproxy/sluice/internal/chunked"
)

// ProtocolError is a response the upstream got wrong: a malformed status
// line or header, conflicting framing, a broken chunk.
type ProtocolError struct{ What string }

func (e *ProtocolError) Error() string { return "h1client: malformed response: " + e.What }

func protoErr(format string, args ...any) error {
	return &ProtocolError{What: fmt.Sprintf(format, args...)}
}

// readHead reads one response head (status line and header block, up to
// limit bytes) from c and parses it, returning its size. Framing is not
// decided here.
func readHead(c *conn, limit int) (*http.Response, int, error) {
	end := 0
	for {
		b := c.buf[c.r:c.w]
		if i := headEnd(b); i >= 0 {
			end = i
			break
		}
		if c.buffered() > limit {
			return nil, 0, errHeaderTooLarge
		}
		// Waiting for the head takes no buffer (fillWait).
		if err := c.fillWait(limit + 4); err != nil {
			return nil, 0, err
		}
	}
	if end > limit {
		return nil, 0, errHeaderTooLarge
	}
	// One string for the whole head: every header value is a substring.
	head := string(c.buf[c.r : c.r+end])
	c.r += end
	c.release()
	res, err := parseHead(head)
	return res, end, err
}

// headEnd returns the length of the head in b including its blank line,
// or -1 while it is incomplete.
func headEnd(b []byte) int {
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		nl := off + i
		if nl+1 < len(b) && b[nl+1] == '\n' {
			return nl + 2
		}
		if nl+2 < len(b) && b[nl+1] == '\r' && b[nl+2] == '\n' {
			return nl + 3
		}
		off = nl + 1
	}
}

// parseHead parses a complete head: status line, then header lines, then
// the blank line.
func parseHead(head string) (*http.Response, error) {
	line, rest, _ := strings.Cut(head, "\n")
	line = strings.TrimSuffix(line, "\r")
	res := &http.Response{}
	if err := parseStatusLine(res, line); err != nil {
		return nil, err
	}
	// One backing array for the values, as net/textproto does: a field
	// seen once (most are) takes a one-element slice of it instead of an
	// allocation of its own. The line count sizes it, up to a bound: the
	// head may be a megabyte of short lines.
	n := min(strings.Count(rest, "\n"), 64)
	res.Header = make(http.Header, n)
	vals := make([]string, n)
	for {
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return res, nil
		}
		name, value, err := parseHeaderLine(line)
		if err != nil {
			return nil, err
		}
		if vv, ok := res.Header[name]; ok || len(vals) == 0 {
			res.Header[name] = append(vv, value)
		} else {
			vals[0] = value
			res.Header[name] = vals[:1:1]
			vals = vals[1:]
		}
	}
}

func parseStatusLine(res *http.Response, line string) error {
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return protoErr("status line %q", line)
	}
	// Proto and Status are the only parts of the head the response keeps
	// for its whole life; they must not be substrings of the head, or a
	// held stream keeps the whole head. (Header values are substrings,
	// but the header is dropped once it is written to the client.)
	switch proto {
	case "HTTP/1.1":
		res.Proto, res.ProtoMinor = "HTTP/1.1", 1
	case "HTTP/1.0":
		res.Proto = "HTTP/1.0"
	default:
		return protoErr("protocol %q", proto)
	}
	res.ProtoMajor = 1
	code, reason, _ := strings.Cut(status, " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '9' {
		return protoErr("status code %q", code)
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		return protoErr("status code %q", code)
	}
	for i := 0; i < len(reason); i++ {
		if c := reason[i]; c < ' ' && c != '\t' || c == 0x7f {
			return protoErr("control byte in reason phrase")
		}
	}
	res.StatusCode = n
	if known, ok := knownStatus[status]; ok {
		res.Status = known
	} else {
		res.Status = strings.Clone(status)
	}
	return nil
}

// knownStatus holds "200 OK" and the like for every code net/http names,
// so that the usual status line costs no copy.
var knownStatus = func() map[string]string {
	m := make(map[string]string)
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			s := strconv.Itoa(code) + " " + text
			m[s] = s
		}
	}
	return m
}()

// parseHeaderLine splits and checks "Name: value". Obsolete line folding
// and whitespace before the colon are refused (RFC 9112 sections 5.1 and
// 5.2), as is any byte a header may not carry.
func parseHeaderLine(line string) (string, string, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", protoErr("folded header line")
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || !httpguts.ValidHeaderFieldName(name) {
		return "", "", protoErr("header line %q", trimForError(line))
	}
	value = strings.Trim(value, " \t")
	if !httpguts.ValidHeaderFieldValue(value) {
		return "", "", protoErr("value of header %q", name)
	}
	return textproto.CanonicalMIMEHeaderKey(name), value, nil
}

func trimForError(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// framing decides how the response body is delimited and sets the
// Response fields net/http would: ContentLength, TransferEncoding, Close
// and Trailer. It returns the body kind.
func framing(res *http.Response, method string) (bodyKind, error) {
	h := res.Header
	res.Close = closeRequested(res)
	cl, err := contentLength(h["Content-Length"])
	if err != nil {
		return 0, err
	}
	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok {
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return 0, protoErr("unsupported transfer encoding %q", te)
		}
		if res.ProtoMinor == 0 {
			// RFC 9112 section 6.1: chunked framing from an HTTP/1.0
			// message cannot be trusted; the body runs to the close.
			res.Close = true
		}
		chunked = true
		// Chunked framing wins over a Content-Length (RFC 9112 6.3).
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
		cl = -1
		res.TransferEncoding = []string{"chunked"}
	}
	if chunked {
		if err := announcedTrailers(res); err != nil {
			return 0, err
		}
	} else {
		delete(h, "Trailer")
	}
	switch {
	case method == http.MethodHead:
		res.ContentLength = cl
		return bodyNone, nil
	case res.StatusCode/100 == 1, res.StatusCode == http.StatusNoContent, res.StatusCode == http.StatusNotModified:
		res.ContentLength = 0
		return bodyNone, nil
	case chunked:
		res.ContentLength = -1
		return bodyChunked, nil
	case cl >= 0:
		res.ContentLength = cl
		if cl == 0 {
			return bodyNone, nil
		}
		return bodyLength, nil
	}
	// Delimited by the close: the connection cannot be reused.
	res.ContentLength = -1
	res.Close = true
	return bodyClose, nil
}

// closeRequested reports whether the upstream will close after this
// response: Connection: close, or HTTP/1.0 without keep-alive.
func closeRequested(res *http.Response) bool {
	conn := res.Header["Connection"]
	if httpguts.HeaderValuesContainsToken(conn, "close") {
		return true
	}
	return res.ProtoMinor == 0 && !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
}

// contentLength parses the Content-Length values: repeated identical
// values are one (RFC 9110 8.6), differing ones are an error. -1 means
// none.
func contentLength(vals []string) (int64, error) {
	if len(vals) == 0 {
		return -1, nil
	}
	first := strings.TrimSpace(vals[0])
	for _, v := range vals[1:] {
		if strings.TrimSpace(v) != first {
			return 0, protoErr("conflicting Content-Length values %q", vals)
		}
	}
	if first == "" || len(first) > 18 {
		return 0, protoErr("Content-Length %q", first)
	}
	var n int64
	for i := 0; i < len(first); i++ {
		c := first[i]
		if c < '0' || c > '9' {
			return 0, protoErr("Content-Length %q", first)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// announcedTrailers fills res.Trailer with the keys the Trailer header
// announces, values nil until the body ends, as net/http does; the
// proxy counts them to tell announced trailers from surprises.
func announcedTrailers(res *http.Response) error {
	vals, ok := res.Header["Trailer"]
	if !ok {
		return nil
	}
	delete(res.Header, "Trailer")
	for _, v := range vals {
		for _, k := range strings.Split(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
			switch k {
			case "":
				continue
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return protoErr("forbidden trailer %q", k)
			}
			if res.Trailer == nil {
				res.Trailer = make(http.Header)
			}
			res.Trailer[k] = nil
		}
	}
	return nil
}

// parseChunkSize parses a chunk-size line; extensions are ignored.
func parseChunkSize(line []byte) (int64, error) {
	n, ok := chunked.Size(line)
	if !ok {
		return 0, errBadChunk
	}
	return n, nil
}

var errBadChunk = errors.New("h1client: malformed chunk size")
