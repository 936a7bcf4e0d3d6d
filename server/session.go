package server

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// Replies the session sends. None tells whether a user exists.
var (
	errLogin   = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name or password")
	errAPOP    = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name or digest")
	errInUse   = pop3gen.NewError(pop3gen.CodeInUse, "maildrop is locked by another session, try again later")
	errTemp    = pop3gen.NewError(pop3gen.CodeSysTemp, "maildrop is not available now, try again later")
	errPerm    = pop3gen.NewError(pop3gen.CodeSysPerm, "maildrop cannot be opened; please tell the administrator")
	errGone    = pop3gen.NewError("", "message was removed by another session since login")
	errLang    = pop3gen.NewError("", "language not supported (this server offers en)")
	errBadName = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name")
	errUpdate  = pop3gen.NewError(pop3gen.CodeSysTemp, "some messages marked deleted could not be removed")
	errRead    = pop3gen.NewError(pop3gen.CodeSysTemp, "message cannot be read now")
	errTooSoon = pop3gen.NewError(pop3gen.CodeLoginDelay, "logged in too recently, try again later")
)

// session is the Handler of one connection: the semantics of each command
// on a Maildir and a passwd-file.
type session struct {
	srv  *Server
	conn *pop3gen.Conn // the core's connection: its session, TLS, limits
	log  *slog.Logger
	addr netip.Prefix // the client's address group, for penalties; invalid off TCP
	user string       // the logged-in user

	// failures counts the failed logins of the connection; at
	// MaxAuthFailures the reply is the last one it gets.
	failures int
	// at is the login attempt being checked, from admit to its answer
	// (authflow.go): verify reads whether it was refused and marks it
	// when the passwd-file cannot be read.
	at *attempt

	// saslUser and saslErr carry the outcome of the SASL callback.
	saslUser string
	saslErr  error
	saslAt   attempt // the attempt of the response being checked
}

var (
	_ pop3gen.Handler     = (*session)(nil)
	_ pop3gen.APOPHandler = (*session)(nil)
	_ pop3gen.AuthHandler = (*session)(nil)
	_ pop3gen.UTF8Handler = (*session)(nil)
	_ pop3gen.LangHandler = (*session)(nil)
	_ pop3gen.CapaHandler = (*session)(nil)
	_ pop3gen.Maildrop    = (*maildrop)(nil)
	_ pop3gen.ExactSizer  = (*maildrop)(nil)
)

// go-sasl's servers are pop3gen.SASLServers as they are: no adapter.
var _ pop3gen.SASLServer = sasl.NewPlainServer(nil)

// User accepts a well-formed name; whether it names a user is PASS's to
// say, after the same delay either way.
func (h *session) User(w *pop3gen.Writer, arg []byte) error {
	if CheckUserName(h.userName(string(arg))) != nil {
		return errBadName
	}
	return nil
}

func (h *session) Pass(user, secret []byte) (pop3gen.Maildrop, error) {
	return h.login(h.userName(string(user)), secret)
}

// failed answers a failed login attempt with reply. It waits until the
// attempt's turn (its arrival, or the later time its penalties booked for
// the check) plus FailDelay, in this session's goroutine, so other
// sessions go on; the reply's time then depends on neither the user's
// existence nor their hash, as long as FailDelay exceeds the check. An
// attempt refused a turn, or met by an unreadable passwd-file, was not
// checked: it is answered FailDelay after its arrival and does not count
// toward the penalties (the latter is -ERR [SYS/TEMP] whatever the
// mechanism's reply would have been). Every failure counts toward
// MaxAuthFailures on the connection, whose last reply closes it.
func (h *session) failed(at *attempt, user, why string, reply *pop3gen.Error) error {
	h.at = nil
	switch {
	case at.passwdDown:
		reply, why = errPasswdDown, "the passwd-file cannot be read"
	case at.refused:
		why = "not checked: its penalty turn would be more than " + h.srv.maxPenaltyWait().String() + " away"
	}
	h.log.Info("login failed", "user", user, "why", why)
	h.srv.metrics.loginFailures.Add(1)
	delay := time.Duration(h.srv.cfg.FailDelay)
	if at.refused || at.passwdDown {
		h.srv.sleepUntil(at.start.Add(delay))
	} else {
		h.srv.sleepUntil(later(at.start, at.turn).Add(delay))
		h.srv.addrPenalty.fail(at.addr)
		h.srv.userPenalty.fail(at.user)
	}
	if h.failures++; h.failures >= h.srv.cfg.MaxAuthFailures {
		h.log.Info("too many failed logins: closing", "failures", h.failures)
		h.conn.CloseAfterReply()
		if reply == errAuthQueue || reply == errPasswdDown {
			return reply // nothing was checked: "invalid" would be untrue
		}
		return errAuthClosed
	}
	return reply
}

