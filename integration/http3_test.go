package integration

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// startSluiceHTTP3 runs sluice with listen.http3 on, plus body.
func startSluiceHTTP3(t *testing.T, body string) *sluiceProc {
	t.Helper()
	cert := newTestCert(t)
	hdr := strings.Replace(header(cert), "  http: \"\"\n", "  http: \"\"\n  http3: true\n", 1)
	p := startSluiceConfig(t, hdr+body, cert)
	l := p.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "listening" && l["listener"] == "http3"
	})
	if l["addr"] != p.addr {
		t.Fatalf("http3 listens on %v, want the https address %s", l["addr"], p.addr)
	}
	return p
}

// h3Client is quic-go's HTTP/3 client, trusting the test certificate.
// Its QUIC idle timeout is 5s, the least quic-go advertises: a silence
// longer than that survives only through sluice's keep-alive PINGs.
func (p *sluiceProc) h3Client() *http.Client {
	tr := &http3.Transport{
		TLSClientConfig: p.tlsConfig(),
		QUICConfig:      &quic.Config{MaxIdleTimeout: 5 * time.Second},
	}
	p.t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

func TestHTTP3ChunksArriveOneByOne(t *testing.T) {
	const n = 20
	ack := make(chan int)
	failed := make(chan string, 1)
	up := upstream(t, lockstepUpstream(t, n, ack, failed))
	p := startSluiceHTTP3(t, "routes:\n"+route("app", "/", up))

	res, err := p.h3Client().Get(p.url("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 3 {
		t.Fatalf("proto %s, want HTTP/3", res.Proto)
	}
	br := bufio.NewReader(res.Body)
	readLockstep(t, br, n, ack, failed, "")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the last chunk: %v, want a clean EOF", err)
	}
	if l := p.accessLine("/stream", 5*time.Second); l["close_reason"] != "done" || l["proto"] != "HTTP/3.0" {
		t.Fatalf("access line %v, want proto HTTP/3.0 and close_reason done", l)
	}
}

func TestHTTP3PerRouteIdleTimeouts(t *testing.T) {
	slowGone := make(chan time.Time, 1)
	defGone := make(chan time.Time, 1)
	slow := upstream(t, pausingUpstream([]time.Duration{6500 * time.Millisecond}, slowGone))
	def := upstream(t, pausingUpstream([]time.Duration{3 * time.Second}, defGone))
	p := startSluiceHTTP3(t, `timeouts: { idle: 1s, total: 0s }
routes:
`+route("events", "/events/", slow, "timeouts: { idle: 8s }")+route("app", "/", def))
	client := p.h3Client()

	t.Run("long idle keeps a quiet stream past the QUIC idle timeout", func(t *testing.T) {
		t.Parallel()
		res, err := client.Get(p.url("/events/feed"))
		if err != nil {
			t.Fatal(err)
		}
		body, err, _ := readAllTimed(res.Body)
		if err != nil || !strings.Contains(body, "data: 1") {
			t.Fatalf("stream with a 6.5s silence under route idle 8s (QUIC idle 5s) was cut: %v, body %q", err, body)
		}
		if l := p.accessLine("/events/feed", 5*time.Second); l["close_reason"] != "done" {
			t.Fatalf("close_reason %v, want done", l["close_reason"])
		}
	})
	t.Run("default idle resets a long silence", func(t *testing.T) {
		t.Parallel()
		res, err := client.Get(p.url("/page"))
		if err != nil {
			t.Fatal(err)
		}
		body, err, first := readAllTimed(res.Body)
		cut := time.Since(first)
		if err == nil {
			t.Fatalf("a 3s silence under idle 1s ended cleanly: %q", body)
		}
		if cut < 900*time.Millisecond || cut > 2*time.Second {
			t.Fatalf("stream reset %s after the last chunk, want about 1s", cut)
		}
		var se *http3.Error
		if !errors.As(err, &se) {
			t.Fatalf("want an HTTP/3 stream reset, got %T %v", err, err)
		}
		select {
		case <-defGone:
		case <-time.After(time.Second):
			t.Fatal("upstream exchange still open after the idle reset")
		}
		if l := p.accessLine("/page", 5*time.Second); l["close_reason"] != "idle_timeout" {
			t.Fatalf("close_reason %v, want idle_timeout", l["close_reason"])
		}
	})
}

func TestHTTP3ClientCancelClosesUpstream(t *testing.T) {
	gone := make(chan time.Time, 1)
	up := upstream(t, pausingUpstream([]time.Duration{30 * time.Second}, gone))
	p := startSluiceHTTP3(t, "routes:\n"+route("app", "/", up))

	cancelClosesUpstream(t, p.h3Client(), p.url("/cancel"), gone, 200*time.Millisecond)
	if l := p.accessLine("/cancel", 5*time.Second); l["close_reason"] != "client_gone" {
		t.Fatalf("close_reason %v, want client_gone", l["close_reason"])
	}
}

func TestAltSvcAdvertisesHTTP3(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	p := startSluiceHTTP3(t, "routes:\n"+route("app", "/", up))
	_, port, _ := net.SplitHostPort(p.addr)
	want := `h3=":` + port + `"; ma=86400`
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"http2", p.h2Client()}, {"http1.1", p.h1Client()}} {
		res, err := c.client.Get(p.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Alt-Svc"); got != want {
			t.Fatalf("%s: Alt-Svc %q, want %q", c.name, got, want)
		}
	}
	// The advertised endpoint answers HTTP/3 with the same certificate.
	res, err := p.h3Client().Get(p.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 3 || res.Header.Get("Alt-Svc") != "" {
		t.Fatalf("HTTP/3 answer: %s, Alt-Svc %q", res.Proto, res.Header.Get("Alt-Svc"))
	}

	// Without listen.http3 nothing is advertised.
	plain := startSluice(t, "routes:\n"+route("app", "/", up))
	res, err = plain.h2Client().Get(plain.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Alt-Svc"); got != "" {
		t.Fatalf("Alt-Svc %q without listen.http3", got)
	}
}

func TestHTTP3StreamDrainsOnShutdown(t *testing.T) {
	up := upstream(t, pausingUpstream([]time.Duration{time.Second}, nil))
	p := startSluiceHTTP3(t, "server: { shutdown_timeout: 10s }\nroutes:\n"+route("app", "/", up))
	res := openStream(t, p.h3Client(), p.url("/drain"))
	defer res.Body.Close()
	p.signal(15)
	body, err, _ := readAllTimed(res.Body)
	if err != nil || !strings.Contains(body, "data: 1") {
		t.Fatalf("open HTTP/3 stream cut by a graceful stop: %v, rest %q", err, body)
	}
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestHTTP3ShutdownTimeoutEndsStreams(t *testing.T) {
	gone := make(chan time.Time, 1)
	up := upstream(t, pausingUpstream([]time.Duration{30 * time.Second}, gone))
	p := startSluiceHTTP3(t, "server: { shutdown_timeout: 1s }\nroutes:\n"+route("app", "/", up))
	res := openStream(t, p.h3Client(), p.url("/stuck"))
	defer res.Body.Close()
	p.signal(15)
	if body, err, _ := readAllTimed(res.Body); err == nil {
		t.Fatalf("stream still open past shutdown_timeout ended cleanly: %q", body)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream exchange still open after the shutdown")
	}
	if l := p.accessLine("/stuck", 5*time.Second); l["close_reason"] != "shutdown" {
		t.Fatalf("close_reason %v, want shutdown", l["close_reason"])
	}
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
