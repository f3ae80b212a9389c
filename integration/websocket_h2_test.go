package integration

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/websocket"
)

// wsEchoUpstream is an HTTP/1.1 WebSocket echo server (x/net/websocket).
func wsEchoUpstream(t *testing.T, gotKey chan<- string) string {
	return upstream(t, websocket.Server{
		Handshake: func(cfg *websocket.Config, r *http.Request) error {
			gotKey <- r.Header.Get("Sec-WebSocket-Key")
			return nil
		},
		Handler: func(ws *websocket.Conn) { io.Copy(ws, ws) },
	})
}

// writeWSFrame writes one masked text frame, as a client must (RFC 6455
// section 5.3).
func writeWSFrame(w io.Writer, payload []byte) error {
	if len(payload) > 125 {
		panic("test frames are short")
	}
	var mask [4]byte
	rand.Read(mask[:])
	frame := []byte{0x81, 0x80 | byte(len(payload))}
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	_, err := w.Write(frame)
	return err
}

// readWSFrame reads one unmasked short server frame and returns its
// opcode and payload.
func readWSFrame(r io.Reader) (byte, []byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[1]&0x80 != 0 || hdr[1]&0x7f > 125 {
		return 0, nil, fmt.Errorf("unexpected frame header %x", hdr)
	}
	payload := make([]byte, hdr[1]&0x7f)
	_, err := io.ReadFull(r, payload)
	return hdr[0] & 0x0f, payload, err
}

// TestWebSocketOverHTTP2 opens a WebSocket with RFC 8441 extended CONNECT
// over HTTP/2 and echoes messages through sluice to an HTTP/1.1 WebSocket
// upstream.
func TestWebSocketOverHTTP2(t *testing.T) {
	gotKey := make(chan string, 1)
	up := wsEchoUpstream(t, gotKey)
	p := startSluice(t, "routes:\n"+
		route("ws", "/ws", up, "timeouts: { idle: 1m, total: 0s }")+
		route("nows", "/nows", up, "upgrades: []"))
	tr := &http2.Transport{TLSClientConfig: p.tlsConfig()}
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, p.url("/ws"), pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Origin", "https://localhost")
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("extended CONNECT: status %d, want 200", res.StatusCode)
	}
	if res.Header.Get("Sec-Websocket-Accept") != "" {
		t.Fatal("the HTTP/1.1 handshake's Sec-WebSocket-Accept leaked to the HTTP/2 client")
	}
	select {
	case key := <-gotKey:
		if len(key) != 24 {
			t.Fatalf("upstream got Sec-WebSocket-Key %q", key)
		}
	default:
		t.Fatal("upstream saw no handshake")
	}

	for i := range 10 {
		wsEcho(t, pw, res.Body, fmt.Sprintf("message %d %s", i, strings.Repeat("!", i)))
	}
	// A client close frame ends the session cleanly.
	pw.Write([]byte{0x88, 0x80, 0, 0, 0, 0})
	pw.Close()
	line := p.accessLine("/ws", 10*time.Second)
	if line["method"] != "CONNECT" || line["status"] != float64(200) || line["close_reason"] != "done" {
		t.Fatalf("access line %v", line)
	}

	// A route without the websocket upgrade refuses the CONNECT.
	req, _ = http.NewRequestWithContext(ctx, http.MethodConnect, p.url("/nows"), http.NoBody)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	res2, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("CONNECT on a route without upgrades: %d, want 405", res2.StatusCode)
	}
}

// TestWebSocketOverHTTP3 does the same over HTTP/3 (RFC 9220: extended
// CONNECT on QUIC), with quic-go's client.
func TestWebSocketOverHTTP3(t *testing.T) {
	gotKey := make(chan string, 1)
	up := wsEchoUpstream(t, gotKey)
	p := startSluiceHTTP3(t, "routes:\n"+route("ws", "/ws", up, "timeouts: { idle: 1m, total: 0s }"))
	client := p.h3Client()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, p.url("/ws"), pr)
	req.Proto = "websocket" // quic-go's client sends it as :protocol
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Origin", "https://localhost")
	res, err := client.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 3 {
		t.Fatalf("extended CONNECT over HTTP/3: %s %d, want HTTP/3 200", res.Proto, res.StatusCode)
	}
	select {
	case key := <-gotKey:
		if len(key) != 24 {
			t.Fatalf("upstream got Sec-WebSocket-Key %q", key)
		}
	default:
		t.Fatal("upstream saw no handshake")
	}
	for i := range 5 {
		wsEcho(t, pw, res.Body, fmt.Sprintf("h3 message %d", i))
	}
	pw.Write([]byte{0x88, 0x80, 0, 0, 0, 0})
	pw.Close()
	line := p.accessLine("/ws", 10*time.Second)
	if line["method"] != "CONNECT" || line["proto"] != "websocket" || line["status"] != float64(200) {
		t.Fatalf("access line %v", line)
	}
}

// wsEcho sends msg as a text frame on w and wants it echoed on r.
func wsEcho(t *testing.T, w io.Writer, r io.Reader, msg string) {
	t.Helper()
	if err := writeWSFrame(w, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	op, echo, err := readWSFrame(r)
	if err != nil {
		t.Fatalf("echo of %q: %v", msg, err)
	}
	if op != 1 || string(echo) != msg {
		t.Fatalf("echo of %q: opcode %d %q", msg, op, echo)
	}
}
