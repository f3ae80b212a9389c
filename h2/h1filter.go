package h2

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/sluiceproxy/sluice/internal/chunked"
)

// h1Filter checks each HTTP/1.1 request head before net/http reads it,
// and refuses the ambiguous framings net/http accepts (RFC 9112; the
// request smuggling vectors):
//
//   - Content-Length together with Transfer-Encoding (net/http lets
//     Transfer-Encoding win and drops Content-Length);
//   - Content-Length repeated, even with equal values, or not 1*DIGIT;
//   - Transfer-Encoding repeated or other than a lone "chunked";
//   - whitespace between a field name and its colon;
//   - obs-fold (a field line starting with SP or HTAB, which net/http
//     joins to the previous line);
//   - a control character (NUL, bare CR, ...) in a field value.
//
// A refused head is replaced, for net/http, by a request line it cannot
// parse, so net/http itself answers "400 Bad Request" with
// "Connection: close" and closes — after any earlier pipelined response,
// in order. Nothing after a refused head is ever read: no smuggled
// request, and the upstream never sees any of it.
//
// To find where the next head starts the filter follows each body's
// framing (Content-Length bytes, or chunked with trailers). A body whose
// chunked framing breaks is left to net/http, which refuses it as it
// reads (bare LF, bad sizes) and then closes the connection. After a
// request that may switch protocols (Upgrade, CONNECT), or a head too
// large for net/http to accept anyway, bytes pass through unchecked.
type h1Filter struct {
	src     io.Reader
	maxHead int
	small   [512]byte // read buffer when the caller's is smaller
	in      []byte    // read from src, not yet parsed
	out     []byte    // checked, ready for net/http
	state   h1State
	remain  int64 // body or chunk bytes left
	line    []byte
	pass    bool // pass everything through unchecked from now on
	refused bool
	srcErr  error
}

type h1State int

const (
	stHead h1State = iota
	stBody
	stChunkSize
	stChunkData
	stChunkEnd
	stTrailers
)

// refusedHead is what net/http reads instead of a refused request head:
// not a request line, so it answers 400 and closes.
const refusedHead = "REFUSED\r\n\r\n"

func newH1Filter(src io.Reader, maxHead int) *h1Filter {
	return &h1Filter{src: src, maxHead: maxHead}
}

