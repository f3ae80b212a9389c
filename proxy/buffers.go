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
// would have filled the small one (more is likely waiting), small after a
// shorter one (the upstream was drained and the next read may block for
// long). A large read that is not full still means data is flowing: the
// transport's 4 KiB read buffer hands a chunk over in two reads, its
// buffered head then the rest, and dropping to the small buffer between
// them cost a quarter of a big stream's throughput.
func nextBufSize(n, size int) int {
	if n >= smallBufSize {
		return largeBufSize
	}
	return smallBufSize
}
