package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
// timeout, the connection limits, the failed-login policy (LoginPolicy),
// panic recovery — and hands each command to a Session on the server's
// Handler. A server built on the runtime writes no connection loop of its
// own.
//
// The zero value is not usable: NewHandler and Dialect must be set.
// Fields must not change once Serve or ServeConn has been called.
type Server struct {
	// NewHandler returns the handler of a new connection, after it was
	// admitted and, on an implicit-TLS listener, after the handshake. An
	// error refuses the connection with [SYS/TEMP].
	NewHandler func(c *Conn) (Handler, error)
	// Dialect is what every session serves: a generated package's
	// *Variations (&v, where v := pop3gen.Exchange2010()), which carries
	// its command table and the variations in force. It must not be
	// changed once served: Reload assigns a new one.
	Dialect Dialect
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
	// AllowInsecureAuth lets USER/PASS and plaintext-equivalent SASL
	// mechanisms run over a connection that is neither TLS nor from a
	// Trusted network, where the variations allow it (PlaintextAuth
	// always). Off by default: PlaintextAuth always then counts as
	// secure, whatever the profile, so that no password crosses an
	// untrusted network in the clear unless the Server says so.
	AllowInsecureAuth bool
	// LoginPolicy is what the runtime does about failed logins: a failure
	// delay, penalties by address, a cap per connection, bounded
	// verification. Its zero value is the default, on; it is read when
	// the first connection is served.
	LoginPolicy LoginPolicy
	// MaxSessions bounds the connections served at once, counted from
	// accept, before any TLS handshake. When it is reached the oldest
	// connection that has not logged in gives way to the newcomer; only
	// when every connection is logged in is the newcomer refused. 0: no
	// limit.
	MaxSessions int
	// MaxPreauthPerAddr bounds the connections that have not logged in
	// from one address (IPv6: one /64). 0: no limit.
	MaxPreauthPerAddr int
	// MaxSessionsPerUser bounds the logged-in sessions of one user,
	// counted by the runtime at every login before its +OK (see Owner).
	// 0 means 10 (pop3d's default, and Dovecot's per user and address);
	// negative, no limit.
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
	// Observe, when set, is called after every command a session
	// answers, in the session's goroutine, with what it was and how it
	// ended: for metrics and protocol logs. It must not block.
	Observe func(c *Conn, e Event)
	// OnLimit, when set, is called when a limit refuses a connection or a
	// login, or evicts a connection, with the reply it got
	// (ErrServerFull, ErrPreauthLimit, ErrEvicted, the per-user refusal):
	// for metrics. It must not block.
	OnLimit func(e *Error)

	mu        sync.Mutex
	guard     *loginGuard // the LoginPolicy's state; nil when it is off
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	preauth   map[netip.Prefix]int
	perUser   map[string]int
	closing   atomic.Bool
	draining  atomic.Bool
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
	ErrKicked        = NewError(CodeSysTemp, "disconnected by the administrator, nothing was removed")
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
	dialect Dialect  // the server's when the connection started
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
	kicked  atomic.Bool
	in, out atomic.Int64 // octets read and written
	reason  string       // why the session ended, once it has
	w       *Writer      // the session's replies, once it exists
	trace   func(fromClient bool, line []byte)
	// ctx is Context's: cancelled when the connection ends, is kicked or
	// evicted, or the server shuts down.
	ctx    context.Context
	cancel context.CancelFunc
}

// Context returns a context that is cancelled when the connection ends,
// however it ends, when it is kicked or evicted, and when the server
// begins to shut down: a Handler passes it to whatever it waits on (a
// password check's queue, a failed-login delay, a database) so that no
// wait outlives the connection or holds up Shutdown.
func (c *Conn) Context() context.Context { return c.ctx }

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
	return c.dialect.Runtime()
}

// Dialect returns the dialect the connection serves: a backend whose table
// has variations of its own reads them here (c.Dialect().(*mypop3.Variations)).
func (c *Conn) Dialect() Dialect { return c.dialect }

// Log returns the connection's logger (with the client's address).
func (c *Conn) Log() *slog.Logger { return c.log }

