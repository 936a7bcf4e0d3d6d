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
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/lmtp"
	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/store"
)

// Server serves POP3: pop3d's configuration, users and maildrops on the
// core's runtime (pop3.Server), which owns every connection.
type Server struct {
	cfg    Config
	v      pop3gen.Variations
	users  account.Authenticator
	passwd *account.Passwd // the passwd-file, when users are its
	store  store.Store     // Maildir: every maildrop is reached through its os.Root, never by path
	dummy  *account.Account
	tls    *tls.Config
	// proxyFrom are the load balancers that send PROXY protocol headers.
	proxyFrom []netip.Prefix
	// traceNets are the client networks whose sessions are protocol-logged.
	traceNets []netip.Prefix
	log       *slog.Logger
	core      pop3.Server
	lmtp      *lmtp.Server // LMTP delivery, when Config.LMTP is set (delivery.go)

	mu        sync.Mutex
	listeners []listener

	// auth bounds password verification (authpool.go); userPenalty
	// remembers recent failed logins by user name (the runtime's
	// LoginPolicy keeps them by address).
	auth        *authPool
	userPenalty *pop3.Penalties

	loginsMu  sync.Mutex
	lastLogin map[string]time.Time // for LoginDelay

	metrics *metrics
}

// listener is a listener for Serve and whether it is implicit TLS.
type listener struct {
	net.Listener
	implicit bool
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
	users, store := cfg.Users, cfg.Store
	var p *account.Passwd
	if users == nil {
		if p, err = account.OpenPasswd(cfg.Passwd, log); err != nil {
			return nil, fmt.Errorf("passwd-file: %v", err)
		}
		users = p
	}
	if store == nil {
		mail, err := maildir.OpenMailRoot(cfg.MailRoot)
		if err != nil {
			return nil, fmt.Errorf("mail root: %v", err)
		}
		store = mail
	}
	// dummy is verified when a user does not exist, so that a failed
	// login costs the same work whether or not the user exists.
	dummy, err := account.DummyAccount()
	if err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if lim := descriptorLimit(); cfg.MaxSessions > (lim-descriptorsReserved)/descriptorsPerSession {
		log.Warn("max_sessions is more than the descriptor limit serves: logins beyond it will fail -ERR [SYS/TEMP]",
			"max_sessions", cfg.MaxSessions, "descriptors", lim, "serves", DefaultMaxSessions())
	}
	s := &Server{cfg: cfg, v: v, users: users, passwd: p, store: store, dummy: dummy, log: log, lastLogin: map[string]time.Time{}}
	if s.lmtp, err = newLMTP(s); err != nil {
		return nil, err
	}
	s.auth = newAuthPool(cfg.AuthWorkers, int64(cfg.AuthMemory), time.Duration(cfg.AuthQueueTimeout))
	if cfg.Penalties && cfg.FailDelay > 0 {
		s.userPenalty = pop3.NewPenalties(cfg.PenaltyEntries)
	}
	trusted, err := parseNetworks(cfg.TrustedNetworks)
	if err != nil {
		return nil, err
	}
	if s.proxyFrom, err = parseNetworks(cfg.ProxyProtocolFrom); err != nil {
		return nil, err
	}
	if s.traceNets, err = parseNetworks(cfg.ProtocolLogNetworks); err != nil {
		return nil, err
	}
	if cfg.TLSCert != "" {
		cert, err := cfg.certificate()
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %v", err)
		}
		s.tls = intermediateTLS(cert)
	}
	s.core = pop3.Server{
		NewHandler:         s.newSession,
		Dialect:            &v,
		TLSConfig:          s.tls,
		Greeting:           "pop3kit ready",
		Hostname:           cfg.Hostname,
		Trusted:            trusted,
		RequireTLS:         cfg.RequireTLS,
		AllowInsecureAuth:  allowInsecureAuth(v),
		LoginPolicy:        loginPolicy(&cfg),
		MaxSessions:        cfg.MaxSessions,
		MaxPreauthPerAddr:  cfg.MaxPreauthPerIP,
		MaxSessionsPerUser: cfg.MaxSessionsPerUser,
		HandshakeTimeout:   time.Duration(cfg.TLSHandshakeTimeout),
		MinWriteRate:       int64(cfg.MinWriteRate),
		WriteRateGrace:     time.Duration(cfg.WriteRateGrace),
		Log:                log,
		Observe:            s.observe,
		OnLimit:            s.onLimit,
	}
	s.metrics = newMetrics(func() float64 { return float64(s.core.Sessions()) })
	return s, nil
}

// newSession is the core's handler factory: pop3d's session on c.
func (s *Server) newSession(c *pop3.Conn) (pop3.Handler, error) {
	s.metrics.sessionsN.Add(1)
	h := &session{srv: s, conn: c, log: c.Log(), implicitTLS: c.TLS() != nil, tlsc: s.tlsConfig()}
	switch {
	case inNetworks(s.traceNets, c.RemoteAddr()):
		h.traceOn(slog.LevelInfo)
	case h.log.Enabled(context.Background(), slog.LevelDebug):
		h.traceOn(slog.LevelDebug)
	}
	// The core creates the protocol session after the handler; the
	// handler reaches it through the connection.
	return h, nil
}

// CheckPasswd opens the passwd-file as the process now is, as every reload
// will (pop3d calls it after dropping its privileges).
func (s *Server) CheckPasswd() error {
	if s.passwd == nil {
		return nil
	}
	return s.passwd.CheckReadable()
}

// fillDefaults sets what New derives from the rest: the host name the
// system has (which the SASL mechanisms name too), and EXPIRE from the
// retention, in days (RFC 2449 §6.7).
func (c *Config) fillDefaults() {
	if c.Expire == "" && c.Retention > 0 {
		c.Expire = strconv.FormatInt(int64(time.Duration(c.Retention)/(24*time.Hour)), 10)
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
		if c.Hostname == "" {
			c.Hostname = "localhost"
		}
	}
	c.sasl.Hostname = c.Hostname
}

