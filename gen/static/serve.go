//go:build pop3gen_core

package static

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server runs POP3 connections on the core: it owns the connection — the
// greeting (with the APOP timestamp where APOP is on), the read loop, the
// profile's inactivity timers and the Exchange notice, write deadlines and
// a minimum read rate, STLS and implicit TLS with their own handshake
// timeout, the connection limits, panic recovery — and hands each command
// to a Session on the server's Handler. A server built on pop3gen writes
// no connection loop of its own.
//
// The zero value is not usable: NewHandler and Variations must be set.
// Fields must not change once Serve or ServeConn has been called.
type Server struct {
	// NewHandler returns the handler of a new connection, after it was
	// admitted and, on an implicit-TLS listener, after the handshake. An
	// error refuses the connection with [SYS/TEMP].
	NewHandler func(c *Conn) (Handler, error)
	// Variations are the behaviour in force for every session.
	Variations Variations
	// TLSConfig enables STLS and implicit-TLS listeners (ServeTLS).
	TLSConfig *tls.Config
	// Greeting is the text of the +OK greeting; the APOP timestamp is
	// added after it where APOP is on. Default "POP3 server ready".
	Greeting string
	// Hostname is the host part of the APOP timestamp (RFC 1939 §7).
	// Default: the system's host name.
	Hostname string
	// Trusted are the networks whose connections count as secure without
	// TLS (for PlaintextAuth=secure). Nothing is trusted by default, not
	// even loopback: behind a local proxy every client is 127.0.0.1.
	Trusted []netip.Prefix
	// RequireTLS refuses every authentication command (USER, PASS, APOP,
	// AUTH) before TLS, trusted networks notwithstanding.
	RequireTLS bool
	// MaxSessions bounds the connections served at once, counted from
	// accept, before any TLS handshake. When it is reached the oldest
	// connection that has not logged in gives way to the newcomer; only
	// when every connection is logged in is the newcomer refused. 0: no
	// limit.
	MaxSessions int
	// MaxPreauthPerAddr bounds the connections that have not logged in
	// from one address (IPv6: one /64). 0: no limit.
	MaxPreauthPerAddr int
	// MaxSessionsPerUser bounds the sessions of one user, enforced when
	// the handler calls Conn.Login. 0: no limit.
	MaxSessionsPerUser int
	// HandshakeTimeout bounds a TLS handshake (implicit or after STLS).
	// Default 10 s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds any one write to the client. Default 5 min.
	WriteTimeout time.Duration
	// MinWriteRate, in octets a second, is the least rate at which a
	// client must read what the server writes in reply to one batch of
	// commands, after WriteRateGrace. 0: only WriteTimeout applies.
	MinWriteRate   int64
	WriteRateGrace time.Duration
	// Log receives what happens to connections; nil discards it.
	Log *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	preauth   map[netip.Prefix]int
	perUser   map[string]int
	closing   atomic.Bool
	wg        sync.WaitGroup
	stamp     atomic.Uint64
	count     atomic.Int64
}

// Errors of the runtime. Each says which limit was reached, so that a user
// can tell a busy server from a locked maildrop.
var (
	ErrServerFull    = NewError(CodeSysTemp, "server is full (too many connections), try again later")
	ErrPreauthLimit  = NewError(CodeSysTemp, "too many connections from your address that have not logged in, try again later")
	ErrEvicted       = NewError(CodeSysTemp, "server is full: the oldest connection that has not logged in gives way to a new one, closing")
	ErrShutdown      = NewError(CodeSysTemp, "server shutting down, nothing was removed")
	ErrTLSRequired   = NewError(CodeAuth, "this server requires TLS before any login: use STLS first, or connect to the implicit-TLS port")
	errNoHandler     = NewError(CodeSysTemp, "cannot serve this connection now, try again later")
	errTooManyPerUsr = "too many sessions for this user (the limit is %d), try again later"
)

const (
	// refuseTimeout bounds the write of a refusal to a connection that is
	// not admitted: a fresh socket's send buffer is empty, so the write
	// returns at once; the deadline only keeps the accept loop from ever
	// waiting on it.
	refuseTimeout = 100 * time.Millisecond
	// farewellTimeout bounds the last line written to an evicted
	// connection: it must give its slot back promptly.
	farewellTimeout = time.Second
)