// maxPerUser is MaxSessionsPerUser with its default; 0 for no limit.
func (s *Server) maxPerUser() int {
	switch {
	case s.MaxSessionsPerUser == 0:
		return 10
	case s.MaxSessionsPerUser < 0:
		return 0
	}
	return s.MaxSessionsPerUser
}

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
	if most := s.maxPerUser(); most > 0 && s.perUser[user] >= most {
		e := NewError(CodeInUse, strings.Replace(errTooManyPerUsr, "%d", strconv.Itoa(most), 1))
		if s.OnLimit != nil {
			s.OnLimit(e)
		}
		return e
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

// User returns the user Login counted the connection for; "" before.
func (c *Conn) User() string {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.user
}

// Start returns when the connection was accepted.
func (c *Conn) Start() time.Time { return c.start }

// Octets returns the octets read from and written to the client so far
// (on the wire: TLS records included).
func (c *Conn) Octets() (in, out int64) { return c.in.Load(), c.out.Load() }

// EndReason says why the session ended ("quit", "autologout", "client
// closed the connection", "kicked", "shutdown", …); "" while it runs. A
// Handler's Close, which runs after the session ended, reads it.
func (c *Conn) EndReason() string { return c.reason }

// SetTrace turns on a protocol log for the connection (nil turns it
// off): f gets every line the client sends, with secrets replaced by
// "****" (PASS's password, APOP's digest, AUTH's initial response and
// every line of a SASL exchange), and the status line of every reply (not
// listings or message bodies). Call it from the Handler (NewHandler, or a
// login), in the session's goroutine.
func (c *Conn) SetTrace(f func(fromClient bool, line []byte)) {
	c.trace = f
	if c.w != nil {
		c.w.trace = c.traceReply()
	}
}

// traceReply returns the Writer's hook for c.trace.
func (c *Conn) traceReply() func([]byte) {
	if c.trace == nil {
		return nil
	}
	f := c.trace
	return func(b []byte) { f(false, b) }
}

// redacted returns line as a protocol log shows it: without its line end,
// and with the secrets it may carry replaced by "****".
func redacted(p *Protocol, line []byte, inSASL bool) []byte {
	line = bytes.TrimRight(line, "\r\n")
	if inSASL {
		if len(line) == 1 && line[0] == '*' {
			return line
		}
		return []byte("****")
	}
	// Every result is a copy: line is the session's read buffer, which
	// the command is then parsed from.
	kw, rest, _ := bytes.Cut(line, []byte(" "))
	out := append([]byte(nil), kw...)
	var args Args
	if c := p.Command(string(kw)); c != CmdNone {
		args = p.Commands[c].Args
	}
	switch args {
	case Secret:
		return append(out, " ****"...)
	case NameDigest:
		name, _, _ := bytes.Cut(rest, []byte(" "))
		return append(append(append(out, ' '), name...), " ****"...)
	case Mechanism:
		mech, initial, _ := bytes.Cut(rest, []byte(" "))
		if len(mech) > 0 {
			out = append(append(out, ' '), mech...)
		}
		if len(initial) > 0 {
			out = append(out, " ****"...)
		}
		return out
	}
	return append([]byte(nil), line...)
}

// Kick ends the session at its next read or write, with -ERR [SYS/TEMP]
// where it is waiting for a command; nothing is removed (it does not
// enter UPDATE). Safe to call from any goroutine.
func (c *Conn) Kick() {
	c.kicked.Store(true)
	c.cancel()
	_ = c.nc.SetDeadline(time.Now())
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

// addrKey groups client addresses for the per-address limits and the
// login policy's penalties: an IPv4 address alone, an IPv6 address by its /64, the
// smallest block a site is given, so that one host cannot dodge a limit
// by rotating its interface identifiers. Connections without an IP
// address (net.Pipe) have none (an invalid Prefix).
func addrKey(a net.Addr) netip.Prefix {
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
		s.guard = newLoginGuard(s.LoginPolicy)
	}
}

// settings are the fields of Server a connection reads, copied under mu
// when the connection starts, so that Reload changes them for the
// connections that follow and never under one being served.
type settings struct {
	newHandler              func(*Conn) (Handler, error)
	v                       Dialect
	tls                     *tls.Config
	greeting, hostname      string
	trusted                 []netip.Prefix
	requireTLS              bool
	allowInsecure           bool
	handshake, writeTimeout time.Duration
	rate                    int64
	grace                   time.Duration
	observe                 func(*Conn, Event)
}

func (s *Server) settings() settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return settings{newHandler: s.NewHandler, v: s.Dialect, tls: s.TLSConfig, greeting: s.Greeting, hostname: s.Hostname,
		trusted: s.Trusted, requireTLS: s.RequireTLS, allowInsecure: s.AllowInsecureAuth, handshake: s.HandshakeTimeout, writeTimeout: s.WriteTimeout,
		rate: s.MinWriteRate, grace: s.WriteRateGrace, observe: s.Observe}
}