// login checks the password and opens the maildrop.
func (h *session) login(user string, password []byte) (pop3gen.Maildrop, error) {
	at := h.arrive()
	h.admit(&at, user)
	if user == "" || CheckUserName(user) != nil {
		return nil, h.failed(&at, user, "bad user name", errLogin)
	}
	ok, err := h.verify(user, password)
	switch {
	case err != nil:
		return nil, h.failed(&at, user, "verification queue full", errAuthQueue)
	case !ok:
		return nil, h.failed(&at, user, "wrong password or unknown user", errLogin)
	}
	h.succeeded(&at)
	return h.open(user)
}

// open opens the user's maildrop as the profile says: an exclusive lock
// (rfc1939) or a snapshot (Exchange).
func (h *session) open(user string) (pop3gen.Maildrop, error) {
	if !h.srv.loginAllowed(user) {
		h.log.Info("login too soon", "user", user)
		return nil, errTooSoon
	}
	// The login succeeded: count it against MaxSessionsPerUser before
	// the maildrop is read, and give the count back if it cannot be.
	if e := h.conn.Login(user); e != nil {
		h.log.Info("login refused by a limit", "user", user, "why", e.Text)
		return nil, e
	}
	d, err := h.srv.mail.Open(user, DropOptions{
		Exclusive:   h.conn.Variations().MaildropAccess == pop3gen.MaildropAccessLock,
		DovecotUIDs: h.conn.Variations().UIDLFormat == pop3gen.UIDLFormatDovecot,
		Log:         h.log.With("user", user),
	})
	if err != nil {
		h.conn.Logout()
	}
	switch {
	case errors.Is(err, ErrInUse):
		h.log.Info("maildrop in use", "user", user)
		return nil, errInUse
	case errors.Is(err, ErrBusy):
		h.log.Warn("maildrop busy", "user", user, "err", err)
		return nil, errTemp
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, ErrNotMaildir):
		// RFC 3206 §4: trying again will not help.
		h.log.Error("open maildrop", "user", user, "err", err)
		return nil, errPerm
	case err != nil:
		h.log.Error("open maildrop", "user", user, "err", err)
		return nil, errTemp
	}
	h.user = user
	h.log = h.log.With("user", user)
	h.log.Info("login", "messages", d.Len())
	h.srv.metrics.logins.Add(1)
	v := h.conn.Variations()
	return &maildrop{d: d, log: h.log, exact: v.ExactSizes, dovecot: v.UIDLFormat == pop3gen.UIDLFormatDovecot}, nil
}

func (h *session) APOP(name, digest []byte) (pop3gen.Maildrop, error) {
	user := h.userName(string(name))
	at := h.arrive()
	h.admit(&at, user)
	if at.refused {
		return nil, h.failed(&at, user, "APOP", errAPOP)
	}
	a, ok, err := h.srv.passwd.Lookup(user)
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

// mechanisms are the SASL mechanisms offered where plaintext is allowed.
var mechanisms = []string{"PLAIN", "LOGIN"}

// Mechanisms are the SASL mechanisms offered now: PLAIN and LOGIN, both
// plaintext-equivalent, where plaintext logins are allowed and TLS is not
// required first; none otherwise. CAPA's SASL line and a bare AUTH list
// the same, and the core refuses any other.
func (h *session) Mechanisms() []string {
	if !h.conn.Session().PlaintextAllowed() || h.tlsRequired() {
		return nil
	}
	return mechanisms
}

// Auth starts a SASL exchange. The core runs it (base64, the initial
// response, continuations, "*" cancel, line limits); pop3d supplies the
// mechanism servers: go-sasl's PLAIN and its own LOGIN, both ending in
// the same check of user name and password.
func (h *session) Auth(mech string) (pop3gen.SASLServer, error) {
	h.saslUser, h.saslErr = "", nil
	// check is where both mechanisms end: the user name and password.
	check := func(username, password string) error {
		username = h.userName(username)
		h.saslUser = username
		h.admit(&h.saslAt, username)
		if CheckUserName(username) != nil {
			h.saslErr = errLogin
			return h.saslErr
		}
		ok, err := h.verify(username, []byte(password))
		switch {
		case err != nil:
			h.saslErr = errAuthQueue
		case !ok:
			h.saslErr = errLogin
		}
		return h.saslErr
	}
	var inner sasl.Server
	if mech == "LOGIN" {
		inner = &loginServer{auth: check}
	} else {
		inner = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				h.saslErr = errLogin // no proxy authorization
				return h.saslErr
			}
			return check(username, password)
		})
	}
	return timedSASL{h: h, inner: inner}, nil
}