// Conn is what a handler sees of its connection, and how it tells the
// runtime what the runtime cannot know: that a user logged in (for the
// per-user limit and to leave the unauthenticated pool) and that the
// connection must close after the current reply.
type Conn struct {
	srv     *Server
	nc      net.Conn // as accepted: deadlines and eviction act on it
	c       net.Conn // the connection now (TLS after the handshake)
	start   time.Time
	key     netip.Prefix
	user    string // under srv.mu; "" before login
	authed  bool   // under srv.mu: logged in, with or without Login
	evicted atomic.Bool
	tls     *tls.ConnectionState
	secure  bool
	stamp   string
	session *Session
	log     *slog.Logger
	close   bool
}

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the address the client connected to.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// TLS returns the TLS state once TLS is up (implicit or after STLS), else nil.
func (c *Conn) TLS() *tls.ConnectionState { return c.tls }

// Secure reports whether the connection counts as secure: TLS, or a
// trusted network (unless RequireTLS).
func (c *Conn) Secure() bool { return c.secure || c.tls != nil }

// Timestamp returns the APOP timestamp of the greeting, or "" where APOP
// is off.
func (c *Conn) Timestamp() string { return c.stamp }

// Session returns the connection's session (its state and modes).
func (c *Conn) Session() *Session { return c.session }

// Variations returns the variations the connection runs under: the
// server's, and once the session exists (after NewHandler returns), the
// session's, with the optional commands the handler lacks switched off.
// A variation whose Layer in VariationTable is "store" is only carried by
// the core: a backend reads it here and must apply it itself. The
// variations must not be changed.
func (c *Conn) Variations() *Variations {
	if c.session != nil {
		return &c.session.v
	}
	return &c.srv.Variations
}

// Log returns the connection's logger (with the client's address).
func (c *Conn) Log() *slog.Logger { return c.log }

// Login moves the connection from the unauthenticated ones of its address
// to user's sessions, at the point of a successful login, or returns the
// reply that refuses the login: the user already has MaxSessionsPerUser
// sessions, or the connection was evicted meanwhile.
func (c *Conn) Login(user string) *Error {
	s := c.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.evicted.Load() {
		return ErrEvicted
	}
	if _, ok := s.conns[c]; !ok || c.user == user {
		return nil // not counted (ServeConn after Shutdown) or already in
	}
	if s.MaxSessionsPerUser > 0 && s.perUser[user] >= s.MaxSessionsPerUser {
		return NewError(CodeInUse, strings.Replace(errTooManyPerUsr, "%d", strconv.Itoa(s.MaxSessionsPerUser), 1))
	}
	s.uncountLocked(c)
	c.user, c.authed = user, true
	s.countLocked(c)
	return nil
}

// loggedIn marks the connection logged in once its session is, whether
// or not the Handler called Login: it no longer counts toward
// MaxPreauthPerAddr and is not evicted as one that has not logged in.
func (c *Conn) loggedIn() {
	s := c.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok || c.authed {
		return
	}
	s.uncountLocked(c)
	c.authed = true
	s.countLocked(c)
}

// Logout undoes Login when the login cannot complete after all (the
// maildrop did not open): the connection counts as unauthenticated again.
func (c *Conn) Logout() {
	s := c.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok || !c.authed {
		return
	}
	s.uncountLocked(c)
	c.user, c.authed = "", false
	s.countLocked(c)
}

// CloseAfterReply closes the connection once the reply being written is
// out (after a failed-login cap, say).
func (c *Conn) CloseAfterReply() { c.close = true }

