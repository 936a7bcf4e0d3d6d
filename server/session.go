package server

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/store"
)

// Replies the session sends. None tells whether a user exists.
var (
	errLogin   = pop3.NewError(pop3.CodeAuth, "invalid user name or password")
	errAPOP    = pop3.NewError(pop3.CodeAuth, "invalid user name or digest")
	errInUse   = pop3.NewError(pop3.CodeInUse, "maildrop is locked by another session, try again later")
	errTemp    = pop3.NewError(pop3.CodeSysTemp, "maildrop is not available now, try again later")
	errPerm    = pop3.NewError(pop3.CodeSysPerm, "maildrop cannot be opened; please tell the administrator")
	errGone    = pop3.NewError("", "message was removed by another session since login")
	errLang    = pop3.NewError("", "language not supported (this server offers en)")
	errBadName = pop3.NewError(pop3.CodeAuth, "invalid user name")
	errUpdate  = pop3.NewError(pop3.CodeSysTemp, "some messages marked deleted could not be removed")
	errRead    = pop3.NewError(pop3.CodeSysTemp, "message cannot be read now")
	errTooSoon = pop3.NewError(pop3.CodeLoginDelay, "logged in too recently, try again later")
)

// session is the Handler of one connection: the semantics of each command
// on a Maildir and a passwd-file.
type session struct {
	srv  *Server
	conn *pop3.Conn // the core's connection: its session, TLS, limits
	log  *slog.Logger
	user string // the logged-in user
	// mech is how the user logged in (USER, APOP, a SASL mechanism), for
	// the logs and metrics; implicitTLS, that the connection began in TLS.
	mech        string
	implicitTLS bool
	// tlsc is the TLS configuration in force when the connection began
	// (SCRAM-PLUS binds to its certificate).
	tlsc *tls.Config
	// release ends the session's record in a SharedLimits store.
	release func()

	// tracing is set once the protocol log is on, at traceLevel.
	tracing    bool
	traceLevel slog.Level
	// at is the login attempt being checked, from admit to its answer
	// (authflow.go): verify reads whether it was refused and marks it
	// when the passwd-file cannot be read.
	at *attempt

	// saslUser is the user a SASL exchange proved, for Authenticated.
	saslUser string
	saslAt   attempt // the attempt of the response being checked
}

var (
	_ pop3gen.Handler          = (*session)(nil)
	_ pop3gen.APOPHandler      = (*session)(nil)
	_ pop3.AuthHandler         = (*session)(nil)
	_ pop3.PlaintextMechanisms = (*session)(nil)
	_ pop3gen.UTF8Handler      = (*session)(nil)
	_ pop3gen.LangHandler      = (*session)(nil)
	_ pop3.CapaHandler         = (*session)(nil)
	_ pop3.Maildrop            = (*maildrop)(nil)
	_ pop3.ExactSizer          = (*maildrop)(nil)
	_ pop3.Owner               = (*maildrop)(nil)
)

// User accepts a well-formed name; whether it names a user is PASS's to
// say, after the same delay either way.
func (h *session) User(w *pop3.Writer, arg []byte) error {
	if account.CheckUserName(h.UserName(string(arg))) != nil {
		return errBadName
	}
	return nil
}

func (h *session) Pass(user, secret []byte) (pop3.Maildrop, error) {
	h.mech = "USER"
	return h.login(h.UserName(string(user)), secret)
}

// traceOn turns the protocol log on for this session, at level: each
// line in and each reply's status line out, secrets already replaced by
// the core. The protocol log of chosen users and networks is at info;
// --log-level debug traces every session at debug.
func (h *session) traceOn(level slog.Level) {
	if h.tracing && level < h.traceLevel {
		return // already on, at a level that shows more
	}
	h.tracing, h.traceLevel = true, level
	l := level
	h.conn.SetTrace(func(fromClient bool, line []byte) {
		dir := "out"
		if fromClient {
			dir = "in"
		}
		h.log.Log(context.Background(), l, "protocol", "dir", dir, "line", string(line))
	})
}

// endShared ends the session's record in a SharedLimits store, once.
func (h *session) endShared() {
	if h.release != nil {
		h.release()
		h.release = nil
	}
}

// errSharedPerUser refuses a login beyond the per-user limit of all the
// front ends on a shared store.
var errSharedPerUser = pop3.NewError(pop3.CodeInUse, "too many sessions for this user on this site, try again later")

