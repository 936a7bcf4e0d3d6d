package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
)

// The PROXY protocol (HAProxy's, v1 text and v2 binary): a load balancer
// in front of pop3d says, before anything else on the connection, which
// client it relays. Only the proxies an administrator lists may say so;
// from them the header is required. github.com/pires/go-proxyproto parses
// the header: maintained, both versions, TLVs, and a read that can be
// bounded by a deadline.

// proxyHeaderTimeout bounds the wait for a trusted proxy's header.
const proxyHeaderTimeout = 5 * time.Second

// proxyListener hands on the connections of inner: those from the
// proxies listed in from once their header is read (in a goroutine of
// their own, so that a proxy that sends nothing holds up no one), any
// other at once and untouched. At most pending headers are read at once;
// a connection beyond that is closed.
type proxyListener struct {
	inner   net.Listener
	from    []netip.Prefix
	timeout time.Duration
	log     *slog.Logger
	slots   chan struct{}

	start sync.Once
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	close sync.Once
}

func newProxyListener(inner net.Listener, from []netip.Prefix, pending int, log *slog.Logger) *proxyListener {
	return &proxyListener{inner: inner, from: from, timeout: proxyHeaderTimeout, log: log,
		slots: make(chan struct{}, max(pending, 1)),
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{})}
}

func (l *proxyListener) Addr() net.Addr { return l.inner.Addr() }

func (l *proxyListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.inner.Close()
}

func (l *proxyListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.loop() })
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// loop accepts from inner until it is closed; an accept error is handed
// to Accept's caller (the core, which backs off and goes on).
func (l *proxyListener) loop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !l.trusted(c.RemoteAddr()) {
			l.hand(c)
			continue
		}
		select {
		case l.slots <- struct{}{}:
			go func() {
				defer func() { <-l.slots }()
				if pc := l.header(c); pc != nil {
					l.hand(pc)
				}
			}()
		default:
			l.log.Warn("PROXY protocol: too many headers awaited at once; connection closed", "proxy", c.RemoteAddr().String())
			c.Close()
		}
	}
}

func (l *proxyListener) hand(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *proxyListener) trusted(a net.Addr) bool { return inNetworks(l.from, a) }

// header reads the PROXY header of c, from a trusted proxy, and returns
// the connection as the client's; or logs why not, closes c and returns
// nil. A LOCAL header (the proxy's own health check) keeps the proxy's
// addresses.
func (l *proxyListener) header(c net.Conn) net.Conn {
	br := bufio.NewReaderSize(c, 512)
	h, err := proxyproto.ReadHeaderTimeout(c, br, l.timeout)
	if err != nil {
		if errors.Is(err, io.EOF) || closedSilently(c, br) {
			// The proxy connected and went without a word: a TCP
			// health check.
			l.log.Debug("PROXY protocol: the proxy closed before its header (a health check)", "proxy", c.RemoteAddr().String())
			c.Close()
			return nil
		}
		why := err.Error()
		if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			why = "no PROXY header within " + l.timeout.String()
		}
		l.log.Warn("PROXY protocol: connection from a trusted proxy refused", "proxy", c.RemoteAddr().String(), "why", why)
		c.Close()
		return nil
	}
	pc := &proxiedConn{Conn: c, br: br, remote: c.RemoteAddr(), local: c.LocalAddr()}
	if h.Command.IsLocal() || h.TransportProtocol == proxyproto.UNSPEC {
		// LOCAL (v2) or UNKNOWN (v1): the proxy speaks for itself, as
		// its health checks do; the connection keeps its addresses.
		return pc
	}
	src, dst, ok := h.TCPAddrs()
	if !ok {
		l.log.Warn("PROXY protocol: header of a transport other than TCP refused", "proxy", c.RemoteAddr().String(), "transport", fmt.Sprintf("%#x", byte(h.TransportProtocol)))
		c.Close()
		return nil
	}
	pc.remote, pc.local = src, dst
	return pc
}

// proxiedConn is a connection as the client the proxy relays: its
// addresses are the header's, and what the header read buffered past
// itself is read first.
type proxiedConn struct {
	net.Conn
	br            *bufio.Reader // nil once drained
	remote, local net.Addr
}

func (c *proxiedConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil // the session reads the socket directly from now on
	}
	return c.Conn.Read(p)
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }
func (c *proxiedConn) LocalAddr() net.Addr  { return c.local }

// SyscallConn and SetLinger reach the TCP connection, which the core's
// minimum read rate looks at (what the kernel still holds) and resets.
func (c *proxiedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func (c *proxiedConn) SetLinger(sec int) error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		return tc.SetLinger(sec)
	}
	return errors.ErrUnsupported
}

// closedSilently reports whether c, which br reads, ended without a
// single octet: what a TCP health check does. It looks for at most a few
// milliseconds, so a silent connection that is still open is not waited
// for again.
func closedSilently(c net.Conn, br *bufio.Reader) bool {
	if br.Buffered() > 0 {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	_, err := br.Peek(1)
	return errors.Is(err, io.EOF)
}
