package server

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
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
	errNoMsg   = pop3gen.NewError("", "no such message")
	errDeleted = pop3gen.NewError("", "message is marked deleted")
	errGone    = pop3gen.NewError("", "message was removed by another session since login")
	errNoTLS   = pop3gen.NewError("", "TLS is not configured on this server")
	errLang    = pop3gen.NewError("", "language not supported (this server offers en)")
	errBadName = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name")
	errUpdate  = pop3gen.NewError(pop3gen.CodeSysTemp, "some messages marked deleted could not be removed")
	errRead    = pop3gen.NewError(pop3gen.CodeSysTemp, "message cannot be read now")
	errTooSoon = pop3gen.NewError(pop3gen.CodeLoginDelay, "logged in too recently, try again later")
)

// session is the Handler of one connection: the semantics of each command
// on a Maildir and a passwd-file.
type session struct {
	srv    *Server
	conn   *pop3gen.Conn // the core's connection: its session, TLS, limits
	log    *slog.Logger
	addr   netip.Prefix // the client's address group, for penalties; invalid off TCP
	user   string       // from USER, or the logged-in user
	drop   *Drop
	marked []bool

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
	_ pop3gen.UTF8Handler = (*session)(nil)
	_ pop3gen.LangHandler = (*session)(nil)
)

// go-sasl's servers are pop3gen.SASLServers as they are: no adapter.
var _ pop3gen.SASLServer = sasl.NewPlainServer(nil)

// Close releases the maildrop when the connection ends, however it ends.
// It removes nothing: only QUIT does.
func (h *session) Close() error {
	if h.drop != nil {
		h.drop.Close()
		h.drop = nil
	}
	return nil
}

func (h *session) User(w *pop3gen.Writer, arg []byte) error {
	name := h.userName(string(arg))
	if CheckUserName(name) != nil {
		h.user = ""
		return errBadName
	}
	h.user = name
	return nil
}

func (h *session) Pass(w *pop3gen.Writer, secret []byte) error {
	return h.login(w, h.user, secret)
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
func (h *session) login(w *pop3gen.Writer, user string, password []byte) error {
	at := h.arrive()
	h.admit(&at, user)
	if user == "" || CheckUserName(user) != nil {
		return h.failed(&at, user, "bad user name", errLogin)
	}
	ok, err := h.verify(user, password)
	switch {
	case err != nil:
		return h.failed(&at, user, "verification queue full", errAuthQueue)
	case !ok:
		return h.failed(&at, user, "wrong password or unknown user", errLogin)
	}
	h.succeeded(&at)
	return h.open(w, user)
}

// open opens the user's maildrop as the profile says: an exclusive lock
// (rfc1939) or a snapshot (Exchange).
func (h *session) open(w *pop3gen.Writer, user string) error {
	if !h.srv.loginAllowed(user) {
		h.log.Info("login too soon", "user", user)
		return errTooSoon
	}
	// The login succeeded: count it against MaxSessionsPerUser before
	// the maildrop is read, and give the count back if it cannot be.
	if e := h.conn.Login(user); e != nil {
		h.log.Info("login refused by a limit", "user", user, "why", e.Text)
		return e
	}
	d, err := h.srv.mail.Open(user, DropOptions{
		Exclusive: h.conn.Session().V.MaildropAccess == pop3gen.MaildropAccessLock,
		Log:       h.log.With("user", user),
	})
	if err != nil {
		h.conn.Logout()
	}
	switch {
	case errors.Is(err, ErrInUse):
		h.log.Info("maildrop in use", "user", user)
		return errInUse
	case errors.Is(err, ErrBusy):
		h.log.Warn("maildrop busy", "user", user, "err", err)
		return errTemp
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, ErrNotMaildir):
		// RFC 3206 §4: trying again will not help.
		h.log.Error("open maildrop", "user", user, "err", err)
		return errPerm
	case err != nil:
		h.log.Error("open maildrop", "user", user, "err", err)
		return errTemp
	}
	h.user, h.drop, h.marked = user, d, make([]bool, d.Len())
	h.log = h.log.With("user", user)
	h.log.Info("login", "messages", d.Len())
	h.srv.metrics.logins.Add(1)
	n, size := h.totals()
	w.OK("maildrop has " + strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	return nil
}

// size is the size STAT and LIST report: exact where ExactSizes is on
// (MS-STANXPOP3 §2.1.4, §2.1.5), the storage size otherwise.
func (h *session) size(i int) int64 {
	if h.conn.Session().V.ExactSizes {
		return h.drop.Exact(i)
	}
	return h.drop.Storage(i)
}

// totals counts the messages not marked deleted and their sizes. The sum
// saturates rather than wrap: sizes come from file names a local user
// writes, and STAT must never report a negative maildrop.
func (h *session) totals() (int, int64) {
	n, size := 0, int64(0)
	for i := range h.drop.Len() {
		if !h.marked[i] {
			n++
			if s := h.size(i); size > math.MaxInt64-s {
				size = math.MaxInt64
			} else {
				size += s
			}
		}
	}
	return n, size
}

func (h *session) APOP(w *pop3gen.Writer, name, digest []byte) error {
	user := h.userName(string(name))
	at := h.arrive()
	h.admit(&at, user)
	if at.refused {
		return h.failed(&at, user, "APOP", errAPOP)
	}
	a, ok, err := h.srv.passwd.Lookup(user)
	if err != nil {
		at.passwdDown = true
		return h.failed(&at, user, "APOP", errAPOP)
	}
	var secret string
	if ok {
		secret, ok = a.PlainSecret()
	}
	sum := md5.Sum([]byte(h.conn.Timestamp() + secret))
	want := hex.EncodeToString(sum[:])
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(string(digest)))) != 1 {
		return h.failed(&at, user, "APOP", errAPOP)
	}
	h.succeeded(&at)
	return h.open(w, user)
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
func (h *session) Authenticated(w *pop3gen.Writer) error {
	return h.open(w, h.saslUser)
}

