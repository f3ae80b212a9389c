package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Stopping the bench/run script stops the bench and the peers it
// started: the script passes SIGTERM on to bench, whose handler stops the
// peers, and waits for it. Without that, a killed script (a CI timeout,
// kill) left bench running a whole benchmark, with its peers, in the
// background. The script is run for one long big stream against sluice
// alone; the tools it checks for but this run does not use (nginx,
// Caddy, HAProxy, h2load) are stand-ins on PATH, so the test needs none
// of them installed. Everything the run starts lives under its own
// TMPDIR, which is how the test finds what is left.
func TestRunScriptStopsBenchAndPeersOnSignal(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("bench/run builds with go, which is not on PATH")
	}
	tmp := t.TempDir()
	stubs := filepath.Join(tmp, "stubs")
	if err := os.Mkdir(stubs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nginx", "caddy", "haproxy", "h2load"} {
		stub := "#!/bin/sh\necho " + name + " stand-in\n"
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runTmp := filepath.Join(tmp, "run")
	if err := os.Mkdir(runTmp, 0o755); err != nil {
		t.Fatal(err)
	}

	// 64 GiB: far longer than the test waits.
	cmd := exec.Command("bash", "run", "--quick", "-no-doc", "-peers", "sluice", "-workloads", "big", "-big", "65536")
	cmd.Env = append(os.Environ(), "PATH="+stubs+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+runTmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Whatever the outcome, leave nothing running.
		for _, pid := range processesUnder(runTmp) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	// The script builds sluice and bench first; wait for the sluice peer.
	deadline := time.Now().Add(3 * time.Minute)
	for !slices.ContainsFunc(processesUnder(runTmp), func(pid int) bool { return strings.HasSuffix(exe(pid), "/sluice") }) {
		select {
		case err := <-exited:
			t.Fatalf("bench/run ended before its sluice peer started: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sluice peer started within 3 minutes\n%s", out.String())
		}
	}
	time.Sleep(500 * time.Millisecond)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		// bench exits 130 once its peers are stopped; the script, having
		// waited for it, exits with that status. A script that did not
		// wait would end with its own 143.
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("bench/run ended with %v, want exit status 130 (bench's, after stopping its peers)\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bench/run still running 30 s after SIGTERM\n%s", out.String())
	}
	// A peer exits on its SIGTERM a moment after bench sends it.
	for wait := time.Now().Add(5 * time.Second); ; {
		left := processesUnder(runTmp)
		if len(left) == 0 {
			break
		}
		if time.Now().After(wait) {
			var names []string
			for _, pid := range left {
				names = append(names, exe(pid))
			}
			t.Fatalf("still running after bench/run ended: %v\n%s", names, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesUnder lists the processes whose executable lies under dir.
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && strings.HasPrefix(exe(pid), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// exe is the path of pid's executable ("" once it has exited).
func exe(pid int) string {
	p, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	return p
}