// timedSASL runs a mechanism's server with pop3d's failed-login rules: a
// failure is answered, like USER/PASS's, at the response's arrival plus
// the delay and penalties, and counts toward the connection's cap.
type timedSASL struct {
	h     *session
	inner sasl.Server
}

func (t timedSASL) Next(response []byte) ([]byte, bool, error) {
	h := t.h
	// The attempt is timed from this response, the one that may carry
	// the credentials.
	h.saslAt = h.arrive()
	challenge, done, err := t.inner.Next(response)
	if err != nil || h.saslErr != nil {
		reply, why := errLogin, "SASL"
		if h.saslErr == errAuthQueue {
			reply, why = errAuthQueue, "verification queue full"
		}
		return nil, false, h.failed(&h.saslAt, h.saslUser, why, reply)
	}
	if done {
		h.succeeded(&h.saslAt)
	}
	return challenge, done, nil
}

// Authenticated opens the maildrop of the user the exchange named.
func (h *session) Authenticated() (pop3gen.Maildrop, error) {
	return h.open(h.saslUser)
}

// Capa adds to what the core announces (USER, SASL, STLS before login,
// as the state, the variations and the connection allow) what only pop3d
// knows.
func (h *session) Capa(info *pop3gen.CapaInfo) {
	info.Implementation = h.srv.cfg.Implementation
	info.Expire = h.srv.cfg.Expire
	info.LoginDelay = int(time.Duration(h.srv.cfg.LoginDelay) / time.Second)
}

func (h *session) UTF8(w *pop3gen.Writer) error {
	w.OK("UTF8 enabled")
	return nil
}

func (h *session) Lang(w *pop3gen.Writer, arg []byte) error {
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

// maildrop is a Drop as the core serves it: sizes and unique-ids as the
// session's variations say, messages opened as files that can be read
// twice (TOP's octets are measured first), errors mapped to replies and
// logged.
type maildrop struct {
	d       *Drop
	log     *slog.Logger
	exact   bool // ExactSizes: STAT and LIST state exact sizes (MS-STANXPOP3 §2.1.4, §2.1.5)
	dovecot bool // UIDLFormat dovecot
}

func (m *maildrop) Len() int { return m.d.Len() }

// Size is the size STAT and LIST report: exact where ExactSizes is on,
// the storage size otherwise.
func (m *maildrop) Size(i int) int64 {
	if m.exact {
		return m.d.Exact(i)
	}
	return m.d.Storage(i)
}

// ExactSize is what RETR's +OK states, whatever ExactSizes says.
func (m *maildrop) ExactSize(i int) int64 { return m.d.Exact(i) }

// UniqueID returns a message's unique-id as the UIDLFormat variation says.
func (m *maildrop) UniqueID(i int) string {
	if m.dovecot {
		// Dovecot's pop3_uidl_format %08Xu%08Xv, which Dovecot writes in
		// lower case: byte for byte, so clients moving either way keep ids.
		return fmt.Sprintf("%08x%08x", m.d.UID(i), m.d.Validity)
	}
	return strconv.FormatUint(uint64(m.d.UID(i)), 10)
}

// Open opens message i. A message another session removed since login
// answers -ERR, not [SYS/TEMP] (MS-STANXPOP3's snapshot semantics).
func (m *maildrop) Open(i int) (io.ReadCloser, error) {
	f, err := m.d.Open(i)
	switch {
	case errors.Is(err, ErrGone):
		return nil, errGone
	case err != nil:
		m.log.Error("open message", "uid", m.d.UID(i), "err", err)
		return nil, errRead
	}
	return loggedFile{f, m, i}, nil
}

// loggedFile logs a read that fails: the reply has begun, the core closes
// the connection, and the log says why.
type loggedFile struct {
	*MessageFile
	m *maildrop
	i int
}

func (f loggedFile) Read(p []byte) (int, error) {
	n, err := f.MessageFile.Read(p)
	if err != nil && err != io.EOF {
		f.m.log.Error("message read only in part", "uid", f.m.d.UID(f.i), "err", err)
	}
	return n, err
}

// Remove is the UPDATE state: the marked messages are removed one by one,
// never an unmarked one (RFC 1939 §6, MS-STANXPOP3 V0006).
func (m *maildrop) Remove(indexes []int) error {
	marked := make([]bool, m.d.Len())
	for _, i := range indexes {
		marked[i] = true
	}
	failed, err := m.d.Remove(marked)
	m.log.Info("update", "removed", len(indexes)-failed, "failed", failed)
	if err != nil {
		m.log.Error("update", "err", err)
		return errUpdate
	}
	return nil
}

// Close releases the maildrop (its lock, where it holds one).
func (m *maildrop) Close() error {
	m.d.Close()
	return nil
}