// AddrKey groups client addresses as the per-address limits do (and a
// server's own per-address accounting, such as failed-login penalties,
// should): an IPv4 address alone, an IPv6 address by its /64, the
// smallest block a site is given, so that one host cannot dodge a limit
// by rotating its interface identifiers. Connections without an IP
// address (net.Pipe) have none (an invalid Prefix).
func AddrKey(a net.Addr) netip.Prefix {
	ip := RemoteIP(a)
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// RemoteIP returns a TCP address's IP, IPv4-mapped IPv6 read as IPv4, or
// an invalid Addr for connections without one (net.Pipe).
func RemoteIP(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func (s *Server) countLocked(c *Conn) {
	if c.user != "" {
		s.perUser[c.user]++
	} else if !c.authed && c.key.IsValid() {
		s.preauth[c.key]++
	}
}

func (s *Server) uncountLocked(c *Conn) {
	if c.user != "" {
		if s.perUser[c.user]--; s.perUser[c.user] <= 0 {
			delete(s.perUser, c.user)
		}
	} else if !c.authed && c.key.IsValid() {
		if s.preauth[c.key]--; s.preauth[c.key] <= 0 {
			delete(s.preauth, c.key)
		}
	}
}

func (s *Server) init() {
	if s.conns == nil {
		s.conns = map[*Conn]struct{}{}
		s.preauth = map[netip.Prefix]int{}
		s.perUser = map[string]int{}
		s.listeners = map[net.Listener]struct{}{}
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// admit counts nc toward the limits and registers it for Shutdown, or
// returns the reply that refuses it. The scan for the oldest
// unauthenticated connection is linear in MaxSessions and runs only when
// the server is full.
func (s *Server) admit(nc net.Conn) (*Conn, *Error) {
	c := &Conn{srv: s, nc: nc, c: nc, start: time.Now(), key: AddrKey(nc.RemoteAddr())}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.closing.Load() {
		return nil, ErrShutdown
	}
	if s.MaxPreauthPerAddr > 0 && c.key.IsValid() && s.preauth[c.key] >= s.MaxPreauthPerAddr {
		return nil, ErrPreauthLimit
	}
	if s.MaxSessions > 0 && len(s.conns) >= s.MaxSessions {
		var oldest *Conn
		for o := range s.conns {
			if !o.authed && (oldest == nil || o.start.Before(oldest.start)) {
				oldest = o
			}
		}
		if oldest == nil {
			return nil, ErrServerFull
		}
		// Take the slot back at once and wake its session, which
		// answers ErrEvicted within farewellTimeout and closes.
		oldest.evicted.Store(true)
		s.releaseLocked(oldest)
		_ = oldest.nc.SetDeadline(time.Now())
	}
	s.conns[c] = struct{}{}
	s.countLocked(c)
	s.count.Store(int64(len(s.conns)))
	s.wg.Add(1)
	return c, nil
}

func (s *Server) releaseLocked(c *Conn) {
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.uncountLocked(c)
	s.count.Store(int64(len(s.conns)))
}

// Sessions returns the number of connections being served.
func (s *Server) Sessions() int { return int(s.count.Load()) }

// refuse answers a connection that is not admitted and closes it. On an
// implicit-TLS listener nothing is written: a plain-text line would be
// garbage to a TLS client, and a handshake would spend the CPU the limit
// saves.
func (s *Server) refuse(nc net.Conn, implicit bool, e *Error) {
	s.logger().Info("connection refused", "remote", nc.RemoteAddr().String(), "why", e.Text)
	if !implicit {
		_ = nc.SetWriteDeadline(time.Now().Add(refuseTimeout))
		_, _ = nc.Write([]byte("-ERR [" + e.Code + "] " + e.Text + "\r\n"))
	}
	_ = nc.Close()
}

// Serve accepts plain POP3 connections on ln until Shutdown (STLS is
// offered where TLSConfig is set).
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts implicit-TLS connections on ln (RFC 8314) until
// Shutdown.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.TLSConfig == nil {
		return errors.New("pop3gen: ServeTLS needs Server.TLSConfig")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicit bool) error {
	s.mu.Lock()
	s.init()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err // closed by someone else: nothing more will come
			}
			// Out of descriptors, a connection aborted before accept, or
			// any other error: one bad moment must not stop the server.
			// Wait (5 ms doubling up to 1 s, so a persistent error costs
			// little), then go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("accept failed, retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c, refused := s.admit(nc)
		if refused != nil {
			s.refuse(nc, implicit, refused)
			continue
		}
		go func() {
			defer s.wg.Done()
			defer s.end(c)
			s.serveConn(c, implicit)
		}()
	}
}

// ServeConn runs one plain POP3 session on nc (a connection accepted
// elsewhere, or one end of net.Pipe in tests and fuzzing) and returns when
// it ends. It closes nc.
func (s *Server) ServeConn(nc net.Conn) {
	c, refused := s.admit(nc)
	if refused != nil {
		s.refuse(nc, false, refused)
		return
	}
	defer s.wg.Done()
	defer s.end(c)
	s.serveConn(c, false)
}

// end releases c's slot and closes its connection.
func (s *Server) end(c *Conn) {
	s.mu.Lock()
	s.releaseLocked(c)
	s.mu.Unlock()
	_ = c.nc.Close()
}

// Shutdown stops accepting, interrupts every session at its next read or
// write (a session ended this way removes nothing: only QUIT does, and
// the client is told so) and waits for them, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		_ = c.nc.SetDeadline(time.Now())
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Closing reports whether Shutdown has begun (handlers that wait, such as
// a failed-login delay, end their wait early).
func (s *Server) Closing() bool { return s.closing.Load() }

// trusted reports whether a connection from a counts as secure without
// TLS.
func (s *Server) trusted(a net.Addr) bool {
	ip := RemoteIP(a)
	if !ip.IsValid() {
		return false
	}
	for _, p := range s.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// serveConn runs one session: greeting, then lines to the core until the
// session ends.
func (s *Server) serveConn(c *Conn, implicit bool) {
	c.log = s.logger().With("remote", c.nc.RemoteAddr().String())
	log := c.log
	// Close whatever c.c is at the end, so that a TLS session ends with
	// close_notify rather than a bare FIN.
	defer func() { _ = c.c.Close() }()
	if implicit {
		if !s.handshake(c) {
			return
		}
	}
	rc := &rateConn{Conn: c.c, raw: c.nc, rate: s.MinWriteRate, grace: s.WriteRateGrace, perWrite: s.WriteTimeout}

	bw := &pooledWriter{w: rc}
	defer bw.Flush()
	w := NewWriter(bw)

	if !s.RequireTLS && s.trusted(c.nc.RemoteAddr()) {
		c.secure = true
	}
	h, err := s.NewHandler(c)
	if err != nil {
		log.Error("no handler for the connection", "err", err)
		w.Error(errNoHandler)
		return
	}
	if cl, ok := h.(io.Closer); ok {
		defer cl.Close()
	}
	sess := NewSession(h, w, s.Variations)
	defer sess.Close() // before the Handler's Close: it may hold what the maildrop uses
	sess.SetTLS(s.TLSConfig != nil, s.RequireTLS)
	c.session = sess
	if c.tls != nil {
		sess.SetMode(ModeTLS | ModeSecure)
	} else if c.secure {
		sess.SetMode(ModeSecure)
	}
	greeting := s.Greeting
	if greeting == "" {
		greeting = "POP3 server ready"
	}
	// The timestamp only where APOP is served: on in the variations and
	// implemented by the handler (NewSession turned it off otherwise).
	if sess.v.APOP {
		host := s.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		c.stamp = "<" + strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(s.stamp.Add(1), 10) + "." +
			strconv.FormatInt(time.Now().UnixNano(), 10) + "@" + host + ">"
		greeting += " " + c.stamp
	}
	w.OK(greeting)
	if bw.Flush() != nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			// A bug, not the client's fault: answer, log, close. Nothing
			// is removed.
			log.Error("panic in session", "panic", p, "stack", string(debug.Stack()))
			w.Error(ErrInternal)
			_ = bw.Flush()
		}
	}()
	farewell := func() {
		log.Info("evicted: the server is full and this connection had not logged in")
		rc.startBurst()
		rc.rate, rc.perWrite = 0, farewellTimeout
		w.Error(ErrEvicted)
		_ = bw.Flush()
	}

	// refusedAuth counts authentication commands refused under RequireTLS
	// in a row; they end the session at MaxBadCommands as the core's own
	// refusals do (MS-STANXPOP3 C0005).
	refusedAuth := 0
	authed := false // the session has logged in (c.loggedIn was called)
	r := NewLineReader(c.c, s.Variations.MaxCommandOctets+2)
	for {
		if c.evicted.Load() {
			farewell()
			return
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(sess.IdleTimeout()))
		if s.closing.Load() || c.evicted.Load() {
			// Shutdown or an eviction may have set its deadline just
			// before ours: each sets its flag first, so one of the two
			// wakes us.
			_ = c.nc.SetReadDeadline(time.Now())
		}
		line, err := r.ReadLine(sess.MaxLine())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				switch {
				case c.evicted.Load():
					farewell()
					return
				case s.closing.Load():
					w.Error(ErrShutdown)
				default:
					log.Info("autologout", "state", sess.State().String())
					sess.Autologout() // MS-STANXPOP3 V0003; RFC 1939 §3
				}
				_ = bw.Flush()
			}
			return
		}
		rc.startBurst()
		var a Action
		if s.RequireTLS && c.tls == nil && !sess.InSASL() && isAuthCommand(line, &sess.v, sess.Mode()) {
			w.markCommand()
			if refusedAuth++; s.Variations.MaxBadCommands > 0 && refusedAuth >= s.Variations.MaxBadCommands {
				w.Error(ErrTooManyErrors)
				a = ActionClose
			} else {
				w.Error(ErrTLSRequired)
				a = ActionContinue
			}
		} else {
			refusedAuth = 0
			a = sess.Feed(line)
			if !authed && sess.LoggedIn() {
				authed = true
				c.loggedIn()
			}
		}
		if err := w.Err(); err != nil {
			log.Info("write failed", "err", err)
			return
		}
		if c.close {
			_ = bw.Flush()
			return
		}
		if r.Buffered() == 0 || a != ActionContinue {
			if err := bw.Flush(); err != nil {
				return
			}
		}
		switch a {
		case ActionClose:
			return
		case ActionStartTLS:
			// RFC 2595 §4: whatever the client sent after STLS is
			// discarded, never run (the STARTTLS command-injection class).
			r.Discard()
			if !s.handshake(c) {
				return
			}
			rc.Conn = c.c
			bw.Reset(rc)
			r.Reset(c.c)
			sess.TLSStarted()
		}
	}
}

