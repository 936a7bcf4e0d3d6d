package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// Proxy accepts POP3 clients and serves each from a session of its own
// with the backend: the client's login is the backend's, and every
// TRANSACTION command is forwarded.
type Proxy struct {
	// Backend is the backend POP3 server, "host:port" (plain TCP).
	Backend string
	// Timeout bounds each exchange with the backend; a body may take
	// longer as long as data keeps coming within it. Default 1 min.
	Timeout time.Duration
	// Trusted are the client networks that count as secure, for
	// profiles whose PlaintextAuth is "secure".
	Trusted []netip.Prefix
}

// Serve serves clients on ln with the variations v until ln fails. The
// core's runtime, pop3gen.Server, owns the client connection.
func (p *Proxy) Serve(ln net.Listener, v pop3gen.Variations) error {
	// The proxy has no APOP secrets and passes on no UTF-8 or language
	// switch: these commands are answered as not supported.
	v.APOP, v.UTF8, v.LANG = false, false, false
	srv := &pop3gen.Server{
		Variations: v,
		Greeting:   "pop3proxy ready",
		Trusted:    p.Trusted,
		NewHandler: func(c *pop3gen.Conn) (pop3gen.Handler, error) {
			return &session{p: p, conn: c}, nil
		},
	}
	return srv.Serve(ln)
}

func (p *Proxy) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return time.Minute
}

// session is one client's session, and its session with the backend
// once logged in.
type session struct {
	p     *Proxy
	conn  *pop3gen.Conn
	user  string
	fails int             // failed logins on this connection
	be    *pop3gen.Client // nil before login
}

// maxFails is the number of failed logins after which the proxy closes
// the client's connection: every attempt costs a backend connection, and
// the backend sees every client as the proxy's address, so it cannot
// tell one guesser from the proxy's other users.
const maxFails = 3

var (
	errBackend = pop3gen.NewError(pop3gen.CodeSysTemp, "the mail server is not available, try again later")
	errNoTLS   = pop3gen.NewError("", "TLS is not available here")
	errMech    = pop3gen.NewError(pop3gen.CodeAuth, "malformed PLAIN credentials")
)

// Close ends the backend session without QUIT when the client goes: the
// backend removes nothing, as RFC 1939 §6 wants for a client that did not
// QUIT.
func (s *session) Close() error {
	if s.be != nil {
		_ = s.be.Close()
	}
	return nil
}

// backendErr turns what the backend said into the client's reply: the
// backend's own -ERR (with its response code) is passed on as it is; a
// transport or protocol failure is [SYS/TEMP], and the client's connection
// closes after it, since the backend session is lost.
func (s *session) backendErr(err error) error {
	var e *pop3gen.Error
	if errors.As(err, &e) {
		return e
	}
	s.conn.Log().Warn("pop3proxy: backend failed", "err", err)
	s.conn.CloseAfterReply()
	return errBackend
}

// deadline bounds the next exchange with the backend.
func (s *session) deadline() {
	_ = s.be.Conn().SetDeadline(time.Now().Add(s.p.timeout()))
}

// login logs in to the backend as user: the backend decides whether the
// password is right, and its refusal is the client's.
func (s *session) login(user string, password []byte) error {
	c, err := net.DialTimeout("tcp", s.p.Backend, s.p.timeout())
	if err != nil {
		s.conn.Log().Warn("pop3proxy: backend unreachable", "err", err)
		return errBackend
	}
	_ = c.SetDeadline(time.Now().Add(s.p.timeout()))
	be, err := pop3gen.NewClient(c)
	if err == nil {
		if err = be.User(user); err == nil {
			err = be.Pass(string(password))
		}
	}
	if err != nil {
		_ = c.Close()
		var e *pop3gen.Error
		if errors.As(err, &e) {
			if s.fails++; s.fails >= maxFails {
				s.conn.CloseAfterReply()
			}
			return e
		}
		s.conn.Log().Warn("pop3proxy: backend login failed", "err", err)
		return errBackend
	}
	if e := s.conn.Login(user); e != nil {
		_ = be.Close() // no QUIT: nothing removed
		return e
	}
	s.be = be
	return nil
}

func (s *session) User(w *pop3gen.Writer, arg []byte) error { s.user = string(arg); return nil }

func (s *session) Pass(w *pop3gen.Writer, secret []byte) error {
	return s.login(s.user, secret)
}

func (s *session) Mechanisms() []string { return []string{"PLAIN"} }

// Auth runs SASL PLAIN with the client (the core does the framing) and
// logs in to the backend with USER/PASS.
func (s *session) Auth(string) (pop3gen.SASLServer, error) { return plain{s}, nil }

func (s *session) Authenticated(w *pop3gen.Writer) error { return nil }

// plain is SASL PLAIN (RFC 4616): authzid NUL authcid NUL passwd.
type plain struct{ s *session }

func (p plain) Next(response []byte) ([]byte, bool, error) {
	if response == nil {
		return nil, false, nil // ask for the credentials
	}
	parts := bytes.Split(response, []byte{0})
	if len(parts) != 3 || len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
		return nil, false, errMech
	}
	return nil, true, p.s.login(string(parts[1]), parts[2])
}

func (s *session) STLS(w *pop3gen.Writer) error { return errNoTLS }

