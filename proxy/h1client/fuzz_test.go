package h1client

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzResponse feeds arbitrary upstream bytes to the head parser, the
// framing rules and the body readers: any input must end in a response or
// an error, never a panic or a hang, and a body must never return more
// than its declared length.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-A\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-A: 1\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw",
		"HTTP/1.1 200 OK\nContent-Length: 3\nContent-Length: 4\n\nabcd",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		client, upstream := net.Pipe()
		defer client.Close()
		go func() {
			upstream.Write(raw)
			upstream.Close()
		}()
		c := newConn(client)
		client.SetDeadline(time.Now().Add(5 * time.Second))
		res, _, err := readHead(c, 64<<10)
		if err != nil {
			return
		}
		kind, err := framing(res, http.MethodGet)
		if err != nil || res.StatusCode/100 == 1 {
			return
		}
		ex := &exchange{t: &Transport{}, c: c, ctx: context.Background(), res: res, stop: func() bool { return false }}
		b := &body{ex: ex, kind: kind, remain: res.ContentLength}
		var got bytes.Buffer
		n, err := io.Copy(&got, io.LimitReader(b, 1<<20))
		if err == nil && kind == bodyLength && n != res.ContentLength {
			t.Fatalf("body of %d bytes for Content-Length %d", n, res.ContentLength)
		}
		if n > int64(len(raw)) {
			t.Fatalf("body of %d bytes from %d input bytes", n, len(raw))
		}
	})
}
