package h2

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/sluiceproxy/sluice/config"
)

// slot is one configured listener: an address served by one http.Server.
// Several listeners may feed the same http.Server over time; a listener
// given up on reload is closed, while the connections it accepted stay
// with the server until they end.
type slot struct {
	name string // listener name, in logs and as systemd FileDescriptorName
	key  string // config key, for errors
	srv  *http.Server
	tls  bool
	addr string // configured address; "" = off
	ln   *trackedListener
}

// trackedListener marks a listener closed on purpose, so that its Serve
// loop ending is not reported as a failure.
type trackedListener struct {
	net.Listener
	retired atomic.Bool
}

func (l *trackedListener) retire() {
	l.retired.Store(true)
	l.Listener.Close()
}

// Listen binds every configured address (or takes the socket systemd
// passed for it), so that a port in use is reported before anything is
// served.
func (s *Server) Listen(o config.Listen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := s.wanted(o, s.slotAddr(NameAdmin))
	for i, sl := range s.slots {
		ln, err := s.bind(sl, want[i])
		if err != nil {
			for _, done := range s.slots[:i] {
				if done.ln != nil {
					done.ln.Close()
					done.ln = nil
				}
			}
			return err
		}
		sl.addr, sl.ln = want[i], ln
	}
	s.setHTTPSPort()
	if err := s.listenHTTP3(); err != nil {
		for _, sl := range s.slots {
			if sl.ln != nil {
				sl.ln.Close()
				sl.ln = nil
			}
		}
		return err
	}
	return nil
}

// listenHTTP3 binds the UDP port of the bound https address (or takes the
// datagram socket systemd passed) and advertises it with Alt-Svc.
func (s *Server) listenHTTP3() error {
	if s.h3 == nil || s.slots[0].ln == nil {
		return nil
	}
	addr := s.slots[0].ln.Addr().String()
	pc, err := s.act.PacketConn(addr)
	if err != nil {
		return err
	}
	if pc != nil {
		s.log.Info("using socket passed by systemd", zap.String("listener", NameHTTP3), zap.String("addr", pc.LocalAddr().String()))
		s.h3.conn = pc
	} else if err := s.h3.listen(addr); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(s.h3.conn.LocalAddr().String())
	s.https.Handler = altSvc(s.https.Handler, port)
	return nil
}

// wanted lists the configured address of each slot, in slot order.
func (s *Server) wanted(o config.Listen, admin string) []string {
	out := make([]string, len(s.slots))
	for i, sl := range s.slots {
		switch sl.name {
		case NameHTTPS:
			out[i] = o.HTTPS
		case NameHTTP:
			out[i] = o.HTTP
		case NameAdmin:
			out[i] = admin
		}
	}
	return out
}

func (s *Server) slotAddr(name string) string {
	for _, sl := range s.slots {
		if sl.name == name {
			return sl.addr
		}
	}
	return ""
}

// bind opens addr for sl: the socket systemd passed for it if any, else a
// new one. "" gives no listener.
func (s *Server) bind(sl *slot, addr string) (*trackedListener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := s.act.Listener(sl.name, addr)
	if err != nil {
		return nil, err
	}
	if ln != nil {
		s.log.Info("using socket passed by systemd", zap.String("listener", sl.name), zap.String("addr", ln.Addr().String()))
	} else if ln, err = net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("listening on %s (%s): %w", addr, sl.key, err)
	}
	if sl.tls {
		ln = newLimitListener(ln, s.limits.MaxConnections, s.limits.MaxConnectionsPerIP, s.log)
	}
	return &trackedListener{Listener: ln}, nil
}

// setHTTPSPort records the port the redirect names: with ":0" it is the
// port actually bound.
func (s *Server) setHTTPSPort() {
	port := ""
	if ln := s.slots[0].ln; ln != nil {
		_, port, _ = net.SplitHostPort(ln.Addr().String())
	}
	s.httpsPort.Store(&port)
}

// Addrs returns the bound https and http addresses ("" when off).
func (s *Server) Addrs() (https, plain string) {
	return s.Addr(NameHTTPS), s.Addr(NameHTTP)
}

