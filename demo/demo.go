// Package demo is the upstream behind "sluice demo": a tiny app with the
// three kinds of response sluice exists for, so a newcomer sees streaming
// work in one command. It is not used by "sluice run".
package demo

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Handler returns the demo app:
//
//	/            an HTML page that shows the clock stream and links the export
//	/events      server-sent events: the time, every second, until the client goes
//	/export.csv  a slow CSV export: 200 rows, a batch of 10 every 250 ms, chunked
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /events", events)
	mux.HandleFunc("GET /export.csv", export)
	return mux
}

// Serve starts the demo app on a loopback port and returns its address.
func Serve() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

const pageHTML = `<!doctype html>
<meta charset="utf-8">
<title>sluice demo</title>
<style>body{font:16px system-ui;margin:3em auto;max-width:40em}code{background:#eee;padding:0 .3em}</style>
<h1>sluice demo</h1>
<p>This page came through sluice over <b id="proto">%s</b>.</p>
<h2>Server-sent events</h2>
<p>The clock below is one long response from <code>/events</code>; each tick is flushed
the moment the app writes it.</p>
<pre id="clock">connecting…</pre>
<h2>A slow CSV export</h2>
<p><a href="/export.csv">/export.csv</a> streams 200 rows, 10 every 250 ms. Watch it with
<code>curl -N -k https://localhost:8443/export.csv</code>.</p>
<script>
const es = new EventSource("/events");
es.onmessage = e => { document.getElementById("clock").textContent = e.data; };
</script>
`

func page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, pageHTML, r.Header.Get("X-Forwarded-Proto"))
}

func events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	id := 0
	if last, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil {
		id = last
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		id++
		fmt.Fprintf(w, "id: %d\ndata: %s\n\n", id, time.Now().Format("15:04:05"))
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func export(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="export.csv"`)
	flusher := w.(http.Flusher)
	fmt.Fprint(w, "row,written_at\n")
	for row := 1; row <= 200; row++ {
		fmt.Fprintf(w, "%d,%s\n", row, time.Now().Format(time.RFC3339Nano))
		if row%10 == 0 {
			flusher.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// Config returns the config of the demo: sluice on listen, three routes to
// the demo app at upstream, no plain listener and no admin listener.
func Config(listen, upstream string) string {
	return fmt.Sprintf(`listen:
  https: %q
  http: ""
admin: ""
log:
  format: console
routes:
  - name: events
    match: { path: /events }
    upstream: http://%s
    streaming: always
    timeouts: { idle: 10m, total: 0s }
  - name: export
    match: { path: /export.csv }
    upstream: http://%s
    timeouts: { idle: 30s, total: 10m }
  - name: app
    match: { path: / }
    upstream: http://%s
`, listen, upstream, upstream, upstream)
}