// handshake runs the server side of a TLS handshake on c, bounded by
// HandshakeTimeout rather than the inactivity timers (a minute or more),
// so that silent connections give their slots back soon. A failure is
// logged with what it means and the error as given.
func (s *Server) handshake(c *Conn) bool {
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tc := tls.Server(c.c, s.TLSConfig)
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	if c.evicted.Load() {
		_ = c.nc.SetDeadline(time.Now()) // evicted before the deadline was set
	}
	if err := tc.Handshake(); err != nil {
		if c.evicted.Load() {
			c.log.Info("evicted during the TLS handshake: the server is full")
		} else {
			c.log.Info(HandshakeFailure(err), "err", err)
		}
		return false
	}
	_ = c.nc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.c, c.tls = tc, &st
	return true
}

// isAuthCommand reports whether line is an authentication command (USER,
// PASS, APOP or AUTH), read with the session's own lexer so that what is
// refused here is exactly what the core would have run.
func isAuthCommand(line []byte, v *Variations, m Mode) bool {
	var c Command
	if c.Parse(line, v, m) != nil {
		return false
	}
	switch c.Cmd {
	case CmdUSER, CmdPASS, CmdAPOP, CmdAUTH:
		return true
	}
	return false
}

// HandshakeFailure says in words why a server-side TLS handshake failed,
// for the log. Go reports a client that refuses the certificate in two
// ways: under TLS 1.2, and under TLS 1.3 from Go clients, as the client's
// alert ("remote error: tls: bad certificate"); under TLS 1.3 from
// OpenSSL, whose alert is encrypted with keys the server cannot yet use,
// as "local error: tls: bad record MAC", which says nothing true about the
// server. Log the original error beside this text.
func HandshakeFailure(err error) string {
	var ne net.Error
	var rh tls.RecordHeaderError
	var oe *net.OpError
	switch {
	case errors.As(err, &rh):
		return "client does not speak TLS (plain text on the TLS port, or STLS followed by plain text)"
	case errors.As(err, &ne) && ne.Timeout():
		return "TLS handshake timed out"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return "client closed the connection during the TLS handshake"
	case errors.As(err, &oe) && oe.Op == "remote error" && strings.Contains(oe.Err.Error(), "certificate"):
		return "client rejected the server certificate"
	case errors.As(err, &oe) && oe.Op == "remote error":
		return "client aborted the TLS handshake"
	case errors.As(err, &oe) && oe.Op == "local error" && strings.Contains(oe.Err.Error(), "bad record MAC"):
		return "client aborted the TLS handshake: it probably rejected the server certificate"
	case strings.Contains(err.Error(), "no cipher suite") || strings.Contains(err.Error(), "unsupported versions") ||
		strings.Contains(err.Error(), "no mutual") || strings.Contains(err.Error(), "no ECDHE curve"):
		return "client offers no TLS version, cipher suite or curve this server accepts"
	}
	return "TLS handshake failed"
}

