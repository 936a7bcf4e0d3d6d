// Package server is pop3d: a POP3 server on the generated core pop3gen,
// serving Maildirs (ROOT/<user>/{cur,new,tmp}) to the users of a
// Dovecot-style passwd-file, over plain TCP with STLS and over implicit TLS
// (RFC 8314).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// Server serves POP3.
type Server struct {
	cfg    Config
	v      pop3gen.Variations
	passwd *Passwd
	mail   *MailRoot // every maildrop is reached through it, never by path
	tls    *tls.Config
	log    *slog.Logger

	mu          sync.Mutex
	listeners   []net.Listener
	conns       map[net.Conn]*slot   // admitted connections; bounded by MaxSessions
	preauth     map[netip.Prefix]int // unauthenticated connections per address group
	perUser     map[string]int       // logged-in sessions per user
	trustedNets []netip.Prefix
	closing     atomic.Bool
	wg          sync.WaitGroup
	sessions    atomic.Int64
	stamp       atomic.Uint64

	// auth bounds password verification; addrPenalty and userPenalty
	// remember recent failed logins (authpool.go, penalty.go).
	auth                     *authPool
	addrPenalty, userPenalty *penalties

	loginsMu  sync.Mutex
	lastLogin map[string]time.Time // for LoginDelay

	metrics struct {
		sessions, logins, loginFailures atomic.Int64
	}
}

// New checks cfg, loads the passwd-file and the TLS certificate, and
// returns a server ready to Serve.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	v, err := cfg.Variations()
	if err != nil {
		return nil, err
	}
	p, err := OpenPasswd(cfg.Passwd, log)
	if err != nil {
		return nil, fmt.Errorf("passwd-file: %v", err)
	}
	mail, err := OpenMailRoot(cfg.MailRoot)
	if err != nil {
		return nil, fmt.Errorf("mail root: %v", err)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
		if cfg.Hostname == "" {
			cfg.Hostname = "localhost"
		}
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, v: v, passwd: p, mail: mail, log: log, conns: map[net.Conn]*slot{}, lastLogin: map[string]time.Time{},
		preauth: map[netip.Prefix]int{}, perUser: map[string]int{}}
	s.auth = newAuthPool(cfg.AuthWorkers, int64(cfg.AuthMemory), time.Duration(cfg.AuthQueueTimeout))
	if cfg.Penalties && cfg.FailDelay > 0 {
		s.addrPenalty, s.userPenalty = newPenalties(cfg.PenaltyEntries), newPenalties(cfg.PenaltyEntries)
	}
	if s.trustedNets, err = parseNetworks(cfg.TrustedNetworks); err != nil {
		return nil, err
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %v", err)
		}
		s.tls = intermediateTLS(cert)
	}
	return s, nil
}

// Variations returns the variations in force.
func (s *Server) Variations() pop3gen.Variations { return s.v }

// Listen opens the configured listeners and returns their addresses.
func (s *Server) Listen() ([]net.Addr, error) {
	var addrs []net.Addr
	open := func(addr string, implicit bool) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		if implicit {
			ln = tlsListener{ln}
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
		addrs = append(addrs, ln.Addr())
		return nil
	}
	for _, a := range s.cfg.Listen {
		if err := open(a, false); err != nil {
			s.closeListeners()
			return nil, err
		}
	}
	for _, a := range s.cfg.ListenTLS {
		if err := open(a, true); err != nil {
			s.closeListeners()
			return nil, err
		}
	}
	return addrs, nil
}

// tlsListener marks a listener whose connections start with TLS.
type tlsListener struct{ net.Listener }

// AddListener adds a listener opened elsewhere (socket activation, tests)
// for Serve; implicitTLS says its connections start with TLS.
func (s *Server) AddListener(ln net.Listener, implicitTLS bool) {
	if implicitTLS {
		ln = tlsListener{ln}
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
}

// Serve accepts connections on every listener until Shutdown.
func (s *Server) Serve() error {
	s.mu.Lock()
	lns := append([]net.Listener(nil), s.listeners...)
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("no listeners: call Listen first")
	}
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errs <- s.accept(ln) }()
	}
	var first error
	for range lns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) accept(ln net.Listener) error {
	_, implicit := ln.(tlsListener)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
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
			s.log.Warn("accept failed, retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		sl, refused := s.admit(c)
		if refused != nil {
			s.refuse(c, implicit, refused)
			continue
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(sl)
			s.serveConn(c, implicit, sl)
		}()
	}
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		ln.Close()
	}
}

