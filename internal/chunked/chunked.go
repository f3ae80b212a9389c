// Package chunked parses the chunk-size line of HTTP/1.1 chunked transfer
// coding (RFC 9112, section 7.1), for the two places sluice reads chunked
// bodies itself: the request filter in front of net/http and the upstream
// client.
package chunked

import "bytes"

// Size parses a chunk-size line without its line ending. Chunk extensions
// are allowed and ignored, as is whitespace before them. It reports false
// for anything else, and for sizes that do not fit in 63 bits.
func Size(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
