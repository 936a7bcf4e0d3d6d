package server

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// Replies the session sends. None tells whether a user exists.
var (
	errLogin     = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name or password")
	errAPOP      = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name or digest")
	errInUse     = pop3gen.NewError(pop3gen.CodeInUse, "maildrop is locked by another session, try again later")
	errTemp      = pop3gen.NewError(pop3gen.CodeSysTemp, "maildrop is not available now, try again later")
	errPerm      = pop3gen.NewError(pop3gen.CodeSysPerm, "maildrop cannot be opened; please tell the administrator")
	errNoMsg     = pop3gen.NewError("", "no such message")
	errDeleted   = pop3gen.NewError("", "message is marked deleted")
	errGone      = pop3gen.NewError("", "message was removed by another session since login")
	errNoTLS     = pop3gen.NewError("", "TLS is not configured on this server")
	errMechanism = pop3gen.NewError("", "unsupported SASL mechanism (this server offers PLAIN and LOGIN)")
	errLang      = pop3gen.NewError("", "language not supported (this server offers en)")
	errBadName   = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name")
	errUpdate    = pop3gen.NewError(pop3gen.CodeSysTemp, "some messages marked deleted could not be removed")
	errRead      = pop3gen.NewError(pop3gen.CodeSysTemp, "message cannot be read now")
	errTooSoon   = pop3gen.NewError(pop3gen.CodeLoginDelay, "logged in too recently, try again later")
)

// session is the Handler of one connection: the semantics of each command
// on a Maildir and a passwd-file.
type session struct {
	srv    *Server
	s      *pop3gen.Session
	log    *slog.Logger
	stamp  string // the APOP timestamp of the greeting
	user   string // from USER, or the logged-in user
	drop   *Drop
	marked []bool
	broken error // a write failed in the middle of a reply: close

	sasl sasl.Server
	// saslUser and saslErr carry the outcome of the SASL callback.
	saslUser string
	saslErr  error
}

var _ pop3gen.Handler = (*session)(nil)

// close releases the maildrop. It removes nothing: only QUIT does.
func (h *session) close() {
	if h.drop != nil {
		h.drop.Close()
		h.drop = nil
	}
}

func (h *session) User(w *pop3gen.Writer, arg []byte) error {
	if CheckUserName(string(arg)) != nil {
		h.user = ""
		return errBadName
	}
	h.user = string(arg)
	return nil
}

func (h *session) Pass(w *pop3gen.Writer, secret []byte) error {
	return h.login(w, h.user, secret)
}

// failed waits out the failed-login delay. It sleeps in this session's
// goroutine, so other sessions go on.
func (h *session) failed(user, why string) {
	h.log.Info("login failed", "user", user, "why", why)
	h.srv.metrics.loginFailures.Add(1)
	if d := time.Duration(h.srv.cfg.FailDelay); d > 0 {
		time.Sleep(d)
	}
}

// login checks the password and opens the maildrop.
func (h *session) login(w *pop3gen.Writer, user string, password []byte) error {
	if user == "" || CheckUserName(user) != nil {
		h.failed(user, "bad user name")
		return errLogin
	}
	ok, err := h.srv.passwd.Authenticate(user, password)
	if err != nil {
		h.log.Error("passwd-file", "err", err)
	}
	if !ok {
		h.failed(user, "wrong password or unknown user")
		return errLogin
	}
	return h.open(w, user)
}

// open opens the user's maildrop as the profile says: an exclusive lock
// (rfc1939) or a snapshot (Exchange).
func (h *session) open(w *pop3gen.Writer, user string) error {
	if !h.srv.loginAllowed(user) {
		h.log.Info("login too soon", "user", user)
		return errTooSoon
	}
	dir := filepath.Join(h.srv.cfg.MailRoot, user)
	if rel, err := filepath.Rel(h.srv.cfg.MailRoot, dir); err != nil || strings.HasPrefix(rel, "..") || strings.ContainsRune(rel, filepath.Separator) {
		return errLogin // CheckUserName rules this out; never leave the root
	}
	d, err := OpenDrop(dir, h.s.V.MaildropAccess == pop3gen.MaildropAccessLock)
	switch {
	case errors.Is(err, ErrInUse):
		h.log.Info("maildrop in use", "user", user)
		return errInUse
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR):
		// RFC 3206 §4: trying again will not help.
		h.log.Error("open maildrop", "user", user, "err", err)
		return errPerm
	case err != nil:
		h.log.Error("open maildrop", "user", user, "err", err)
		return errTemp
	}
	h.user, h.drop, h.marked = user, d, make([]bool, len(d.Messages))
	h.log = h.log.With("user", user)
	h.log.Info("login", "messages", len(d.Messages))
	h.srv.metrics.logins.Add(1)
	n, size := h.totals()
	w.OK("maildrop has " + strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	return nil
}