// mechanism is how the session logged in or is trying to: USER, APOP or
// the SASL mechanism.
func (h *session) mechanism() string {
	if h.mech == "" {
		return "SASL"
	}
	return h.mech
}

// Close writes the session's logout line, Dovecot's fields by Dovecot's
// names (top=, retr=, del=, size=, in=, out=), when the connection ended,
// however it ended, and counts the session in the metrics.
func (h *session) Close() error {
	h.endShared()
	c := h.conn
	in, out := c.Octets()
	tlsMode := "none"
	if t := c.TLS(); t != nil {
		tlsMode = "stls"
		if h.implicitTLS {
			tlsMode = "implicit"
		}
	}
	h.srv.sessionEnded(tlsMode, in, out)
	st := c.Session().Stats()
	attrs := []any{"local", c.LocalAddr().String(), "tls", tlsMode, "duration", time.Since(c.Start()).Round(time.Millisecond).String(),
		"reason", c.EndReason(), "in", in, "out", out}
	if h.user != "" {
		attrs = append(attrs, "mechanism", h.mechanism(),
			"top", fmt.Sprintf("%d/%d", st.Top, st.TopOctets), "retr", fmt.Sprintf("%d/%d", st.Retr, st.RetrOctets),
			"del", fmt.Sprintf("%d/%d", st.Deleted, st.Messages), "size", st.Size)
	}
	level := slog.LevelInfo
	if in == 0 && h.srv.isProxy(c.RemoteAddr()) {
		// A load balancer's health check (a PROXY LOCAL header, or
		// the proxy's own address): it sends nothing and goes, every
		// few seconds; the log keeps it for debugging only.
		level = slog.LevelDebug
	}
	h.log.Log(context.Background(), level, "logout", attrs...)
	return nil
}

// failed answers a failed login attempt with reply, in this session's
// goroutine, so other sessions go on. A wrong password (or unknown user)
// is answered at the attempt's turn plus failureWait, and then counts
// against the address and the user name, so that the reply's
// time depends on neither the user's existence nor their hash, as long
// as FailDelay exceeds the check. An attempt that was not checked (the
// passwd-file could not be read, or no verification slot freed up in
// time) is answered -ERR [SYS/TEMP], never as a wrong password, FailDelay
// after its arrival, is logged at warning, and counts against neither.
// Every failure counts toward MaxAuthFailures on the connection, whose
// last reply closes it.
func (h *session) failed(at *attempt, user, why string, reply *pop3.Error) error {
	h.at = nil
	if at.passwdDown {
		reply, why = errPasswdDown, "the passwd-file cannot be read"
	}
	h.srv.metrics.failuresN.Add(1)
	h.srv.metrics.failures.WithLabelValues(h.mechanism(), failureReason(at, reply)).Inc()
	if unchecked(reply) {
		h.log.Warn("login not checked", "user", user, "why", why, "reply", reply.Text)
		h.sleepUntil(at.start.Add(time.Duration(h.srv.cfg.FailDelay)))
	} else {
		h.log.Info("login failed", "user", user, "why", why)
		h.sleepUntil(at.start.Add(h.srv.failureWait(h.srv.userPenalty.Fails(at.user))))
		h.srv.userPenalty.Fail(at.user)
	}
	return reply
}

// unchecked reports whether a failed login's reply says its credentials
// were never checked: [SYS/TEMP], not a verdict.
func unchecked(reply *pop3.Error) bool {
	return reply == pop3.ErrChecksBusy || reply == errPasswdDown
}

// login checks the password and opens the maildrop.
func (h *session) login(user string, password []byte) (pop3.Maildrop, error) {
	at := h.arrive()
	h.admit(&at, user)
	if user == "" || account.CheckUserName(user) != nil {
		return nil, h.failed(&at, user, "bad user name", errLogin)
	}
	ok, err := h.verify(user, password)
	switch {
	case err != nil:
		return nil, h.failed(&at, user, err.Text, err)
	case !ok:
		return nil, h.failed(&at, user, "wrong password or unknown user", errLogin)
	}
	h.succeeded(&at)
	return h.open(user)
}