func (h *session) STLS(w *pop3gen.Writer) error {
	if h.srv.tls == nil {
		return errNoTLS
	}
	w.OK("Begin TLS negotiation now")
	return nil
}

// Capa announces what the session knows (USER, SASL, STLS before login,
// as the state, the variations and the connection allow) and what only
// pop3d knows.
func (h *session) Capa(w *pop3gen.Writer) error {
	s := h.conn.Session()
	info := s.CapaInfo()
	info.Implementation = h.srv.cfg.Implementation
	info.Expire = h.srv.cfg.Expire
	info.LoginDelay = int(time.Duration(h.srv.cfg.LoginDelay) / time.Second)
	pop3gen.WriteCapa(w, &s.V, &info)
	return nil
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

// Quit ends a session that never logged in: nothing to remove.
func (h *session) Quit(w *pop3gen.Writer) error {
	w.OK("pop3kit signing off")
	return nil
}

// Update is QUIT from TRANSACTION: it removes the marked messages (RFC
// 1939 §6), one by one, never an unmarked one (MS-STANXPOP3 V0006).
func (h *session) Update(w *pop3gen.Writer) error {
	marked := 0
	for _, m := range h.marked {
		if m {
			marked++
		}
	}
	failed, err := h.drop.Remove(h.marked)
	h.log.Info("update", "removed", marked-failed, "failed", failed)
	if err != nil {
		h.log.Error("update", "err", err)
		return errUpdate
	}
	w.OK("pop3kit signing off (" + strconv.Itoa(marked) + " messages removed)")
	return nil
}

func (h *session) Stat(w *pop3gen.Writer) error {
	n, size := h.totals()
	w.Stat(n, size)
	return nil
}

// message returns message n (from 1) unless it does not exist or is
// marked deleted (RFC 1939 §5).
func (h *session) message(n uint32) (int, error) {
	if n == 0 || int(n) > h.drop.Len() {
		return 0, errNoMsg
	}
	if h.marked[n-1] {
		return 0, errDeleted
	}
	return int(n - 1), nil
}

func (h *session) List(w *pop3gen.Writer, msg uint32) error {
	if msg != 0 {
		i, err := h.message(msg)
		if err != nil {
			return err
		}
		w.ScanListing(false, int(msg), h.size(i))
		return nil
	}
	n, size := h.totals()
	w.Begin(strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	for i := range h.drop.Len() {
		if !h.marked[i] {
			w.ScanListing(true, i+1, h.size(i))
		}
	}
	w.End()
	return nil
}

// send opens message msg and streams it after "+OK": octets gives the
// size the status line states, copy writes the body.
func (h *session) send(w *pop3gen.Writer, msg uint32, octets func(i int, f *MessageFile) (int64, error), copy func(*pop3gen.DotWriter, *MessageFile) error) error {
	i, err := h.message(msg)
	if err != nil {
		return err
	}
	f, err := h.drop.Open(i)
	switch {
	case errors.Is(err, ErrGone):
		return errGone
	case err != nil:
		h.log.Error("open message", "uid", h.drop.UID(i), "err", err)
		return errRead
	}
	defer f.Close()
	n, err := octets(i, f)
	if err != nil {
		h.log.Error("read message", "uid", h.drop.UID(i), "err", err)
		return errRead
	}
	w.Begin(strconv.FormatInt(n, 10) + " octets")
	d := w.Message()
	if err := copy(d, f); err != nil {
		// The status line is out: the core closes the connection rather
		// than write -ERR into the body.
		h.log.Error("message read or sent only in part", "uid", h.drop.UID(i), "err", err)
		return err
	}
	return d.Close()
}

func (h *session) Retr(w *pop3gen.Writer, msg uint32) error {
	return h.send(w, msg,
		func(i int, _ *MessageFile) (int64, error) { return h.drop.Exact(i), nil },
		func(d *pop3gen.DotWriter, f *MessageFile) error { return pop3gen.CopyMessage(d, f) })
}

// Top sends the header, the blank line and the first lines body lines. Its
// +OK line states the octets of what it sends (topOctets), measured before
// the status line goes out, not the whole message's size.
func (h *session) Top(w *pop3gen.Writer, msg, lines uint32) error {
	return h.send(w, msg,
		func(_ int, f *MessageFile) (int64, error) { return topOctets(f, lines) },
		func(d *pop3gen.DotWriter, f *MessageFile) error { return pop3gen.CopyTop(d, f, lines) })
}

func (h *session) Dele(w *pop3gen.Writer, msg uint32) error {
	i, err := h.message(msg)
	if err != nil {
		return err
	}
	h.marked[i] = true
	w.OK("message " + strconv.Itoa(int(msg)) + " deleted")
	return nil
}

func (h *session) Noop(w *pop3gen.Writer) error { return nil }

func (h *session) Rset(w *pop3gen.Writer) error {
	clear(h.marked)
	n, size := h.totals()
	w.OK("maildrop has " + strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	return nil
}

// uid returns a message's unique-id as the UIDLFormat variation says.
func (h *session) uid(i int) string {
	if h.conn.Session().V.UIDLFormat == pop3gen.UIDLFormatDovecot {
		// Dovecot's pop3_uidl_format %08Xu%08Xv, which Dovecot writes in
		// lower case: byte for byte, so clients moving either way keep ids.
		return fmt.Sprintf("%08x%08x", h.drop.UID(i), h.drop.Validity)
	}
	return strconv.FormatUint(uint64(h.drop.UID(i)), 10)
}

func (h *session) UIDL(w *pop3gen.Writer, msg uint32) error {
	if msg != 0 {
		i, err := h.message(msg)
		if err != nil {
			return err
		}
		return w.UniqueID(false, int(msg), h.uid(i))
	}
	w.Begin("unique-id listing follows")
	for i := range h.drop.Len() {
		if !h.marked[i] {
			if err := w.UniqueID(true, i+1, h.uid(i)); err != nil {
				return err
			}
		}
	}
	w.End()
	return nil
}