// Capa is the proxy's own: what it offers the client in the session's
// state (USER and SASL PLAIN before login), whatever the backend offers
// (a command the backend lacks gets the backend's -ERR).
func (s *session) Capa(w *pop3gen.Writer) error {
	sess := s.conn.Session()
	info := sess.CapaInfo()
	info.Implementation = "pop3proxy"
	pop3gen.WriteCapa(w, &sess.V, &info)
	return nil
}

// Quit ends a session that never logged in.
func (s *session) Quit(w *pop3gen.Writer) error { w.OK("bye"); return nil }

// Update is QUIT from TRANSACTION: the backend's QUIT removes the
// messages marked deleted, and its reply is the client's.
func (s *session) Update(w *pop3gen.Writer) error {
	return s.relay(w, "QUIT")
}

// relay forwards a command with a single-line reply and passes the
// backend's +OK text on.
func (s *session) relay(w *pop3gen.Writer, line string) error {
	s.deadline()
	r, err := s.be.Cmd(line)
	if err != nil {
		return s.backendErr(err)
	}
	if r.Status != pop3gen.StatusOK {
		return s.backendErr(&pop3gen.ProtocolError{Reason: "unexpected reply to " + line})
	}
	w.OKBytes(r.Text)
	return nil
}

func num(cmd string, n uint32) string { return cmd + " " + strconv.FormatUint(uint64(n), 10) }

func (s *session) Dele(w *pop3gen.Writer, n uint32) error { return s.relay(w, num("DELE", n)) }
func (s *session) Noop(w *pop3gen.Writer) error           { return s.relay(w, "NOOP") }
func (s *session) Rset(w *pop3gen.Writer) error           { return s.relay(w, "RSET") }

// Stat reads the backend's STAT with the parser and writes it anew.
func (s *session) Stat(w *pop3gen.Writer) error {
	s.deadline()
	n, size, err := s.be.Stat()
	if err != nil {
		return s.backendErr(err)
	}
	w.Stat(n, size)
	return nil
}

// List reads the backend's scan listing with the parser, then writes it:
// a listing that breaks off is -ERR, never half a listing.
func (s *session) List(w *pop3gen.Writer, n uint32) error {
	s.deadline()
	if n != 0 {
		e, err := s.be.ListMsg(n)
		if err != nil {
			return s.backendErr(err)
		}
		w.ScanListing(false, int(e.Msg), e.Octets)
		return nil
	}
	list, err := s.be.List()
	if err != nil {
		return s.backendErr(err)
	}
	w.Begin("scan listing follows")
	for _, e := range list {
		w.ScanListing(true, int(e.Msg), e.Octets)
	}
	w.End()
	return nil
}

// UIDL is List for unique-ids.
func (s *session) UIDL(w *pop3gen.Writer, n uint32) error {
	s.deadline()
	if n != 0 {
		e, err := s.be.UIDLMsg(n)
		if err != nil {
			return s.backendErr(err)
		}
		return w.UniqueID(false, int(e.Msg), e.UID)
	}
	list, err := s.be.UIDL()
	if err != nil {
		return s.backendErr(err)
	}
	w.Begin("unique-id listing follows")
	for _, e := range list {
		if err := w.UniqueID(true, int(e.Msg), e.UID); err != nil {
			return err
		}
	}
	w.End()
	return nil
}

func (s *session) Retr(w *pop3gen.Writer, n uint32) error { return s.body(w, num("RETR", n)) }

func (s *session) Top(w *pop3gen.Writer, n, lines uint32) error {
	return s.body(w, num("TOP", n)+" "+strconv.FormatUint(uint64(lines), 10))
}

// body forwards RETR or TOP: the backend's +OK text is passed on, then
// the message streams from the backend's DotReader (which unstuffs it)
// into the client's DotWriter (which stuffs it again), a buffer at a
// time, never held whole. A backend that fails inside the body makes the
// handler fail after its reply began, and the core closes the client's
// connection: the client sees a message without its "." line, never a
// shortened message that looks complete.
//
// The one change on the way: only CRLF ends a line for the DotReader, so
// a bare LF in the backend's data stays data, and the DotWriter writes it
// as CRLF. A client therefore gets the message in CRLF form with a bare
// LF as a line end; a dot after such a LF is stuffed, so a backend's bare
// LF can never end the message early. The octet count in the +OK text is
// the backend's, and is short by one octet for each bare LF.
func (s *session) body(w *pop3gen.Writer, line string) error {
	s.deadline()
	r, err := s.be.Cmd(line)
	if err != nil {
		return s.backendErr(err)
	}
	if r.Status != pop3gen.StatusOK {
		return s.backendErr(&pop3gen.ProtocolError{Reason: "unexpected reply to " + line})
	}
	w.OKBytes(r.Text)
	d := w.Message()
	if _, err := io.Copy(d, deadlineReader{s, s.be.Reader().Body(0)}); err != nil {
		s.conn.Log().Warn("pop3proxy: backend failed inside a message", "err", err)
		return err
	}
	return d.Close()
}

// deadlineReader moves the backend's deadline on at every read, so that
// a long message may take as long as it needs while data keeps coming.
type deadlineReader struct {
	s *session
	r io.Reader
}

func (d deadlineReader) Read(p []byte) (int, error) {
	d.s.deadline()
	return d.r.Read(p)
}

var _ pop3gen.Handler = (*session)(nil)
