package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// startASGIExample runs examples/asgi under uvicorn on a unix socket and
// sluice in front of it with the example's routes.
func startASGIExample(t *testing.T) *sluiceProc {
	t.Helper()
	dir := exampleDir(t, "examples/asgi")
	validateExampleConfig(t, dir+"/config.yaml")
	sock := exampleSocket(t, "uvicorn.sock")
	cmd := exec.Command(debianPython, "-m", "uvicorn", "app:app", "--app-dir", dir, "--uds", sock)
	startExampleApp(t, cmd, regexp.MustCompile(`Uvicorn running on unix socket`))
	return startSluice(t, exampleRoutes(t, dir+"/config.yaml", "/tmp/sluice-asgi.sock", sock))
}

// TestExampleASGISSE: the uvicorn SSE feed's events reach an HTTP/2
// client as they are sent; when the client leaves mid-feed, sluice logs
// client_gone.
func TestExampleASGISSE(t *testing.T) {
	p := startASGIExample(t)
	res, err := p.h2Client().Get(p.url("/events/clock?n=0&every=0.25"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ProtoMajor != 2 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("got %s %q", res.Proto, res.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(res.Body)
	const n = 8
	worst := readTimedEvents(t, br, n)
	// An endless feed: the client hangs up, and sluice ends the exchange
	// as client_gone (and closes the uvicorn connection).
	res.Body.Close()
	l := p.accessLine("/events/clock", 5*time.Second)
	if l["route"] != "events" || l["close_reason"] != "client_gone" {
		t.Fatalf("access line %v", l)
	}
	t.Logf("uvicorn SSE: %d events through sluice (HTTP/2), worst sentLateness %s", n, worst)
}

// TestExampleASGIWebSocketEcho: a WebSocket to uvicorn through sluice
// (wss, HTTP/1.1 upgrade tunnelled to the unix socket) echoes text and a
// large binary message, both ways, then closes cleanly.
func TestExampleASGIWebSocketEcho(t *testing.T) {
	p := startASGIExample(t)
	cfg, err := websocket.NewConfig("wss://"+p.addr+"/ws/echo", "https://"+p.addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TlsConfig = p.tlsConfig()
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetDeadline(time.Now().Add(20 * time.Second))
	for i := 0; i < 5; i++ {
		msg := fmt.Sprintf("hello %d", i)
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	if err := websocket.Message.Send(ws, big); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := websocket.Message.Receive(ws, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("binary echo of %d bytes came back as %d bytes", len(big), len(got))
	}
	ws.Close()
	l := p.accessLine("/ws/echo", 5*time.Second)
	if l["route"] != "ws" || l["status"] != float64(101) || l["close_reason"] != "done" {
		t.Fatalf("access line %v", l)
	}
}