// Reload runs f on the server under its lock: f may change any exported
// field (the variations, TLS configuration, limits, trusted networks…).
// Connections that start afterwards get the new values; those being
// served keep the ones they started with, except the connection limits,
// which apply to the next connection or login whatever it is.
func (s *Server) Reload(f func(*Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
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
	c := &Conn{srv: s, nc: nc, c: nc, start: time.Now(), key: addrKey(nc.RemoteAddr())}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.closing.Load() || s.draining.Load() {
		c.cancel()
		return nil, ErrShutdown
	}
	if s.MaxPreauthPerAddr > 0 && c.key.IsValid() && s.preauth[c.key] >= s.MaxPreauthPerAddr {
		c.cancel()
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
			c.cancel()
			return nil, ErrServerFull
		}
		// Take the slot back at once and wake its session, which
		// answers ErrEvicted within farewellTimeout and closes.
		oldest.evicted.Store(true)
		oldest.cancel()
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

// limitHit tells OnLimit.
func (s *Server) limitHit(e *Error) {
	s.mu.Lock()
	f := s.OnLimit
	s.mu.Unlock()
	if f != nil {
		f(e)
	}
}

// Sessions returns the number of connections being served.
func (s *Server) Sessions() int { return int(s.count.Load()) }

// refuse answers a connection that is not admitted and closes it. On an
// implicit-TLS listener nothing is written: a plain-text line would be
// garbage to a TLS client, and a handshake would spend the CPU the limit
// saves.
func (s *Server) refuse(nc net.Conn, implicit bool, e *Error) {
	s.limitHit(e)
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

// check returns why the Server cannot serve: no NewHandler, or variations
// out of range (the zero Variations among them: start from a profile).
func (s *Server) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.NewHandler == nil {
		return errors.New("pop3: Server.NewHandler is not set")
	}
	if s.Dialect == nil || s.Dialect.Protocol() == nil {
		return errors.New("pop3: Server.Dialect is not set (a generated package's *Variations, from a profile such as pop3gen.Exchange2010())")
	}
	check := s.Dialect.Runtime().Check
	if c, ok := s.Dialect.(interface{ Check() error }); ok {
		check = c.Check
	}
	if err := check(); err != nil {
		return fmt.Errorf("pop3: Server.Dialect: %v (start from a profile such as pop3gen.RFC1939() or pop3gen.Exchange2010())", err)
	}
	return nil
}

// ServeTLS accepts implicit-TLS connections on ln (RFC 8314) until
// Shutdown.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.TLSConfig == nil {
		return errors.New("pop3: ServeTLS needs Server.TLSConfig")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicit bool) error {
	if err := s.check(); err != nil {
		ln.Close()
		return err
	}
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
			if s.closing.Load() || s.draining.Load() {
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
		c.cancel()
		_ = c.nc.SetDeadline(time.Now())
	}
	s.mu.Unlock()
	return s.wait(ctx)
}

// wait waits for every session to end, or for ctx.
func (s *Server) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain stops accepting and lets the sessions end by themselves (the
// client's QUIT, the inactivity timers) until ctx is done; then it ends
// the rest as Shutdown does, removing nothing for them, and returns ctx's
// error. A reload or an upgrade drains the old process.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	s.draining.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	if s.wait(ctx) == nil {
		return nil
	}
	cut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Shutdown(cut)
	return ctx.Err()
}

