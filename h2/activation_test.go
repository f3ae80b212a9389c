package h2

import (
	"net"
	"os"
	"syscall"
	"testing"
)

func TestSameAddr(t *testing.T) {
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, c := range []struct {
		want string
		got  net.Addr
		ok   bool
	}{
		{":443", tcp("::", 443), true},
		{":443", tcp("0.0.0.0", 443), true},
		{":443", tcp("127.0.0.1", 443), false},
		{":443", tcp("::", 80), false},
		{"127.0.0.1:8443", tcp("127.0.0.1", 8443), true},
		{"127.0.0.1:8443", tcp("127.0.0.2", 8443), false},
		{"[::1]:8443", tcp("::1", 8443), true},
		{"localhost:8443", tcp("127.0.0.1", 8443), false}, // names are not resolved
		{"127.0.0.1:0", tcp("127.0.0.1", 0), false},       // ":0" is never a passed socket
		{"0.0.0.0:53", &net.UDPAddr{IP: net.IPv4zero, Port: 53}, true},
		{"bad", tcp("::", 443), false},
	} {
		if got := sameAddr(c.want, c.got); got != c.ok {
			t.Errorf("sameAddr(%q, %v) = %v, want %v", c.want, c.got, got, c.ok)
		}
	}
}

// namedFile returns a duplicate of the socket behind fc as a file named
// name, as systemd passes it.
func namedFile(t *testing.T, fc interface{ File() (*os.File, error) }, name string) *os.File {
	t.Helper()
	f, err := fc.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	nf := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { nf.Close() })
	return nf
}

func TestActivationMatching(t *testing.T) {
	listen := func() *net.TCPListener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln.(*net.TCPListener)
	}
	named, byAddr, stray := listen(), listen(), listen()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })

	a, err := newActivation([]*os.File{
		namedFile(t, named, "https"),
		namedFile(t, byAddr, "sluice.socket"),
		namedFile(t, stray, "sluice.socket"),
		namedFile(t, udp.(*net.UDPConn), "sluice.socket"),
	})
	if err != nil {
		t.Fatal(err)
	}

	// By name, whatever the configured address.
	ln, err := a.Listener(NameHTTPS, ":8443")
	if err != nil || ln == nil || ln.Addr().String() != named.Addr().String() {
		t.Fatalf("https by name: %v %v", ln, err)
	}
	ln.Close()
	// Closing the duplicate leaves the socket: it can be taken again.
	if again, err := a.Listener(NameHTTPS, ":8443"); err != nil || again == nil {
		t.Fatalf("https again: %v %v", again, err)
	} else {
		again.Close()
	}
	// By address, for a socket with another name.
	ln, err = a.Listener(NameHTTP, byAddr.Addr().String())
	if err != nil || ln == nil || ln.Addr().String() != byAddr.Addr().String() {
		t.Fatalf("http by address: %v %v", ln, err)
	}
	ln.Close()
	// No match: the caller binds itself.
	if ln, err := a.Listener(NameAdmin, "127.0.0.1:9180"); err != nil || ln != nil {
		t.Fatalf("admin: %v %v, want none", ln, err)
	}
	// The datagram socket is for HTTP/3, by address.
	pc, err := a.PacketConn(udp.LocalAddr().String())
	if err != nil || pc == nil || pc.LocalAddr().String() != udp.LocalAddr().String() {
		t.Fatalf("udp: %v %v", pc, err)
	}
	pc.Close()
	if ln, _ := a.Listener(NameHTTP, udp.LocalAddr().String()); ln != nil {
		t.Fatal("a datagram socket served as a stream listener")
	}

	unused := a.Unused()
	if len(unused) != 1 || unused[0] != "sluice.socket (tcp "+stray.Addr().String()+")" {
		t.Fatalf("unused = %q", unused)
	}
}

func TestActivationRefusesOtherFiles(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "notasocket")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := newActivation([]*os.File{f}); err == nil {
		t.Fatal("a plain file was accepted as a socket")
	}
}