// open opens the user's maildrop as the profile says: an exclusive lock
// (rfc1939) or a snapshot (Exchange).
func (h *session) open(user string) (pop3.Maildrop, error) {
	ctx := h.conn.Context()
	shared, _ := h.srv.store.(store.SharedLimits)
	allowed := true
	if d := time.Duration(h.srv.cfg.LoginDelay); shared != nil && d > 0 {
		// The store's record: the last login on any front end.
		ok, err := shared.LoginAllowed(ctx, user, d)
		if err != nil {
			h.log.Warn("login delay: the store cannot tell; this front end's record decides", "err", err)
			ok = h.srv.loginAllowed(user)
		}
		allowed = ok
	} else {
		allowed = h.srv.loginAllowed(user)
	}
	if !allowed {
		h.log.Info("login too soon", "user", user)
		return nil, errTooSoon
	}
	// The login succeeded: count it against MaxSessionsPerUser before
	// the maildrop is read, and give the count back if it cannot be.
	if e := h.conn.Login(user); e != nil {
		h.log.Info("login refused by a limit", "user", user, "why", e.Text)
		return nil, e
	}
	if shared != nil {
		// Counted across every front end on the store too.
		rel, err := shared.BeginSession(ctx, user, h.srv.cfg.MaxSessionsPerUser)
		if err != nil {
			h.conn.Logout()
			if errors.Is(err, store.ErrTooManySessions) {
				h.log.Info("login refused by the per-user limit of all front ends", "user", user)
				h.srv.onLimit(errSharedPerUser)
				return nil, errSharedPerUser
			}
			h.log.Error("session limit: the store cannot count", "user", user, "err", err)
			return nil, errTemp
		}
		h.release = rel
	}
	v := h.conn.Variations()
	d, err := h.srv.store.Open(ctx, user, store.OpenOptions{
		Exclusive:   v.MaildropAccess == pop3.MaildropAccessLock,
		ExactSizes:  v.ExactSizes,
		DovecotUIDs: v.UIDLFormat == pop3.UIDLFormatDovecot,
		Log:         h.log.With("user", user),
	})
	if err != nil {
		h.conn.Logout()
		h.endShared()
	}
	switch {
	case errors.Is(err, store.ErrInUse):
		h.log.Info("maildrop in use", "user", user)
		return nil, errInUse
	case errors.Is(err, store.ErrBusy):
		h.log.Warn("maildrop busy", "user", user, "err", err)
		return nil, errTemp
	case errors.Is(err, store.ErrNoMaildrop):
		// RFC 3206 §4: trying again will not help.
		h.log.Error("open maildrop", "user", user, "err", err)
		return nil, errPerm
	case err != nil:
		h.log.Error("open maildrop", "user", user, "err", err)
		h.srv.metrics.storeErrors.WithLabelValues("open").Inc()
		return nil, errTemp
	}
	h.user = user
	h.log = h.log.With("user", user)
	if slices.Contains(h.srv.cfg.ProtocolLogUsers, user) {
		h.traceOn(slog.LevelInfo)
	}
	h.log.Info("login", "messages", d.Len(), "mechanism", h.mechanism())
	h.srv.metrics.loginsN.Add(1)
	h.srv.metrics.logins.WithLabelValues(h.mechanism()).Inc()
	md := &maildrop{d: d, log: h.log, m: h.srv.metrics, owner: user}
	if _, ok := d.(interface{ Idle() }); ok {
		return idleMaildrop{md}, nil
	}
	return md, nil
}

func (h *session) APOP(name, digest []byte) (pop3.Maildrop, error) {
	h.mech = "APOP"
	user := h.UserName(string(name))
	at := h.arrive()
	h.admit(&at, user)
	a, ok, err := h.srv.users.Lookup(user)
	if err != nil {
		at.passwdDown = true
		return nil, h.failed(&at, user, "APOP", errAPOP)
	}
	var secret string
	if ok {
		secret, ok = a.PlainSecret()
	}
	sum := md5.Sum([]byte(h.conn.Timestamp() + secret))
	want := hex.EncodeToString(sum[:])
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(string(digest)))) != 1 {
		return nil, h.failed(&at, user, "APOP", errAPOP)
	}
	h.succeeded(&at)
	return h.open(user)
}