// Conns returns the connections being served now, for an administrator
// (who is logged in, from where, since when).
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// isTrusted reports whether a connection from a counts as secure without
// TLS.
func (set *settings) isTrusted(a net.Addr) bool {
	ip := RemoteIP(a)
	if !ip.IsValid() {
		return false
	}
	for _, p := range set.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// serveConn runs one session: greeting, then lines to the core until the
// session ends.
func (s *Server) serveConn(c *Conn, implicit bool) {
	set := s.settings()
	c.dialect = set.v
	// The remote address joins the logger's attributes when a line is
	// logged (withLazy); that is formatted deep in the stack: when a
	// session logs, it does so aside (see aside), so that the session's
	// goroutine keeps the small stack its read loop needs.
	c.log = withLazy(s.logger(), slog.String("remote", c.nc.RemoteAddr().String()))
	log := c.log
	defer c.cancel()
	// Writes go through rc, under TLS when there is TLS.
	rc := &rateConn{Conn: c.nc, raw: c.nc, rate: set.rate, grace: set.grace, perWrite: set.writeTimeout,
		stop: func() bool { return s.closing.Load() || c.evicted.Load() || c.kicked.Load() }, out: &c.out}
	c.c = rc
	// Close whatever c.c is at the end, so that a TLS session ends with
	// close_notify rather than a bare FIN.
	defer func() { _ = c.c.Close() }()
	if implicit {
		if !s.handshake(c, &set) {
			c.reason = "TLS handshake failed"
			return
		}
	}

	bw := &pooledWriter{w: c.c}
	defer bw.Flush()
	w := NewWriter(bw)

	if !set.requireTLS && set.isTrusted(c.nc.RemoteAddr()) {
		c.secure = true
	}
	var h Handler
	err := protect(log, "NewHandler", func() error {
		var err error
		h, err = set.newHandler(c)
		return err
	})
	if err == nil && h == nil {
		err = errors.New("NewHandler returned no Handler")
	}
	if err != nil {
		log.Error("no handler for the connection", "err", err)
		w.Error(errNoHandler)
		c.reason = "no handler"
		return
	}
	if cl, ok := h.(io.Closer); ok {
		defer func() {
			if err := protect(log, "Handler.Close", cl.Close); err != nil {
				log.Warn("Handler.Close", "err", err)
			}
		}()
	}
	if p := set.v.Protocol(); p.Handler != nil && !p.Handler(h) {
		log.Error("no handler for the connection", "err", fmt.Sprintf("NewHandler returned a %T, which is not a Handler of the Server's dialect", h))
		w.Error(errNoHandler)
		c.reason = "no handler"
		return
	}
	sess := NewSession(h, w, set.v)
	sess.log = log
	sess.admit = c.Login
	if s.guard != nil {
		key := ""
		if c.key.IsValid() {
			key = c.key.String()
		}
		sess.guard = &connGuard{g: s.guard, ctx: c.ctx, key: key}
	}
	if !set.allowInsecure && sess.v.PlaintextAuth == PlaintextAuthAlways {
		sess.v.PlaintextAuth = PlaintextAuthSecure
	}
	c.w = w
	w.trace = c.traceReply()
	// Before the Handler's Close: it may hold what the maildrop uses.
	defer func() {
		if err := protect(log, "Maildrop.Close", sess.Close); err != nil {
			log.Warn("Maildrop.Close", "err", err)
		}
	}()
	sess.SetTLS(set.tls != nil, set.requireTLS)
	c.session = sess
	if c.tls != nil {
		sess.SetMode(ModeTLS | ModeSecure)
	} else if c.secure {
		sess.SetMode(ModeSecure)
	}
	greeting := set.greeting
	if greeting == "" {
		greeting = "POP3 server ready"
	}
	// The timestamp only where APOP is served: on in the variations and
	// implemented by the handler (NewSession turned it off otherwise).
	if sess.serves(NameDigest) {
		host := set.hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		c.stamp = "<" + strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(s.stamp.Add(1), 10) + "." +
			strconv.FormatInt(time.Now().UnixNano(), 10) + "@" + host + ">"
		greeting += " " + c.stamp
	}
	w.OK(greeting)
	if bw.Flush() != nil {
		c.reason = "client gone before the greeting"
		return
	}
	defer func() {
		if p := recover(); p != nil {
			// A bug, not the client's fault: log, answer if no reply has
			// begun, close. Nothing is removed. Once a status line, a
			// listing or a message is out, -ERR written after it would
			// be taken for its content: the client sees the reply cut
			// short instead, which it treats as a failure.
			log.Error("panic in session", "command", sess.ev.Command, "panic", p, "stack", string(debug.Stack()))
			if w.lines() == 0 {
				w.Error(errInternal)
				_ = bw.Flush()
			}
			c.reason = "internal error"
		}
	}()
	farewell := func() {
		c.reason = "evicted"
		s.limitHit(ErrEvicted)
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
	r := newLineReader(c.c, sess.v.MaxCommandOctets+2)
	for {
		if c.evicted.Load() {
			farewell()
			return
		}
		deadline := time.Now().Add(sess.IdleTimeout())
		if r.Buffered() == 0 && sess.idler() != nil {
			// The maildrop lets go of what it holds once the client has
			// kept it waiting idleAfter; a client that answers sooner
			// never makes it.
			wait := time.Now().Add(idleAfter)
			if deadline.Before(wait) {
				wait = deadline
			}
			_ = c.nc.SetReadDeadline(wait)
			if err := r.Waiting(); err != nil && !s.closing.Load() && !c.evicted.Load() && !c.kicked.Load() {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Now().Before(deadline) {
					sess.idle()
				}
			}
		}
		_ = c.nc.SetReadDeadline(deadline)
		if s.closing.Load() || c.evicted.Load() || c.kicked.Load() {
			// Shutdown or an eviction may have set its deadline just
			// before ours: each sets its flag first, so one of the two
			// wakes us.
			_ = c.nc.SetReadDeadline(time.Now())
		}
		line, err := r.ReadLine(sess.MaxLine())
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				switch {
				case c.evicted.Load():
					farewell()
					return
				case c.kicked.Load():
					w.Error(ErrKicked)
					c.reason = "kicked"
				case s.closing.Load():
					w.Error(ErrShutdown)
					c.reason = "shutdown"
				default:
					log.Info("autologout", "state", sess.State().String())
					sess.Autologout() // MS-STANXPOP3 V0003; RFC 1939 §3
					c.reason = "autologout"
				}
				_ = bw.Flush()
			case errors.Is(err, io.EOF):
				c.reason = "client closed the connection"
			default:
				c.reason = "read failed: " + err.Error()
			}
			return
		}
		c.in.Add(int64(len(line)))
		if c.trace != nil {
			c.trace(true, redacted(sess.p, line, sess.sasl))
		}
		began := time.Now()
		rc.startBurst()
		var a Action
		if set.requireTLS && c.tls == nil && !sess.sasl && sess.isAuthCommand(line) {
			w.markCommand()
			sess.ev = Event{Err: ErrTLSRequired}
			if refusedAuth++; sess.v.MaxBadCommands > 0 && refusedAuth >= sess.v.MaxBadCommands {
				w.Error(errTooManyErrors)
				sess.ev.Err = errTooManyErrors
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
		if set.observe != nil {
			e := sess.ev
			e.Elapsed = time.Since(began)
			set.observe(c, e)
		}
		if err := w.Err(); err != nil {
			log.Info("write failed", "err", err)
			c.reason = "write failed: " + err.Error()
			return
		}
		if c.close {
			_ = bw.Flush()
			c.reason = "closed by the server after its reply"
			return
		}
		if r.Buffered() == 0 || a != ActionContinue {
			if err := bw.Flush(); err != nil {
				c.reason = "write failed: " + err.Error()
				return
			}
		}
		switch a {
		case ActionClose:
			if sess.p.ops[sess.ev.Cmd] == opQUIT && sess.ev.Err == nil {
				c.reason = "quit"
			} else if sess.ev.Err != nil {
				c.reason = "closed after -ERR " + sess.ev.Err.Text
			} else {
				c.reason = "closed: a reply could not be completed"
			}
			return
		case ActionStartTLS:
			// RFC 2595 §4: whatever the client sent after STLS is
			// discarded, never run (the STARTTLS command-injection class).
			r.Discard()
			if !s.handshake(c, &set) {
				c.reason = "TLS handshake failed"
				return
			}
			bw.Reset(c.c)
			r.Reset(c.c)
			sess.TLSStarted()
		}
	}
}

// handshake runs the server side of a TLS handshake on c, bounded by
// HandshakeTimeout rather than the inactivity timers (a minute or more),
// so that silent connections give their slots back soon. A failure is
// logged with what it means and the error as given.
func (s *Server) handshake(c *Conn, set *settings) bool {
	timeout := set.handshake
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	under := c.c // the rateConn: its writes keep to the handshake's deadline
	tc := tls.Server(under, set.tls)
	_ = under.SetDeadline(time.Now().Add(timeout))
	if c.evicted.Load() {
		_ = under.SetDeadline(time.Now()) // evicted before the deadline was set
	}
	if err := tc.Handshake(); err != nil {
		if c.evicted.Load() {
			c.log.Info("evicted during the TLS handshake: the server is full")
		} else {
			c.log.Info(handshakeFailure(err), "err", err)
		}
		return false
	}
	_ = under.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.c, c.tls = tc, &st
	return true
}

// isAuthCommand reports whether line is an authentication command (USER,
// PASS, APOP, AUTH: a login, or the command a login follows), read with
// the session's own lexer so that what is refused here is exactly what
// the session would have run.
func (s *Session) isAuthCommand(line []byte) bool {
	var c Command
	if s.lx.parse(&c, line, s.mode) != nil {
		return false
	}
	switch s.p.ops[c.Cmd] {
	case opLogin, opSASL:
		return true
	}
	return s.p.keeps&(1<<c.Cmd) != 0
}

// serves reports whether a command of grammar a is on in the session (APOP,
// for NameDigest: the greeting's timestamp is for it).
func (s *Session) serves(a Args) bool {
	for i := 1; i < len(s.p.Commands); i++ {
		if s.p.Commands[i].Args == a && s.off&(1<<i) == 0 {
			return true
		}
	}
	return false
}

// handshakeFailure says in words why a server-side TLS handshake failed,
// for the log. Go reports a client that refuses the certificate in two
// ways: under TLS 1.2, and under TLS 1.3 from Go clients, as the client's
// alert ("remote error: tls: bad certificate"); under TLS 1.3 from
// OpenSSL, whose alert is encrypted with keys the server cannot yet use,
// as "local error: tls: bad record MAC", which says nothing true about the
// server. Log the original error beside this text.
func handshakeFailure(err error) string {
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
var writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBuffer) }}

