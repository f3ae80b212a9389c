package h2

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
)

// Listener names: the FileDescriptorName a systemd socket unit gives a
// socket so that sluice knows which listener it is for.
const (
	NameHTTPS = "https" // TCP: the TLS listener; UDP: HTTP/3 (QUIC)
	NameHTTP  = "http"  // TCP: the plain redirect listener
	NameAdmin = "admin" // TCP: the admin listener
	NameHTTP3 = "http3" // UDP: HTTP/3, when named apart from https
)

// Activation holds the sockets systemd passed at start (socket activation:
// LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES). A listener takes the socket
// named after it; a socket with any other name (systemd's default is the
// socket unit's name) is taken by the listener whose configured address
// it is bound to. The sockets stay open for the life of the process, so a
// listener may give one up on reload and take it again later, and systemd
// keeps them listening across a restart: clients queue in the backlog
// instead of being refused.
type Activation struct {
	mu    sync.Mutex
	socks []*activated
}

type activated struct {
	file   *os.File
	name   string
	stream bool     // SOCK_STREAM (TCP); else a datagram socket (UDP)
	addr   net.Addr // the address it is bound to
	used   bool
}

// Activated returns the sockets systemd passed to this process, or nil
// when it passed none. It reads and unsets the LISTEN_* variables, so it
// must be called once, before any other file is opened.
func Activated() (*Activation, error) {
	files := activation.Files(true)
	if len(files) == 0 {
		return nil, nil
	}
	return newActivation(files)
}

// newActivation inspects each passed socket: its type and bound address.
func newActivation(files []*os.File) (*Activation, error) {
	a := &Activation{}
	for i, f := range files {
		s := &activated{file: f, name: f.Name()}
		if ln, err := net.FileListener(f); err == nil {
			s.stream, s.addr = true, ln.Addr()
			ln.Close() // a duplicate: f stays open
		} else if pc, err := net.FilePacketConn(f); err == nil {
			s.addr = pc.LocalAddr()
			pc.Close()
		} else {
			return nil, fmt.Errorf("socket activation: fd %d (%s) is neither a listening stream socket nor a datagram socket", 3+i, f.Name())
		}
		a.socks = append(a.socks, s)
	}
	return a, nil
}

// Listener returns a listener on the passed stream socket for the
// listener called name with the configured address addr, or nil when
// systemd passed none. Each call returns a new duplicate of the socket;
// closing it leaves the socket itself open.
func (a *Activation) Listener(name, addr string) (net.Listener, error) {
	s := a.find(true, addr, name)
	if s == nil {
		return nil, nil
	}
	ln, err := net.FileListener(s.file)
	if err != nil {
		return nil, fmt.Errorf("socket activation: %s: %w", s.name, err)
	}
	return ln, nil
}

// PacketConn returns a connection on the passed datagram socket (HTTP/3)
// for addr, named http3 or https, or nil when systemd passed none.
func (a *Activation) PacketConn(addr string) (net.PacketConn, error) {
	s := a.find(false, addr, NameHTTP3, NameHTTPS)
	if s == nil {
		return nil, nil
	}
	pc, err := net.FilePacketConn(s.file)
	if err != nil {
		return nil, fmt.Errorf("socket activation: %s: %w", s.name, err)
	}
	return pc, nil
}

// find picks a socket by name first, then by address among the sockets
// whose name is not one of sluice's listener names.
func (a *Activation) find(stream bool, addr string, names ...string) *activated {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		for _, s := range a.socks {
			if s.stream == stream && s.name == n {
				s.used = true
				return s
			}
		}
	}
	for _, s := range a.socks {
		if s.stream == stream && !knownName(s.name) && addr != "" && sameAddr(addr, s.addr) {
			s.used = true
			return s
		}
	}
	return nil
}

// Unused describes the passed sockets no listener has taken.
func (a *Activation) Unused() []string {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, s := range a.socks {
		if !s.used {
			kind := "udp"
			if s.stream {
				kind = "tcp"
			}
			out = append(out, fmt.Sprintf("%s (%s %s)", s.name, kind, s.addr))
		}
	}
	return out
}

func knownName(n string) bool {
	switch n {
	case NameHTTPS, NameHTTP, NameAdmin, NameHTTP3:
		return true
	}
	return false
}

// sameAddr reports whether a socket bound to got serves the configured
// address want: same port, and same IP or, for a host left empty, the
// wildcard address. Host names never match: write the IP.
func sameAddr(want string, got net.Addr) bool {
	host, port, err := net.SplitHostPort(want)
	if err != nil {
		return false
	}
	var ip net.IP
	var gotPort int
	switch g := got.(type) {
	case *net.TCPAddr:
		ip, gotPort = g.IP, g.Port
	case *net.UDPAddr:
		ip, gotPort = g.IP, g.Port
	default:
		return false
	}
	if p, err := strconv.Atoi(port); err != nil || p != gotPort || p == 0 {
		return false
	}
	if host == "" {
		return ip.IsUnspecified()
	}
	wantIP := net.ParseIP(host)
	return wantIP != nil && wantIP.Equal(ip)
}