// size is the size STAT and LIST report: exact where ExactSizes is on
// (MS-STANXPOP3 §2.1.4, §2.1.5), the storage size otherwise.
func (h *session) size(m *Message) int64 {
	if h.s.V.ExactSizes {
		return m.Exact
	}
	return m.Storage
}

// totals counts the messages not marked deleted and their sizes.
func (h *session) totals() (int, int64) {
	n, size := 0, int64(0)
	for i := range h.drop.Messages {
		if !h.marked[i] {
			n++
			size += h.size(&h.drop.Messages[i])
		}
	}
	return n, size
}

func (h *session) Apop(w *pop3gen.Writer, name, digest []byte) error {
	user := string(name)
	a, ok, _ := h.srv.passwd.Lookup(user)
	var secret string
	if ok {
		secret, ok = a.PlainSecret()
	}
	sum := md5.Sum([]byte(h.stamp + secret))
	want := hex.EncodeToString(sum[:])
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(string(digest)))) != 1 {
		h.failed(user, "APOP")
		return errAPOP
	}
	return h.open(w, user)
}

// mechanisms are the SASL mechanisms offered where plaintext is allowed.
var mechanisms = []string{"PLAIN", "LOGIN"}

func (h *session) Auth(w *pop3gen.Writer, mechanism, initial []byte) error {
	if mechanism == nil { // MS-POP3 §2.2.1: the list
		w.Begin("SASL mechanisms follow")
		if h.s.PlaintextAllowed() {
			for _, m := range mechanisms {
				w.Line(m)
			}
		}
		w.End()
		return nil
	}
	mech := strings.ToUpper(string(mechanism))
	if mech != "PLAIN" && mech != "LOGIN" {
		return errMechanism
	}
	if !h.s.PlaintextAllowed() {
		return pop3gen.ErrPlaintextRefused
	}
	h.saslUser, h.saslErr = "", nil
	// check is where both mechanisms end: the user name and password.
	check := func(username, password string) error {
		h.saslUser = username
		if CheckUserName(username) != nil {
			h.saslErr = errLogin
			return h.saslErr
		}
		ok, err := h.srv.passwd.Authenticate(username, []byte(password))
		if err != nil {
			h.log.Error("passwd-file", "err", err)
		}
		if !ok {
			h.saslErr = errLogin
			return h.saslErr
		}
		return nil
	}
	if mech == "LOGIN" {
		h.sasl = &loginServer{auth: check}
	} else {
		h.sasl = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				h.saslErr = errLogin // no proxy authorization
				return h.saslErr
			}
			return check(username, password)
		})
	}
	if initial == nil {
		return h.step(w, nil)
	}
	if string(initial) == "=" { // RFC 5034 §4: an empty initial response
		return h.step(w, []byte{})
	}
	return h.AuthNext(w, initial, false)
}

func (h *session) AuthNext(w *pop3gen.Writer, response []byte, cancelled bool) error {
	if cancelled {
		h.sasl = nil
		return nil
	}
	resp := make([]byte, base64.StdEncoding.DecodedLen(len(response)))
	n, err := base64.StdEncoding.Decode(resp, response)
	if err != nil {
		h.sasl = nil
		return pop3gen.ErrBadBase64
	}
	return h.step(w, resp[:n])
}

// step feeds one response to the SASL server.
func (h *session) step(w *pop3gen.Writer, resp []byte) error {
	challenge, done, err := h.sasl.Next(resp)
	if err != nil || h.saslErr != nil {
		h.sasl = nil
		h.failed(h.saslUser, "SASL PLAIN")
		return errLogin
	}
	if !done {
		w.Challenge([]byte(base64.StdEncoding.EncodeToString(challenge)))
		return nil
	}
	h.sasl = nil
	return h.open(w, h.saslUser)
}

