package proxy

import "sync"

// Response bodies are copied through two sizes of pooled buffer. A copy
// from sluice's own upstream client waits for data holding none (see
// copyBody); one from an h2c upstream blocks holding a small one. It moves
// to a large one only while reads keep filling the small one, so
// thousands of quiet streams never cost 64 KiB each.
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
// would have filled the small one (more is likely waiting), small after a
// shorter one (the upstream was drained and the next read may block for
// long). A large read that is not full still means data is flowing: a
// chunk can arrive in parts (what the upstream client had buffered, then
// what the socket held), and dropping to the small buffer between them
// cost a quarter of a big stream's throughput when it was measured.
func nextBufSize(n, size int) int {
	if n >= smallBufSize {
		return largeBufSize
	}
	return smallBufSize
}
