// Command go-ndjson is a small Go app that streams NDJSON, to run behind
// sluice (see config.yaml and README.md beside this file).
//
// GET /progress?n=20&every=250ms streams one JSON object per line:
//
//	{"seq":0,"of":20,"sent_unix_ms":1700000000000,"done":false}
//
// flushing after each, so a client sees every line as it is written.
// Content-Type application/x-ndjson makes sluice stream it under the
// default streaming: auto.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "TCP address, or unix:/path.sock")
	flag.Parse()

	network, addr := "tcp", *listen
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", p
		os.Remove(p)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		log.Fatal(err)
	}
	// The integration test reads this line to find the port.
	fmt.Printf("listening on %s:%s\n", network, ln.Addr())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /progress", progress)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "try GET /progress?n=20&every=250ms")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

type event struct {
	Seq        int   `json:"seq"`
	Of         int   `json:"of"`
	SentUnixMs int64 `json:"sent_unix_ms"`
	Done       bool  `json:"done"`
}

func progress(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 1 || n > 10000 {
		n = 20
	}
	every, err := time.ParseDuration(r.URL.Query().Get("every"))
	if err != nil || every < 0 || every > time.Minute {
		every = 250 * time.Millisecond
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	tick := time.NewTicker(max(every, time.Millisecond))
	defer tick.Stop()
	for i := 0; i < n; i++ {
		if i > 0 {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				// sluice closes the upstream connection as soon as the
				// client goes away: stop working for nobody.
				return
			}
		}
		if err := enc.Encode(event{Seq: i, Of: n, SentUnixMs: time.Now().UnixMilli(), Done: i == n-1}); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