func (f *h1Filter) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(f.out) == 0 {
		if f.refused {
			return 0, io.EOF
		}
		if len(f.in) > 0 {
			f.parse()
			if len(f.out) > 0 || f.refused {
				continue
			}
			if f.srcErr != nil {
				// An incomplete line or head at the end: hand it over
				// as it is, net/http reports the truncation.
				f.emit(len(f.in))
				continue
			}
		}
		if f.srcErr != nil {
			return 0, f.srcErr
		}
		if f.pass && len(f.in) == 0 {
			return f.src.Read(p)
		}
		if (f.state == stBody || f.state == stChunkData) && len(f.in) == 0 && len(p) > 0 {
			// Body bytes go straight through, without a copy.
			n, err := f.src.Read(p[:min(int64(len(p)), f.remain)])
			if transient(err) {
				if n == 0 {
					return 0, err
				}
				err = nil
			}
			f.srcErr = err
			if f.remain -= int64(n); f.remain == 0 {
				if f.state == stBody {
					f.state = stHead
				} else {
					f.state = stChunkEnd
				}
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		// Read into the caller's buffer, which the output overwrites
		// anyway: the filter keeps no large read buffer of its own, so an
		// idle keep-alive connection blocked here holds none. A tiny one
		// (net/http's one-byte background read) would make parsing a head
		// quadratic, hence the small buffer.
		dst := p
		if len(dst) < len(f.small) {
			dst = f.small[:]
		}
		n, err := f.src.Read(dst)
		f.in = append(f.in, dst[:n]...)
		if transient(err) {
			if n == 0 {
				return 0, err
			}
			err = nil
		}
		f.srcErr = err
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	if len(f.out) == 0 {
		f.out = nil
	}
	return n, nil
}

// parse moves what it can of f.in to f.out.
func (f *h1Filter) parse() {
	for len(f.in) > 0 && !f.refused {
		if f.pass {
			f.emit(len(f.in))
			return
		}
		switch f.state {
		case stHead:
			end := headEnd(f.in)
			if end < 0 {
				if len(f.in) > f.maxHead {
					f.pass = true // net/http answers 431
					continue
				}
				return // wait for more
			}
			head := f.in[:end]
			bodyState, length, opaque, ok := checkHead(head)
			if !ok {
				f.out = append(f.out, refusedHead...)
				f.in = nil
				f.refused = true
				return
			}
			f.emit(end)
			f.state, f.remain = bodyState, length
			if opaque {
				f.pass = true
			}
		case stBody, stChunkData:
			n := int(min(int64(len(f.in)), f.remain))
			f.emit(n)
			if f.remain -= int64(n); f.remain == 0 {
				if f.state == stBody {
					f.state = stHead
				} else {
					f.state = stChunkEnd
				}
			}
		case stChunkEnd:
			if len(f.in) < 2 {
				return
			}
			if f.in[0] != '\r' || f.in[1] != '\n' {
				f.pass = true // net/http refuses it
				continue
			}
			f.emit(2)
			f.state = stChunkSize
		case stChunkSize, stTrailers:
			i := bytes.IndexByte(f.in, '\n')
			if i < 0 {
				if len(f.in) > 4096 {
					f.pass = true
				}
				return
			}
			line := f.in[:i+1]
			if len(line) < 2 || line[len(line)-2] != '\r' {
				f.pass = true // bare LF: net/http refuses it
				continue
			}
			body := line[:len(line)-2]
			if f.state == stTrailers {
				if len(body) == 0 {
					f.state = stHead
				}
				f.emit(len(line))
				continue
			}
			size, ok := chunked.Size(body)
			if !ok {
				f.pass = true
				continue
			}
			f.emit(len(line))
			if size == 0 {
				f.state = stTrailers
			} else {
				f.state, f.remain = stChunkData, size
			}
		}
	}
}

func (f *h1Filter) emit(n int) {
	f.out = append(f.out, f.in[:n]...)
	f.in = f.in[n:]
	if len(f.in) == 0 {
		f.in = nil
	}
}

// headEnd returns the length of the request head at the start of b,
// through its empty line, or -1. Empty lines before the request line are
// part of it (net/http skips them).
func headEnd(b []byte) int {
	start := 0
	for start < len(b) && (b[start] == '\r' || b[start] == '\n') {
		start++
	}
	for i := start; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// checkHead validates a request head and returns how its body is framed,
// and whether the connection may stop being HTTP/1.1 after it.
func checkHead(head []byte) (next h1State, length int64, opaque, ok bool) {
	lines := bytes.Split(bytes.TrimLeft(head, "\r\n"), []byte("\n"))
	if len(lines) == 0 {
		return 0, 0, false, false
	}
	reqLine := bytes.TrimSuffix(lines[0], []byte("\r"))
	if bytes.HasPrefix(reqLine, []byte("CONNECT ")) {
		opaque = true
	}
	var cl, te int
	for _, l := range lines[1:] {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) == 0 {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			return 0, 0, false, false // obs-fold
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || bytes.ContainsAny(l[:colon], " \t") {
			return 0, 0, false, false
		}
		value := bytes.Trim(l[colon+1:], " \t")
		for _, c := range value {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return 0, 0, false, false
			}
		}
		name := l[:colon]
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl++
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || len(value) == 0 || value[0] < '0' || value[0] > '9' {
				return 0, 0, false, false
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te++
			if !bytes.EqualFold(value, []byte("chunked")) {
				return 0, 0, false, false
			}
		case bytes.EqualFold(name, []byte("Upgrade")):
			opaque = true
		}
	}
	switch {
	case cl > 1 || te > 1 || cl > 0 && te > 0:
		return 0, 0, false, false
	case te == 1:
		return stChunkSize, 0, opaque, true
	case length > 0:
		return stBody, length, opaque, true
	}
	return stHead, 0, opaque, true
}

// transient reports a read deadline passing: net/http sets one in the
// past to stop its background read after each response (and sets a new
// one before reading on), so it must not stick like EOF does.
func transient(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
