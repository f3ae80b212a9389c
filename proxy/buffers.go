package proxy

import "sync"

// Response bodies are copied through two sizes of pooled buffer. A copy
// blocked on a quiet upstream holds a small one; it moves to a large one
// only while reads keep filling the small one, so thousands of idle
// streams cost 4 KiB each, not 64.
const (
	smallBufSize = 4 << 10
	largeBufSize = 64 << 10
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
)

func getBuf(size int) *[]byte {
	if size == largeBufSize {
		return largeBufs.Get().(*[]byte)
	}
	return smallBufs.Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if len(*b) == largeBufSize {
		largeBufs.Put(b)
	} else {
		smallBufs.Put(b)
	}
}

// nextBufSize picks the buffer for the next read: large after a read that
// filled the buffer (more is likely waiting), small after a short one (the
// upstream was drained and the next read may block for long).
func nextBufSize(n, size int) int {
	if n == size {
		return largeBufSize
	}
	return smallBufSize
}
