package integration

import (
	"bytes"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runCLI runs the sluice binary with args and returns its exit code and
// output.
func runCLISplit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("sluice %v still running after 30s", args)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// `sluice reload` asks the running process through its admin listener
// and reports the outcome: success, or the running process's refusal.
func TestReloadCommandAdmin(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("one")) }))
	up2 := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("two")) }))
	cert := newTestCert(t)
	p := startSluiceConfig(t, headerAdmin(cert, "127.0.0.1:0")+"routes:\n"+route("app", "/", up), cert)
	// The file names the admin address sluice bound for ":0": the same
	// address, so the listener stays.
	admin := p.listenerAddr("admin", 1)
	p.rewriteConfig(headerAdmin(cert, admin) + "routes:\n" + route("app", "/", up2))
	code, stdout, stderr := runCLISplit(t, "reload", "--config", p.config)
	if code != 0 || !strings.Contains(stdout, "reloaded") {
		t.Fatalf("reload: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, body := getText(t, p.h2Client(), p.url("/")); body != "two" {
		t.Fatalf("after reload: %q", body)
	}

	// Valid, but the running process cannot apply it: the new http
	// address is in use (by sluice's own https listener). Refused, and
	// the command says why.
	p.rewriteConfig(strings.Replace(headerAdmin(cert, admin), `http: ""`, "http: "+p.addr, 1) + "routes:\n" + route("app", "/", up))
	code, _, stderr = runCLISplit(t, "reload", "--config", p.config)
	if code != 1 || !strings.Contains(stderr, "reload refused") || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("reload onto a busy address: exit %d, stderr %q", code, stderr)
	}
	if _, body := getText(t, p.h2Client(), p.url("/")); body != "two" {
		t.Fatalf("after a refused reload: %q", body)
	}
	_, body := getText(t, nil, "http://"+admin+"/metrics")
	if v, _ := metric(body, `sluice_config_reloads_total{result="success"}`); v != 1 {
		t.Fatalf("successful reloads = %v, want 1", v)
	}
	if v, _ := metric(body, `sluice_config_reloads_total{result="failure"}`); v != 1 {
		t.Fatalf("failed reloads = %v, want 1", v)
	}
	if p.countLog(func(l map[string]any) bool { return l["msg"] == "listening" }) != 2 {
		t.Fatal("a listener was reopened")
	}
}

// With the admin listener off, `sluice reload` signals the process named
// in pid_file.
func TestReloadCommandPIDFile(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("one")) }))
	up2 := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("two")) }))
	cert := newTestCert(t)
	pidFile := filepath.Join(t.TempDir(), "sluice.pid")
	base := header(cert) + "pid_file: " + pidFile + "\n"
	p := startSluiceConfig(t, base+"routes:\n"+route("app", "/", up), cert)

	// A bad file is checked first and never sent.
	p.rewriteConfig(base + "routes: []\n")
	code, _, stderr := runCLISplit(t, "reload", "--config", p.config)
	if code != 1 || !strings.Contains(stderr, "at least one route") || !strings.Contains(stderr, "not sent") {
		t.Fatalf("bad file: exit %d, stderr %q", code, stderr)
	}

	p.rewriteConfig(base + "routes:\n" + route("app", "/", up2))
	code, stdout, stderr := runCLISplit(t, "reload", "--config", p.config)
	if code != 0 || !strings.Contains(stdout, "sent SIGHUP to process "+strconv.Itoa(p.cmd.Process.Pid)) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	p.waitNth(1, 10*time.Second, "config reloaded")
	if _, body := getText(t, p.h2Client(), p.url("/")); body != "two" {
		t.Fatalf("after reload: %q", body)
	}

	// Neither admin nor pid_file: nothing to signal.
	p.rewriteConfig(header(cert) + "routes:\n" + route("app", "/", up2))
	if code, _, stderr := runCLISplit(t, "reload", "--config", p.config); code != 1 || !strings.Contains(stderr, "neither admin nor pid_file") {
		t.Fatalf("no way to reach sluice: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLISplit(t, "reload", "extra"); code != 2 {
		t.Fatalf("usage error: exit %d, want 2", code)
	}
}