// Shutdown stops accepting, interrupts every session at its next read or
// write (a session ended this way removes nothing: only QUIT does) and
// waits for them, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for _, ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		_ = c.SetDeadline(time.Now())
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

// loginAllowed records a login of user and reports whether it keeps the
// LoginDelay since the last one (RFC 2449 §8.1.1). Entries older than the
// delay are dropped as the map is used, so it holds at most the users who
// logged in within the last delay.
func (s *Server) loginAllowed(user string) bool {
	d := time.Duration(s.cfg.LoginDelay)
	if d <= 0 {
		return true
	}
	now := time.Now()
	s.loginsMu.Lock()
	defer s.loginsMu.Unlock()
	if last, ok := s.lastLogin[user]; ok && now.Sub(last) < d {
		return false
	}
	if len(s.lastLogin) > 1024 {
		for u, t := range s.lastLogin {
			if now.Sub(t) >= d {
				delete(s.lastLogin, u)
			}
		}
	}
	s.lastLogin[user] = now
	return true
}

// Stats counts what the server has done since it started.
type Stats struct {
	Sessions, Logins, LoginFailures int64
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	return Stats{Sessions: s.metrics.sessions.Load(), Logins: s.metrics.logins.Load(), LoginFailures: s.metrics.loginFailures.Load()}
}

// Sessions returns the number of sessions being served.
func (s *Server) Sessions() int64 { return s.sessions.Load() }

// ServeConn runs one plain POP3 session on c (a connection accepted
// elsewhere, or one end of net.Pipe in tests and fuzzing) and returns when
// it ends. It closes c.
func (s *Server) ServeConn(c net.Conn) {
	sl, refused := s.admit(c)
	if refused != nil {
		s.refuse(c, false, refused)
		return
	}
	defer s.wg.Done()
	defer s.untrack(sl)
	s.serveConn(c, false, sl)
}

// writeTimeout bounds how long a client may take to accept any one write.
const writeTimeout = 5 * time.Minute