// tlsConfig returns the TLS configuration new connections get.
func (s *Server) tlsConfig() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tls
}

// Variations returns the variations in force.
func (s *Server) Variations() pop3gen.Variations {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v
}

// Listen opens the configured listeners and returns their addresses.
func (s *Server) Listen() ([]net.Addr, error) {
	var opened []listener
	open := func(addr string, implicit bool) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		opened = append(opened, listener{ln, implicit})
		return nil
	}
	for _, a := range s.cfg.Listen {
		if err := open(a, false); err != nil {
			closeAll(opened)
			return nil, err
		}
	}
	for _, a := range s.cfg.ListenTLS {
		if err := open(a, true); err != nil {
			closeAll(opened)
			return nil, err
		}
	}
	if _, err := s.lmtpListen(); err != nil {
		closeAll(opened)
		return nil, err
	}
	var addrs []net.Addr
	s.mu.Lock()
	for _, ln := range opened {
		s.listeners = append(s.listeners, ln)
		addrs = append(addrs, ln.Addr())
	}
	s.mu.Unlock()
	return addrs, nil
}

func closeAll(lns []listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// AddListener adds a listener opened elsewhere (socket activation, tests)
// for Serve; implicitTLS says its connections start with TLS.
func (s *Server) AddListener(ln net.Listener, implicitTLS bool) {
	s.mu.Lock()
	s.listeners = append(s.listeners, listener{ln, implicitTLS})
	s.mu.Unlock()
}

// Serve serves every listener until Shutdown.
func (s *Server) Serve() error {
	s.mu.Lock()
	lns := append([]listener(nil), s.listeners...)
	s.mu.Unlock()
	lmtp := s.LMTPAddr() != nil
	if len(lns) == 0 && !lmtp {
		return errors.New("no listeners: call Listen first")
	}
	errs := make(chan error, len(lns)+1)
	n := len(lns)
	stop := make(chan struct{})
	defer close(stop)
	go s.watchAccounts(stop)
	if lmtp {
		n++
		go func() { errs <- s.lmtp.Serve() }()
	}
	for _, ln := range lns {
		l := ln.Listener
		if len(s.proxyFrom) > 0 {
			l = newProxyListener(l, s.proxyFrom, s.cfg.MaxSessions, s.log)
		}
		go func() {
			if ln.implicit {
				errs <- s.core.ServeTLS(l)
			} else {
				errs <- s.core.Serve(l)
			}
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown stops accepting, interrupts every session at its next read or
// write (a session ended this way removes nothing: only QUIT does) and
// waits for them, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	lmtp := make(chan error, 1)
	go func() { lmtp <- s.lmtpShutdown(ctx) }()
	return errors.Join(s.core.Shutdown(ctx), <-lmtp)
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
	return Stats{Sessions: s.metrics.sessionsN.Load(), Logins: s.metrics.loginsN.Load(), LoginFailures: s.metrics.failuresN.Load()}
}

// Sessions returns the number of connections being served.
func (s *Server) Sessions() int64 { return int64(s.core.Sessions()) }

// ServeConn runs one plain POP3 session on c (a connection accepted
// elsewhere, or one end of net.Pipe in tests and fuzzing) and returns when
// it ends. It closes c.
func (s *Server) ServeConn(c net.Conn) { s.core.ServeConn(c) }

// allowInsecureAuth is what pop3d tells the core about plaintext logins
// on connections that are neither TLS nor trusted: allowed exactly where
// the administrator's profile or settings say PlaintextAuth always (the
// rfc1939 profile, login_type = "plain", --set PlaintextAuth=always). The
// core refuses them otherwise, whatever the variations.
func allowInsecureAuth(v pop3gen.Variations) bool {
	return v.PlaintextAuth == pop3.PlaintextAuthAlways
}

// isProxy reports whether a is the address of one of the load balancers
// that send PROXY headers: a session from it is the proxy's own, a health
// check (a LOCAL header keeps the proxy's address).
func (s *Server) isProxy(a net.Addr) bool { return inNetworks(s.proxyFrom, a) }

// inNetworks reports whether a's IP address is in one of nets (an address
// with no IP, as net.Pipe's, is in none).
func inNetworks(nets []netip.Prefix, a net.Addr) bool {
	ip := pop3.RemoteIP(a)
	if !ip.IsValid() {
		return false
	}
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// watchAccounts ends the sessions of accounts removed from the
// passwd-file, within a second of the change, until stop is closed.
// (Accounts of another Authenticator are looked at by Reload.)
func (s *Server) watchAccounts(stop <-chan struct{}) {
	if s.passwd == nil {
		return
	}
	last, _ := s.passwd.Generation()
	t := time.NewTicker(account.ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		gen, err := s.passwd.Generation()
		if err != nil || gen == last {
			continue // unreadable: logins are refused, sessions go on
		}
		last = gen
		s.endRemovedSessions("the passwd-file changed")
	}
}

// endRemovedSessions ends, removing nothing, the sessions whose user no
// longer has an account, and logs why.
func (s *Server) endRemovedSessions(why string) {
	gone := map[string]bool{}
	for _, c := range s.core.Conns() {
		user := c.User()
		if user == "" {
			continue
		}
		removed, seen := gone[user]
		if !seen {
			_, ok, err := s.users.Lookup(user)
			removed = err == nil && !ok
			gone[user] = removed
			if removed {
				s.log.Warn("account removed: ending its sessions, nothing removed from its maildrop", "user", user, "why", why)
			}
		}
		if removed {
			c.Kick()
		}
	}
}