// writeBuffer is the size of a session's write buffer while it answers:
// a message up to about its size leaves in one write with its "+OK" line
// and its end; a larger one in writes of this size.
const writeBuffer = 64 << 10

// pooledWriter buffers writes to w in a borrowed bufio.Writer, taken at
// the first write and given back by Flush.
type pooledWriter struct {
	w  io.Writer
	bw *bufio.Writer
}

func (p *pooledWriter) Write(b []byte) (int, error) {
	return p.borrow().Write(b)
}

// borrow returns the buffer, taking one from the pool if need be.
func (p *pooledWriter) borrow() *bufio.Writer {
	if p.bw == nil {
		p.bw = writeBufs.Get().(*bufio.Writer)
		p.bw.Reset(p.w)
	}
	return p.bw
}

// Available and AvailableBuffer are the buffer's, as bufio.Writer's: a
// DotWriter converts a message straight into it.
func (p *pooledWriter) Available() int { return p.borrow().Available() }

func (p *pooledWriter) AvailableBuffer() []byte { return p.borrow().AvailableBuffer() }

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

// idleAfter is how long a session waits for the next command before its
// maildrop is told it is idle (Maildrop's Idle).
const idleAfter = time.Second

// ratePoll is how often a write that the kernel cannot take at once
// looks at how much the client has read: a client that stops reading is
// found out within it, while one that reads keeps the write going without
// a pause.
const ratePoll = 50 * time.Millisecond

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
// writes. It sits on the TCP connection, under TLS when there is TLS, so
// that a write can wait in short steps without a timeout ever reaching
// the TLS layer (after which a tls.Conn cannot write again). A burst is
// everything written in reply to one batch of commands; it starts at the
// first write after startBurst (not when the command was read: a reply
// that waits for a slow password check must not lose its allowance). At
// every step of a write, what the client has read of the burst (what was
// written, less what the kernel still holds for it) must be at least
//
//	(time since the burst's start - grace) * rate
//
// so a client that reads a long RETR more slowly than rate octets a second
// (after grace) is cut off, however it spaces its reads and however much
// the kernel's buffer swallowed (where the system cannot tell what the
// kernel holds, what was handed to it counts as read). The check runs
// only while a write waits, every ratePoll: a write the kernel takes at
// once costs no system call. No write may take longer than perWrite
// either, nor go past a deadline set on the connection (a TLS
// handshake's); with rate 0 only those apply.
type rateConn struct {
	net.Conn
	raw      net.Conn      // the TCP connection, for unsent
	rate     int64         // octets per second; 0: off
	grace    time.Duration // added to every burst's allowance
	perWrite time.Duration // the most any one write may take; 0: defaultWriteTimeout
	start    time.Time     // the burst's start
	sent     int64         // octets written in this burst
	outer    time.Time     // a deadline set through SetDeadline or SetWriteDeadline
	stop     func() bool   // Shutdown or eviction: a timed-out step ends the write
	out      *atomic.Int64 // octets written, for Conn.Octets
}