// serveConn runs one session: greeting, then lines to the core until the
// session ends.
func (s *Server) serveConn(c net.Conn, implicit bool, sl *slot) {
	log := s.log.With("remote", c.RemoteAddr().String())
	// Close whatever c is at the end, so that a TLS session ends with
	// close_notify rather than a bare FIN.
	defer func() { _ = c.Close() }()
	if implicit {
		tc, err := s.handshake(c, sl, log)
		if err != nil {
			return
		}
		c = tc
	}
	rc := &rateConn{Conn: c, rate: int64(s.cfg.MinWriteRate), grace: time.Duration(s.cfg.WriteRateGrace)}
	bw := &pooledWriter{w: rc}
	defer bw.Flush()
	w := pop3gen.NewWriter(bw)
	s.metrics.sessions.Add(1)

	h := &session{srv: s, log: log, slot: sl}
	sess := pop3gen.NewSession(h, w, s.v)
	h.s = sess
	defer h.close()
	if implicit {
		sess.SetMode(pop3gen.ModeTLS | pop3gen.ModeSecure)
	} else if !s.cfg.RequireTLS && s.trusted(c.RemoteAddr()) {
		// A trusted network (--trusted-networks) counts as secure for
		// PlaintextAuth=secure; under RequireTLS nothing but TLS does.
		sess.SetMode(pop3gen.ModeSecure)
	}
	greeting := "pop3kit ready"
	if s.v.APOP {
		h.stamp = "<" + strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(s.stamp.Add(1), 10) + "." +
			strconv.FormatInt(time.Now().UnixNano(), 10) + "@" + s.cfg.Hostname + ">"
		greeting += " " + h.stamp
	}
	w.OK(greeting)
	if bw.Flush() != nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			// A bug, not the client's fault: answer, log, close. Nothing
			// is removed.
			log.Error("panic in session", "panic", p)
			w.Error(pop3gen.ErrInternal)
			_ = bw.Flush()
		}
	}()
	// farewell answers an evicted connection, within farewellTimeout.
	farewell := func() {
		log.Info("evicted: the server is full and this connection had not logged in")
		rc.startBurst()
		rc.rate, rc.perWrite = 0, farewellTimeout
		w.Error(errEvicted)
		_ = bw.Flush()
	}

	// refusedAuth counts authentication commands refused under
	// RequireTLS in a row; they end the session at MaxBadCommands as the
	// core's own refusals do (MS-STANXPOP3 C0005).
	refusedAuth := 0
	r := pop3gen.NewLineReader(c, s.v.MaxCommandOctets+2)
	for {
		if sl.evicted.Load() {
			farewell()
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(sess.IdleTimeout()))
		if s.closing.Load() || sl.evicted.Load() {
			// Shutdown or an eviction may have set its deadline just
			// before ours: each sets its flag first, so one of the two
			// wakes us.
			_ = c.SetReadDeadline(time.Now())
		}
		line, err := r.ReadLine(sess.MaxLine())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				switch {
				case sl.evicted.Load():
					farewell()
					return
				case s.closing.Load():
					w.Error(errShutdown)
				default:
					log.Info("autologout", "state", sess.State().String())
					sess.Autologout() // MS-STANXPOP3 V0003; RFC 1939 §3
				}
				_ = bw.Flush()
			}
			return
		}
		rc.startBurst()
		var a pop3gen.Action
		if s.cfg.RequireTLS && sess.Mode()&pop3gen.ModeTLS == 0 && !sess.InSASL() && isAuthCommand(line, &s.v, sess.Mode()) {
			w.MarkCommand()
			if refusedAuth++; s.v.MaxBadCommands > 0 && refusedAuth >= s.v.MaxBadCommands {
				w.Error(pop3gen.ErrTooManyErrors)
				a = pop3gen.ActionClose
			} else {
				w.Error(errTLSRequired)
				a = pop3gen.ActionContinue
			}
		} else {
			refusedAuth = 0
			a = sess.Feed(line)
		}
		if h.broken != nil {
			log.Info("write failed", "err", h.broken)
			return
		}
		if h.closeAfter { // a handler's last reply, such as the failed-login cap's
			_ = bw.Flush()
			return
		}
		if r.Buffered() == 0 || a != pop3gen.ActionContinue {
			if err := bw.Flush(); err != nil {
				return
			}
		}
		switch a {
		case pop3gen.ActionClose:
			return
		case pop3gen.ActionStartTLS:
			// RFC 2595 §4: whatever the client sent after STLS is
			// discarded, never run (the STARTTLS command-injection class).
			r.Discard()
			tc, err := s.handshake(c, sl, log)
			if err != nil {
				return
			}
			c = tc
			rc.Conn = c
			bw.Reset(rc)
			r.Reset(c)
			sess.TLSStarted()
		}
	}
}

// handshake runs the server side of a TLS handshake on c, bounded by
// TLSHandshakeTimeout rather than the inactivity timers (a minute or
// more), so that silent connections give their slots back soon. A failure
// is logged with what it means and the error as given.
func (s *Server) handshake(c net.Conn, sl *slot, log *slog.Logger) (net.Conn, error) {
	tc := tls.Server(c, s.tls)
	_ = c.SetDeadline(time.Now().Add(time.Duration(s.cfg.TLSHandshakeTimeout)))
	if sl != nil && sl.evicted.Load() {
		_ = c.SetDeadline(time.Now()) // evicted before the deadline was set
	}
	if err := tc.Handshake(); err != nil {
		if sl != nil && sl.evicted.Load() {
			log.Info("evicted during the TLS handshake: the server is full")
		} else {
			log.Info(handshakeFailure(err), "err", err)
		}
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

var errShutdown = pop3gen.NewError(pop3gen.CodeSysTemp, "server shutting down, nothing was removed")
