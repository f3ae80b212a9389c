package service

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// WritePIDFile writes this process's id to path.
func WritePIDFile(path string) error {
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	return nil
}

// RemovePIDFile removes path if it still holds this process's id (a newer
// process may have taken it over).
func RemovePIDFile(path string) {
	if pid, err := ReadPIDFile(path); err == nil && pid == os.Getpid() {
		os.Remove(path)
	}
}

// ReadPIDFile returns the process id in path.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not hold a process id", path)
	}
	return pid, nil
}

// SignalPIDFile sends sig to the process whose id is in path.
func SignalPIDFile(path string, sig syscall.Signal) (int, error) {
	pid, err := ReadPIDFile(path)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return pid, fmt.Errorf("signalling process %d from %s: %w", pid, path, err)
	}
	return pid, nil
}