// startBurst begins a new burst: the allowance starts again at the next
// write.
func (c *rateConn) startBurst() {
	c.start, c.sent = time.Time{}, 0
}

// SetDeadline sets the connection's deadline, which writes respect too.
func (c *rateConn) SetDeadline(t time.Time) error {
	c.outer = t
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline sets a deadline that writes respect.
func (c *rateConn) SetWriteDeadline(t time.Time) error {
	c.outer = t
	return c.Conn.SetWriteDeadline(t)
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
	end := now.Add(per)
	if !c.outer.IsZero() && c.outer.Before(end) {
		end = c.outer
	}
	written := 0
	for {
		// A write the kernel takes at once costs nothing more; one that
		// waits looks at the client's progress every ratePoll.
		dl := end
		if c.rate > 0 {
			if t := time.Now().Add(ratePoll); t.Before(dl) {
				dl = t
			}
		}
		_ = c.Conn.SetWriteDeadline(dl)
		n, err := c.Conn.Write(p[written:])
		written += n
		c.sent += int64(n)
		if c.out != nil {
			c.out.Add(int64(n))
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return written, err
		}
		if !time.Now().Before(end) || c.stop != nil && c.stop() {
			return written, err
		}
		if c.behind() {
			c.cutOff()
			return written, errTooSlow
		}
	}
}

// behind reports whether the client has read less of the burst than the
// rate asks by now: what was written less what the kernel still holds
// (or, where the system cannot tell, what was handed to the kernel).
func (c *rateConn) behind() bool {
	elapsed := time.Since(c.start) - c.grace
	if c.rate <= 0 || elapsed <= 0 {
		return false
	}
	owed := int64(elapsed/time.Millisecond) * c.rate / 1000
	read := c.sent
	if q := unsent(c.raw); q >= 0 {
		read -= q
	}
	return read < owed
}

// cutOff drops what the kernel still holds for the client when the
// connection closes: a reset, not a graceful close that would go on
// sending it for as long as it takes.
func (c *rateConn) cutOff() {
	if tc, ok := c.raw.(interface{ SetLinger(int) error }); ok {
		_ = tc.SetLinger(0)
	}
}

// protect runs f, a Handler's or a Maildrop's method outside the session
// loop, and turns a panic in it into an error, logged with its stack: a
// bug in a backend ends its connection, never the process.
func protect(log *slog.Logger, what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic in "+what, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic in %s: %v", what, p)
		}
	}()
	return f()
}