// Addr returns the bound address of the named listener ("" when off).
func (s *Server) Addr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.slots {
		if sl.name == name && sl.ln != nil {
			return sl.ln.Addr().String()
		}
	}
	return ""
}

// Serve starts serving on the bound listeners and returns at once.
// Errors after start are logged.
func (s *Server) Serve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.slots {
		if sl.ln != nil {
			s.serveOn(sl, sl.ln)
		}
	}
	s.serveHTTP3()
	s.serving.Store(true)
}

// Serving reports whether the listeners are up: after Serve, before
// Shutdown.
func (s *Server) Serving() bool { return s.serving.Load() }

func (s *Server) serveOn(sl *slot, ln *trackedListener) {
	s.log.Info("listening", zap.String("listener", sl.name), zap.String("addr", ln.Addr().String()))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if sl.tls {
			// TLS is terminated below net/http (clientconn.go), so the
			// HTTP/1.1 head filter sees the bytes before net/http does,
			// and HTTP/2 goes to sluice's copy of x/net's server.
			err = sl.srv.Serve(&tlsListener{Listener: ln, config: sl.srv.TLSConfig, maxHead: int(s.limits.MaxHeaderBytes) + 4096})
		} else {
			err = sl.srv.Serve(ln)
		}
		switch {
		case ln.retired.Load():
			s.log.Info("listener closed", zap.String("listener", sl.name), zap.String("addr", ln.Addr().String()))
		case err != nil && !errors.Is(err, http.ErrServerClosed):
			s.log.Error("listener failed", zap.String("listener", sl.name), zap.Error(err))
		}
	}()
}

// Change is a reload's new set of listening addresses: bound by Prepare,
// put into service by Commit, or dropped by Abort.
type Change struct {
	s     *Server
	addrs []string           // per slot: the new configured address
	lns   []*trackedListener // per slot: the new listener, nil if unchanged or off
	moved []bool             // per slot: the address changed
}

// Prepare binds every address in o and admin that differs from the
// running one, so that a reload that cannot listen is refused before it
// changes anything. Listeners whose address is unchanged (or already
// bound: "127.0.0.1:0" written as the port it got) are kept as they are.
func (s *Server) Prepare(o config.Listen, admin string) (*Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Change{s: s, addrs: s.wanted(o, admin), lns: make([]*trackedListener, len(s.slots)), moved: make([]bool, len(s.slots))}
	for i, sl := range s.slots {
		if c.addrs[i] == sl.addr {
			continue
		}
		if sl.ln != nil && sameAddr(c.addrs[i], sl.ln.Addr()) {
			// Written differently, the same address: say ":0" became
			// the port it was given. Keep the listener.
			sl.addr = c.addrs[i]
			continue
		}
		if sl.name == NameHTTPS && s.h3 != nil {
			c.close()
			return nil, fmt.Errorf("listen.https: moving the https address with listen.http3 on needs a restart (the QUIC socket and Alt-Svc follow it)")
		}
		c.moved[i] = true
		ln, err := s.bind(sl, c.addrs[i])
		if err != nil {
			c.close()
			return nil, err
		}
		c.lns[i] = ln
	}
	return c, nil
}

// Commit serves the new listeners, then closes the ones they replace:
// the address is never unserved in between. Connections accepted by a
// closed listener stay open until they end.
func (c *Change) Commit() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sl := range s.slots {
		if !c.moved[i] {
			continue
		}
		if ln := c.lns[i]; ln != nil {
			s.serveOn(sl, ln)
		}
		if sl.ln != nil {
			sl.ln.retire()
		}
		sl.addr, sl.ln = c.addrs[i], c.lns[i]
	}
	s.setHTTPSPort()
}

// Abort closes what Prepare bound; the running listeners stay.
func (c *Change) Abort() {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.close()
}

func (c *Change) close() {
	for i, ln := range c.lns {
		if ln != nil {
			ln.Close()
			c.lns[i] = nil
		}
	}
}
