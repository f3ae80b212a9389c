package proxy

import (
	"errors"
	"io"
	"sync/atomic"
)

// errBodyTooLarge ends a request body that grew past the route's
// max_request_body.
var errBodyTooLarge = errors.New("request body larger than max_request_body")

// limitedBody fails a request body once it passes limit bytes, so a
// chunked upload without Content-Length is bounded too.
type limitedBody struct {
	io.ReadCloser
	left     int64
	exceeded atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	// Read one byte past the limit to tell "exactly limit" from "more".
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.exceeded.Store(true)
		return 0, errBodyTooLarge
	}
	return n, err
}