func (h *session) Stls(w *pop3gen.Writer) error {
	if h.srv.tls == nil {
		return errNoTLS
	}
	w.OK("Begin TLS negotiation now")
	return nil
}

func (h *session) Capa(w *pop3gen.Writer, st pop3gen.State) error {
	auth := st == pop3gen.StateAuthorization
	info := pop3gen.CapaInfo{
		Plaintext:      auth && h.s.PlaintextAllowed(),
		STLS:           auth && h.srv.tls != nil && h.s.Mode()&pop3gen.ModeTLS == 0,
		Implementation: h.srv.cfg.Implementation,
		Expire:         h.srv.cfg.Expire,
		LoginDelay:     int(time.Duration(h.srv.cfg.LoginDelay) / time.Second),
	}
	if info.Plaintext {
		info.SASL = mechanisms
	}
	pop3gen.WriteCapa(w, &h.s.V, &info)
	return nil
}

func (h *session) Utf8(w *pop3gen.Writer) error {
	w.OK("UTF8 enabled")
	return nil
}

func (h *session) Lang(w *pop3gen.Writer, st pop3gen.State, arg []byte) error {
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

// Quit ends the session; in UPDATE it removes the marked messages.
func (h *session) Quit(w *pop3gen.Writer, st pop3gen.State) error {
	if st != pop3gen.StateUpdate {
		w.OK("pop3kit signing off")
		return nil
	}
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
	if n == 0 || int(n) > len(h.drop.Messages) {
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
		w.ScanListing(false, int(msg), h.size(&h.drop.Messages[i]))
		return nil
	}
	n, size := h.totals()
	w.Begin(strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	for i := range h.drop.Messages {
		if !h.marked[i] {
			w.ScanListing(true, i+1, h.size(&h.drop.Messages[i]))
		}
	}
	w.End()
	return nil
}

// send opens message msg and streams it with copy after "+OK".
func (h *session) send(w *pop3gen.Writer, msg uint32, copy func(*pop3gen.DotWriter, *os.File) error) error {
	i, err := h.message(msg)
	if err != nil {
		return err
	}
	f, err := h.drop.Open(i)
	switch {
	case errors.Is(err, ErrGone):
		return errGone
	case err != nil:
		h.log.Error("open message", "uid", h.drop.Messages[i].UID, "err", err)
		return errRead
	}
	defer f.Close()
	w.Begin(strconv.FormatInt(h.drop.Messages[i].Exact, 10) + " octets")
	d := w.Message()
	if err := copy(d, f); err != nil {
		// The status line is out: the reply cannot become -ERR. Close.
		h.broken = err
		return nil
	}
	if err := d.Close(); err != nil {
		h.broken = err
	}
	return nil
}

func (h *session) Retr(w *pop3gen.Writer, msg uint32) error {
	return h.send(w, msg, func(d *pop3gen.DotWriter, f *os.File) error { return CopyMessage(d, f) })
}

func (h *session) Top(w *pop3gen.Writer, msg, lines uint32) error {
	return h.send(w, msg, func(d *pop3gen.DotWriter, f *os.File) error { return CopyTop(d, f, lines) })
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
func (h *session) uid(m *Message) string {
	if h.s.V.UIDLFormat == pop3gen.UIDLFormatDovecot {
		return fmt.Sprintf("%08X%08X", m.UID, h.drop.Validity) // Dovecot's %08Xu%08Xv
	}
	return strconv.FormatUint(uint64(m.UID), 10)
}

func (h *session) Uidl(w *pop3gen.Writer, msg uint32) error {
	if msg != 0 {
		i, err := h.message(msg)
		if err != nil {
			return err
		}
		return w.UniqueID(false, int(msg), h.uid(&h.drop.Messages[i]))
	}
	w.Begin("unique-id listing follows")
	for i := range h.drop.Messages {
		if !h.marked[i] {
			if err := w.UniqueID(true, i+1, h.uid(&h.drop.Messages[i])); err != nil {
				return err
			}
		}
	}
	w.End()
	return nil
}
