package proxy

import (
	"net/http"
	"testing"
	"time"
)

func TestGRPCTimeout(t *testing.T) {
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"300m", 300 * time.Millisecond, true},
		{"1S", time.Second, true},
		{"2H", 2 * time.Hour, true},
		{"5M", 5 * time.Minute, true},
		{"7u", 7 * time.Microsecond, true},
		{"99999999n", 99999999 * time.Nanosecond, true},
		{"123456789m", 0, false}, // nine digits
		{"", 0, false},
		{"m", 0, false},
		{"10x", 0, false},
		{"-1S", 0, false},
		{"1.5S", 0, false},
	} {
		got, ok := grpcTimeout(c.v)
		if got != c.want || ok != c.ok {
			t.Errorf("grpcTimeout(%q) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}

func TestGRPCDeadlinePassed(t *testing.T) {
	r, _ := http.NewRequest("POST", "https://x/svc/M", nil)
	r.Header.Set("Content-Type", "application/grpc")
	r.Header.Set("Grpc-Timeout", "50m")
	if grpcDeadlinePassed(r, time.Now()) {
		t.Fatal("deadline passed at once")
	}
	if !grpcDeadlinePassed(r, time.Now().Add(-60*time.Millisecond)) {
		t.Fatal("deadline 60ms ago not seen")
	}
	r.Header.Set("Content-Type", "text/plain")
	if grpcDeadlinePassed(r, time.Now().Add(-time.Second)) {
		t.Fatal("a call that is not gRPC has no gRPC deadline")
	}
}
