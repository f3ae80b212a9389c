package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"golang.org/x/net/http2"
)

//go:embed templates/*.tmpl
var templates embed.FS

// tmplData fills a peer's config template.
type tmplData struct {
	Dir      string // the peer's scratch directory
	Addr     string // the peer's https listen address, host:port
	Host     string // Addr's host
	Port     string // Addr's port
	Upstream string // host:port of the upstream
	Cert     string // PEM certificate file
	Key      string // PEM key file
	PEM      string // certificate and key in one file (HAProxy)
	Admin    string // sluice's admin listener, host:port on loopback
}

// proc is a running peer.
type proc struct {
	name    string
	addr    string // where clients connect: https for proxies, http for direct
	tls     bool
	config  string
	admin   string // sluice's admin listener (its /metrics); "" for the others
	cmd     *exec.Cmd
	pids    []int // the peer's processes (master and workers)
	logFile *os.File
	exited  chan struct{}
}

// env is what every peer shares.
type env struct {
	dir      string
	upstream *upstream
	cert     certFiles
	sluice   string // the sluice binary
	base     string // the earlier sluice binary of the sluice-base experiment
	self     string // this program, re-executed for the in-Go peers
	profile  string // directory for sluice's pprof files; "" = none
	trace    bool   // with profile: also an execution trace
	memRate  int    // with profile: runtime.MemProfileRate
	maxFrame uint32 // the HTTP/2 clients' SETTINGS_MAX_FRAME_SIZE; 0 for x/net's default
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func render(name string, d tmplData) (string, error) {
	t, err := template.ParseFS(templates, "templates/"+name)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// startPeer writes the peer's config and starts it, waiting until a
// request goes through it.
func startPeer(e *env, name string) (*proc, error) {
	if name == peerDirect {
		return &proc{name: name, addr: e.upstream.addr, exited: make(chan struct{})}, nil
	}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	d := tmplData{Dir: dir, Addr: addr, Host: host, Port: port, Upstream: e.upstream.addr, Cert: e.cert.cert, Key: e.cert.key, PEM: e.cert.pem}
	var tmplName, confFile string
	var args []string
	var bin string
	switch name {
	case peerSluice, peerSluice1P, peerSluiceBase:
		tmplName, confFile = "sluice.yaml.tmpl", "sluice.yaml"
		if d.Admin, err = freeAddr(); err != nil {
			return nil, err
		}
		bin, args = e.sluice, []string{"run", "--config", filepath.Join(dir, confFile)}
		if name == peerSluiceBase {
			bin = e.base
		}
		if e.profile != "" && name == peerSluice {
			bin, args = e.self, []string{"serve-sluice", "-config", filepath.Join(dir, confFile), "-profile", e.profile, "-memrate", strconv.Itoa(e.memRate)}
			if e.trace {
				args = append(args, "-trace")
			}
		}
	case peerNginx:
		tmplName, confFile = "nginx.conf.tmpl", "nginx.conf"
		bin, args = "nginx", []string{"-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", filepath.Join(dir, confFile)}
	case peerCaddy:
		tmplName, confFile = "Caddyfile.tmpl", "Caddyfile"
		bin, args = "caddy", []string{"run", "--adapter", "caddyfile", "--config", filepath.Join(dir, confFile)}
	case peerHAProxy:
		tmplName, confFile = "haproxy.cfg.tmpl", "haproxy.cfg"
		bin, args = "haproxy", []string{"-db", "-f", filepath.Join(dir, confFile)}
	case peerProto:
		bin, args = e.self, []string{"serve-h2proto", "-listen", addr, "-upstream", e.upstream.addr, "-cert", e.cert.cert, "-key", e.cert.key}
	case peerFloor:
		bin, args = e.self, []string{"serve-h2floor", "-listen", addr, "-cert", e.cert.cert, "-key", e.cert.key}
	case peerHTTPUtil:
		bin, args = e.self, []string{"serve-httputil", "-listen", addr, "-upstream", e.upstream.addr, "-cert", e.cert.cert, "-key", e.cert.key}
	default:
		return nil, fmt.Errorf("unknown peer %q", name)
	}
	var conf string
	if tmplName != "" {
		conf, err = render(tmplName, d)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, confFile), []byte(conf), 0o644); err != nil {
			return nil, err
		}
	} else {
		conf = bin + " " + strings.Join(args, " ")
	}
	logf, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	if name == peerSluice1P {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	// Pdeathsig: a peer never outlives a bench that was killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, addr: addr, tls: true, config: conf, admin: d.Admin, cmd: cmd, logFile: logf, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	running.add(p)
	if err := p.waitReady(e, 20*time.Second); err != nil {
		p.stop()
		out, _ := os.ReadFile(filepath.Join(dir, "output.log"))
		return nil, fmt.Errorf("%s did not come up: %w\n%s", name, err, tail(out, 2000))
	}
	p.pids = processTree(cmd.Process.Pid)
	return p, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (p *proc) waitReady(e *env, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return errors.New("exited")
		default:
		}
		c, err := p.client(e)
		if err == nil {
			last = c.get("/small")
			c.close()
			if last == nil {
				return nil
			}
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// stop ends the peer (SIGTERM to its own process, which ends its
// workers) and waits for it, killing it after a grace period.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	running.remove(p)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	if p.logFile != nil {
		p.logFile.Close()
	}
}

// rss is the summed resident memory of the peer's processes, in bytes.
func (p *proc) rss() int64 {
	var total int64
	for _, pid := range p.pids {
		total += rssOf(pid)
	}
	return total
}

// cpu is the CPU time (user and system) the peer's processes have used
// so far, from /proc, in clock ticks of 10 ms.
func (p *proc) cpu() time.Duration {
	procs := readProcs()
	var ticks int64
	for _, pid := range p.pids {
		ticks += procs[pid].ticks
	}
	return time.Duration(ticks) * clockTick
}

// refreshPids picks up workers a master started since the last look.
func (p *proc) refreshPids() {
	if p.cmd != nil {
		p.pids = processTree(p.cmd.Process.Pid)
	}
}

func rssOf(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				kb, _ := strconv.ParseInt(fields[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// processTree returns pid and all its descendants, from /proc.
func processTree(root int) []int {
	children := map[int][]int{}
	for pid, p := range readProcs() {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// client is one connection to a peer: HTTP/2 over TLS to a proxy,
// HTTP/1.1 to the upstream directly.
type client struct {
	rt    http.RoundTripper
	base  string
	close func()
}

func (p *proc) client(e *env) (*client, error) {
	if !p.tls {
		tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
		return &client{rt: tr, base: "http://" + p.addr, close: tr.CloseIdleConnections}, nil
	}
	return dialH2(e, p.addr)
}

// dialH2 opens one HTTP/2 connection; every request on the client uses it.
func dialH2(e *env, addr string) (*client, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: e.cert.pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		raw.Close()
		return nil, fmt.Errorf("%s did not negotiate h2", addr)
	}
	tr := &http2.Transport{DisableCompression: true, MaxReadFrameSize: e.maxFrame}
	cc, err := tr.NewClientConn(tc)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return &client{rt: cc, base: "https://" + addr, close: func() { cc.Close() }}, nil
}

// get fetches path and reads the body to the end; any status but 200 is
// an error.
func (c *client) get(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	res, err := c.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", res.Status)
	}
	return nil
}

// upload POSTs a body of n bytes to /upload with its length declared,
// and returns the count of bytes the upstream says it read.
func (c *client) upload(ctx context.Context, n int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/upload", &patternReader{left: n})
	if err != nil {
		return 0, err
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := c.rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 64))
	if err != nil {
		return 0, err
	}
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s: %q", res.Status, answer)
	}
	return strconv.ParseInt(string(answer), 10, 64)
}

// uploadPattern is what a patternReader repeats.
var uploadPattern = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

// A patternReader is a request body of left bytes, made up as it is read.
type patternReader struct{ left int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		n += copy(p[n:], uploadPattern)
	}
	r.left -= int64(n)
	return n, nil
}

// versionOf runs the peer's version command.
func versionOf(e *env, name string) string {
	var cmd *exec.Cmd
	switch name {
	case peerSluice, peerSluice1P:
		cmd = exec.Command(e.sluice, "version")
	case peerSluiceBase:
		cmd = exec.Command(e.base, "version")
	case peerNginx:
		cmd = exec.Command("nginx", "-v")
	case peerCaddy:
		cmd = exec.Command("caddy", "version")
	case peerHAProxy:
		cmd = exec.Command("haproxy", "-v")
	case peerHTTPUtil, peerDirect, peerProto, peerFloor:
		return "Go net/http (" + goVersion() + ")"
	default:
		return ""
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if pkg := debianPackage[name]; pkg != "" {
		if v, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output(); err == nil {
			line += " (Debian package " + pkg + " " + string(v) + ")"
		}
	}
	return line
}

var debianPackage = map[string]string{peerNginx: "nginx", peerCaddy: "caddy", peerHAProxy: "haproxy", "h2load": "nghttp2-client"}

// running are the peers started and not yet stopped, so that an
// interrupted bench stops them.
var running = &procSet{m: map[*proc]bool{}}

type procSet struct {
	mu sync.Mutex
	m  map[*proc]bool
}

func (s *procSet) add(p *proc)    { s.mu.Lock(); s.m[p] = true; s.mu.Unlock() }
func (s *procSet) remove(p *proc) { s.mu.Lock(); delete(s.m, p); s.mu.Unlock() }

// stopAll stops every running peer.
func (s *procSet) stopAll() {
	s.mu.Lock()
	var ps []*proc
	for p := range s.m {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		p.stop()
	}
}

// mallocs reads the Go runtime's count of heap allocations from sluice's
// admin /metrics (go_memstats_mallocs_total). ok is false for a peer
// without one, or when it cannot be read: the in-process sluice of
// -profile serves no admin listener.
func (p *proc) mallocs() (n float64, ok bool) {
	if p.admin == "" {
		return 0, false
	}
	c := &http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil || res.StatusCode != http.StatusOK {
		return 0, false
	}
	return parseMallocs(string(body))
}

// parseMallocs finds go_memstats_mallocs_total in a Prometheus text
// exposition.
func parseMallocs(text string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, found := strings.CutPrefix(line, "go_memstats_mallocs_total "); found {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n, err == nil
		}
	}
	return 0, false
}