// writeBufs are the write buffers sessions borrow for a batch of replies.
// 32 KiB makes RETR stream in few system calls; an idle session holds
// none, which keeps a held session small.
var writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32*1024) }}

// pooledWriter buffers writes to w in a borrowed bufio.Writer, taken at
// the first write and given back by Flush.
type pooledWriter struct {
	w  io.Writer
	bw *bufio.Writer
}

func (p *pooledWriter) Write(b []byte) (int, error) {
	if p.bw == nil {
		p.bw = writeBufs.Get().(*bufio.Writer)
		p.bw.Reset(p.w)
	}
	return p.bw.Write(b)
}

// Flush writes what is buffered and gives the buffer back.
func (p *pooledWriter) Flush() error {
	if p.bw == nil {
		return nil
	}
	err := p.bw.Flush()
	p.bw.Reset(nil)
	writeBufs.Put(p.bw)
	p.bw = nil
	return err
}

// Reset directs later writes to w (after STLS).
func (p *pooledWriter) Reset(w io.Writer) {
	_ = p.Flush()
	p.w = w
}

// rateQueue and ratePoll: a write for a connection with a minimum read
// rate waits while the kernel holds more than rateQueue octets the client
// has not taken, looking every ratePoll. 256 KiB is a full window on most
// links, so a fast client never waits; a slow one is measured on what it
// actually read, not on what the kernel swallowed (megabytes, with buffer
// autotuning).
const (
	rateQueue = 256 << 10
	ratePoll  = 50 * time.Millisecond
)

