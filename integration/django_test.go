package integration

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gunicorn runs the test Django app under Debian's gunicorn on bind
// ("127.0.0.1:0" or "unix:/path") and returns the upstream URL for sluice
// and the file where the app records streams closed early.
func gunicorn(t *testing.T, bind string) (upstreamURL, goneFile string) {
	t.Helper()
	app, err := filepath.Abs("testdata/djangoapp")
	if err != nil {
		t.Fatal(err)
	}
	goneFile = filepath.Join(t.TempDir(), "gone")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "gunicorn", "--bind", bind, "--chdir", app,
		"--workers", "2", "--worker-class", "gthread", "--threads", "4",
		"--graceful-timeout", "1", "streamapp:application")
	cmd.Env = append(os.Environ(), "SLUICE_TEST_GONE_FILE="+goneFile, "PYTHONDONTWRITEBYTECODE=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting gunicorn (apt-get install gunicorn python3-django): %v", err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })

	listening := regexp.MustCompile(`Listening at: (\S+)`)
	found := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		if strings.HasPrefix(addr, "unix:") {
			return addr, goneFile
		}
		return addr, goneFile // "http://127.0.0.1:PORT"
	case <-time.After(20 * time.Second):
		t.Fatalf("gunicorn did not start:\n%s", log.String())
	}
	return "", ""
}

// checkRowsOnTime reads "idx,written_at" lines (or SSE "data: written_at")
// and fails if any row reached the client later than maxLag after the
// Django view wrote it: a buffered response arrives all at once at the end,
// so its early rows are late by the whole stream's length.
func checkRowsOnTime(t *testing.T, body io.Reader, wantRows int, prefix string, maxLag time.Duration) {
	t.Helper()
	br := bufio.NewReader(body)
	rows := 0
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d rows: %v", rows, err)
		}
		arrived := time.Now()
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Split(strings.TrimPrefix(line, prefix), ",")
		written, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue // the CSV header row
		}
		lag := arrived.Sub(time.Unix(0, int64(written*1e9)))
		if lag > maxLag {
			t.Errorf("row %d reached the client %s after Django wrote it: buffered", rows, lag)
		}
		rows++
	}
	if rows != wantRows {
		t.Fatalf("got %d rows, want %d", rows, wantRows)
	}
}

func TestDjangoStreamingThroughGunicorn(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gunicorn.sock")
	for _, bind := range []struct{ name, bind string }{
		{"tcp", "127.0.0.1:0"},
		{"unix socket", "unix:" + sock},
	} {
		t.Run(bind.name, func(t *testing.T) {
			up, goneFile := gunicorn(t, bind.bind)
			p := startSluice(t, "routes:\n"+
				route("events", "/events", up, "streaming: always", "timeouts: { idle: 10m, total: 0s }")+
				route("app", "/", up))

			t.Run("page", func(t *testing.T) {
				res, err := p.h2Client().Get(p.url("/page"))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				mustContain(t, string(b), "hello from django via https, host "+p.addr)
			})
			t.Run("csv over HTTP/2", func(t *testing.T) {
				res, err := p.h2Client().Get(p.url("/csv?rows=6&pause=0.3"))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if res.ProtoMajor != 2 || res.Header.Get("Content-Type") != "text/csv" {
					t.Fatalf("%s %v", res.Proto, res.Header)
				}
				checkRowsOnTime(t, res.Body, 6, "", 250*time.Millisecond)
			})
			t.Run("sse over HTTP/2", func(t *testing.T) {
				res, err := p.h2Client().Get(p.url("/events?n=5&pause=0.3"))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				checkRowsOnTime(t, res.Body, 5, "data: ", 250*time.Millisecond)
			})
			t.Run("csv with curl --http2", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, "curl", "--silent", "--show-error", "--no-buffer", "--http2",
					"--cacert", p.cert.certFile, "--resolve", "localhost:"+port(p.addr)+":127.0.0.1",
					"https://localhost:"+port(p.addr)+"/csv?rows=6&pause=0.3")
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				checkRowsOnTime(t, out, 6, "", 250*time.Millisecond)
				if err := cmd.Wait(); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("client gone frees the worker", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", p.url("/csv?rows=1000&pause=0.1"), nil)
				res, err := p.h2Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(res.Body)
				br.ReadString('\n')
				br.ReadString('\n')
				cancel()
				// The view's next write fails once sluice closed the
				// upstream connection; the generator is then closed.
				deadline := time.Now().Add(5 * time.Second)
				for {
					b, _ := os.ReadFile(goneFile)
					if strings.Contains(string(b), "csv") {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the Django view kept streaming 5s after the client went away")
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		})
	}
}
