package proxy

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// scriptedBody returns the given read sizes in turn, then EOF, and logs
// every Wait and the buffer size of every Read.
type scriptedBody struct {
	sizes []int
	log   []string
}

func (b *scriptedBody) Wait() error {
	b.log = append(b.log, "wait")
	return nil
}

func (b *scriptedBody) Read(p []byte) (int, error) {
	b.log = append(b.log, fmt.Sprintf("read %d", len(p)))
	if len(b.sizes) == 0 {
		return 0, io.EOF
	}
	n := min(b.sizes[0], len(p))
	b.sizes = b.sizes[1:]
	return n, nil
}

// TestCopyBodyWaitsWithoutBuffer: a drained upstream is waited on before
// a buffer is taken; while reads keep coming large the buffer is kept and
// there is no wait between them.
func TestCopyBodyWaitsWithoutBuffer(t *testing.T) {
	body := &scriptedBody{sizes: []int{100, smallBufSize, largeBufSize, 9000, 100}}
	ex := &exchange{start: time.Now()}
	var out bytes.Buffer
	n, err := copyBody(ex, &out, body, nil)
	if err != nil || n != int64(100+smallBufSize+largeBufSize+9000+100) {
		t.Fatalf("copied %d, %v", n, err)
	}
	want := []string{
		"wait", "read 4096", // quiet: wait, then a small buffer
		"wait", "read 4096", // the small read drained it: wait again
		"read 65536",        // a full small read: data flows, large, no wait
		"read 65536",        // still flowing
		"read 65536",        // 9000 > small: still large, no wait
		"wait", "read 4096", // 100: drained, wait with no buffer
	}
	got := strings.Join(body.log, ", ")
	if !strings.HasPrefix(got, strings.Join(want, ", ")) {
		t.Fatalf("calls\n%s\nwant them to start with\n%s", got, strings.Join(want, ", "))
	}
}