// unsent returns how many octets written to a connection the kernel
// still holds, not yet taken by the client, or -1 where the system cannot
// tell (set on Linux by outq_linux.go; elsewhere the minimum read rate
// counts what was handed to the kernel).
var unsent = func(net.Conn) int64 { return -1 }

// errTooSlow ends a connection whose client reads more slowly than
// MinWriteRate.
var errTooSlow = errors.New("client reads more slowly than the minimum write rate")

// defaultWriteTimeout bounds how long a client may take to accept any one
// write where Server.WriteTimeout is not set.
const defaultWriteTimeout = 5 * time.Minute

// rateConn bounds how long a client may take to read what the server
// writes. A burst is everything written in reply to one batch of
// commands; it starts at the first write after startBurst (not when the
// command was read: a reply that waits for a slow password check must not
// lose its allowance). Each write must end by
//
//	burst start + grace + (octets of the burst so far, this write included) / rate
//
// so a client that reads a long RETR more slowly than rate octets a second
// (after grace) is cut off, however it spaces its reads: a deadline per
// write alone would let it take the write timeout for every 32 KiB. No
// write may take longer than perWrite either. With rate 0 only the
// per-write timeout applies.
type rateConn struct {
	net.Conn
	raw      net.Conn      // the TCP connection under TLS, for unsent
	rate     int64         // octets per second; 0: off
	grace    time.Duration // added to every burst's allowance
	perWrite time.Duration // the most any one write may take; 0: defaultWriteTimeout
	start    time.Time     // the burst's start
	sent     int64         // octets written in this burst
}

// startBurst begins a new burst: the allowance starts again at the next
// write.
func (c *rateConn) startBurst() {
	c.start, c.sent = time.Time{}, 0
}

func (c *rateConn) Write(p []byte) (int, error) {
	now := time.Now()
	if c.start.IsZero() {
		c.start = now
	}
	per := c.perWrite
	if per <= 0 {
		per = defaultWriteTimeout
	}
	d := now.Add(per)
	if c.rate > 0 {
		// What the client has read of this burst: what was written,
		// less what the kernel still holds. Behind the rate (after
		// grace), it is cut off here, at the next write, however long
		// the kernel's buffer let it lag.
		// While the kernel holds more than rateQueue octets for the
		// client, the write waits (checking every ratePoll) rather than
		// block in the kernel, so that a client that stops reading is
		// found out within ratePoll, TLS or not.
		for {
			q := unsent(c.raw)
			if q < 0 {
				break
			}
			owed := int64(time.Since(c.start)-c.grace) * c.rate / int64(time.Second)
			if owed > 0 && c.sent-q < owed {
				// Drop what the kernel still holds for it when the
				// connection closes (a reset, not a graceful close that
				// would go on sending it for as long as it takes).
				if tc, ok := c.raw.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				return 0, errTooSlow
			}
			if q <= rateQueue {
				break
			}
			if time.Since(now) > per {
				return 0, os.ErrDeadlineExceeded
			}
			time.Sleep(ratePoll)
		}
		c.sent += int64(len(p))
		// At most defaultWriteTimeout ahead: the product cannot overflow.
		allowance := c.grace + time.Duration(min(c.sent, c.rate*int64(defaultWriteTimeout/time.Second))*int64(time.Second)/c.rate)
		if t := c.start.Add(allowance); t.Before(d) {
			d = t
		}
	}
	_ = c.Conn.SetWriteDeadline(d)
	return c.Conn.Write(p)
}