// Capa adds to what the core announces (USER, SASL, STLS before login,
// as the state, the variations and the connection allow) what only pop3d
// knows.
func (h *session) Capa(info *pop3.CapaInfo) {
	info.Implementation = h.srv.cfg.Implementation
	info.Expire = h.srv.cfg.Expire
	info.LoginDelay = int(time.Duration(h.srv.cfg.LoginDelay) / time.Second)
}

func (h *session) UTF8(w *pop3.Writer) error {
	w.OK("UTF8 enabled")
	return nil
}

func (h *session) Lang(w *pop3.Writer, arg []byte) error {
	switch {
	case arg == nil:
		w.Begin("language listing follows")
		w.Line("en English")
		w.End()
	case string(arg) == "*" || strings.EqualFold(string(arg), "en"):
		w.OK("en English")
	default:
		return errLang
	}
	return nil
}

// maildrop is a store's Mailbox as the core serves it: sizes as the
// session's variations say, errors mapped to replies and logged.
type maildrop struct {
	d     pop3.Maildrop
	log   *slog.Logger
	m     *metrics
	owner string
}

func (m *maildrop) Len() int { return m.d.Len() }

// Owner names the maildrop's user, for the core's per-user session limit.
func (m *maildrop) Owner() string { return m.owner }

// Size is the size STAT and LIST report: exact where ExactSizes is on,
// the storage size otherwise (the store honours it).
func (m *maildrop) Size(i int) int64 { return m.d.Size(i) }

// ExactSize is what RETR's +OK states, whatever ExactSizes says.
func (m *maildrop) ExactSize(i int) int64 {
	if es, ok := m.d.(pop3.ExactSizer); ok {
		return es.ExactSize(i)
	}
	return m.d.Size(i)
}

func (m *maildrop) UniqueID(i int) string { return m.d.UniqueID(i) }

// Open opens message i. A message another session removed since login
// answers -ERR, not [SYS/TEMP] (MS-STANXPOP3's snapshot semantics).
func (m *maildrop) Open(i int) (io.ReadCloser, error) {
	r, err := m.d.Open(i)
	switch {
	case errors.Is(err, store.ErrGone):
		return nil, errGone
	case err != nil:
		m.log.Error("open message", "uid", m.d.UniqueID(i), "err", err)
		m.m.storeErrors.WithLabelValues("open_message").Inc()
		return nil, errRead
	}
	if s, ok := r.(io.ReadSeekCloser); ok {
		return loggedSeeker{loggedReader{s, m, i}, s}, nil
	}
	return loggedReader{r, m, i}, nil
}

// loggedReader logs a read that fails: the reply has begun, the core
// closes the connection, and the log says why. loggedSeeker keeps the
// message's Seek, with which the core measures TOP.
type loggedReader struct {
	io.ReadCloser
	m *maildrop
	i int
}

func (f loggedReader) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		f.m.log.Error("message read only in part", "uid", f.m.d.UniqueID(f.i), "err", err)
		f.m.m.storeErrors.WithLabelValues("read").Inc()
	}
	return n, err
}

type loggedSeeker struct {
	loggedReader
	s io.Seeker
}

func (f loggedSeeker) Seek(off int64, whence int) (int64, error) { return f.s.Seek(off, whence) }

// Remove is the UPDATE state: the marked messages are removed one by one,
// never an unmarked one (RFC 1939 §6, MS-STANXPOP3 V0006).
func (m *maildrop) Remove(indexes []int) error {
	err := m.d.Remove(indexes)
	failed := 0
	if re, ok := errors.AsType[*store.RemoveError](err); ok {
		failed = re.Failed
	} else if err != nil {
		failed = len(indexes)
	}
	m.log.Info("update", "removed", len(indexes)-failed, "failed", failed)
	m.m.removed.Add(float64(len(indexes) - failed))
	m.m.removeFailures.Add(float64(failed))
	if err != nil {
		m.m.storeErrors.WithLabelValues("remove").Inc()
		m.log.Error("update", "err", err)
		return errUpdate
	}
	return nil
}

// Close releases the maildrop (its lock, where it holds one).
func (m *maildrop) Close() error { return m.d.Close() }

// idleMaildrop is a maildrop whose store lets go of what it holds between
// commands: it passes the runtime's word that the session idles on. A
// store without Idle gets no such word, and its sessions no idle timer.
type idleMaildrop struct{ *maildrop }

func (m idleMaildrop) Idle() { m.d.(interface{ Idle() }).Idle() }
