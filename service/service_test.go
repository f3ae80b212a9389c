package service

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOneLine(t *testing.T) {
	if got := oneLine("a.yaml:3:1: bad\n  b.yaml:4:2: worse\n"); got != "a.yaml:3:1: bad b.yaml:4:2: worse" {
		t.Fatalf("oneLine = %q", got)
	}
}

func TestPIDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.pid")
	if err := WritePIDFile(path); err != nil {
		t.Fatal(err)
	}
	if pid, err := ReadPIDFile(path); err != nil || pid != os.Getpid() {
		t.Fatalf("ReadPIDFile = %d, %v", pid, err)
	}
	RemovePIDFile(path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
	// Another process's pid file is left alone.
	os.WriteFile(path, []byte("1\n"), 0o644)
	RemovePIDFile(path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("removed another process's pid file: %v", err)
	}
	os.WriteFile(path, []byte("nope"), 0o644)
	if _, err := ReadPIDFile(path); err == nil {
		t.Fatal("garbage read as a pid")
	}
}
