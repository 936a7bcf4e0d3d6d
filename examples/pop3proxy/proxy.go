package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// Proxy accepts POP3 clients and serves each from a session of its own
// with the backend: the client's login is the backend's, and the maildrop
// it returns to the core is the backend's (see drop).
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
// core's runtime, pop3.Server, owns the client connection.
func (p *Proxy) Serve(ln net.Listener, v pop3gen.Variations) error {
	// The proxy has no APOP secrets and passes on no UTF-8 or language
	// switch: these commands are answered as not supported.
	v.APOP, v.UTF8, v.LANG = false, false, false
	srv := &pop3.Server{
		Dialect:  &v,
		Greeting: "pop3proxy ready",
		Trusted:  p.Trusted,
		NewHandler: func(c *pop3.Conn) (pop3.Handler, error) {
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

// session is one client's connection: its logins, each of which logs in
// to the backend with the client's credentials.
type session struct {
	p          *Proxy
	conn       *pop3.Conn
	user, pass string // from AUTH PLAIN
	fails      int    // failed logins on this connection
}

// maxFails is the number of failed logins after which the proxy closes
// the client's connection: every attempt costs a backend connection, and
// the backend sees every client as the proxy's address, so it cannot
// tell one guesser from the proxy's other users.
const maxFails = 3

var (
	errBackend = pop3.NewError(pop3.CodeSysTemp, "the mail server is not available, try again later")
	errMech    = pop3.NewError(pop3.CodeAuth, "malformed PLAIN credentials")
)

func (s *session) User(w *pop3.Writer, arg []byte) error { return nil } // the backend checks it at PASS
func (s *session) Pass(user, secret []byte) (pop3.Maildrop, error) {
	return s.login(string(user), string(secret))
}

// Mechanisms, Auth and Authenticated run SASL PLAIN with the client (the
// core does the framing), and log in to the backend with USER/PASS.
func (s *session) Mechanisms() []string                  { return []string{"PLAIN"} }
func (s *session) Auth(string) (pop3.SASLServer, error)  { return plain{s}, nil }
func (s *session) Authenticated() (pop3.Maildrop, error) { return s.login(s.user, s.pass) }

// Capa names the proxy in the CAPA the core writes: what the proxy offers
// the client, whatever the backend offers.
func (s *session) Capa(info *pop3.CapaInfo) { info.Implementation = "pop3proxy" }

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
	p.s.user, p.s.pass = string(parts[1]), string(parts[2])
	return nil, true, nil
}

// login logs in to the backend as user, and reads its scan and unique-id
// listings once: they are the client's maildrop. The backend decides
// whether the password is right, and its refusal is the client's.
func (s *session) login(user, password string) (pop3.Maildrop, error) {
	c, err := net.DialTimeout("tcp", s.p.Backend, s.p.timeout())
	if err != nil {
		s.conn.Log().Warn("pop3proxy: backend unreachable", "err", err)
		return nil, errBackend
	}
	_ = c.SetDeadline(time.Now().Add(s.p.timeout()))
	be, err := pop3.NewClient(c)
	if err == nil {
		if err = be.User(user); err == nil {
			err = be.Pass(password)
		}
	}
	var e *pop3.Error
	if errors.As(err, &e) {
		_ = c.Close()
		if s.fails++; s.fails >= maxFails {
			s.conn.CloseAfterReply()
		}
		return nil, e
	}
	d := &drop{s: s, be: be}
	if err == nil {
		d.list, err = be.List()
	}
	if err == nil {
		d.uids, err = be.UIDL()
	}
	if err == nil && !d.consistent() {
		err = &pop3.ProtocolError{Reason: "LIST and UIDL do not list messages 1 to n"}
	}
	if err != nil {
		_ = c.Close() // no QUIT: nothing removed
		s.conn.Log().Warn("pop3proxy: backend login failed", "err", err)
		return nil, errBackend
	}
	if e := s.conn.Login(user); e != nil {
		_ = c.Close()
		return nil, e
	}
	return d, nil
}

// drop is the client's maildrop, a pop3.Maildrop backed by the backend
// session: the listings read at login give the messages, their sizes and
// unique-ids; a message streams from the backend when the core opens it;
// DELE goes to the backend only in UPDATE, so that a client that does not
// QUIT removes nothing.
type drop struct {
	s    *session
	be   *pop3.Client
	list []pop3.ListEntry
	uids []pop3.UIDEntry
}

// consistent reports whether the listings are of messages 1 to n, in
// order, as a backend lists a maildrop in which nothing is marked.
func (d *drop) consistent() bool {
	if len(d.list) != len(d.uids) {
		return false
	}
	for i := range d.list {
		if d.list[i].Msg != uint32(i+1) || d.uids[i].Msg != uint32(i+1) {
			return false
		}
	}
	return true
}

func (d *drop) Len() int              { return len(d.list) }
func (d *drop) Size(i int) int64      { return d.list[i].Octets }
func (d *drop) UniqueID(i int) string { return d.uids[i].UID }

// Open sends RETR for message i and returns its data: unstuffed by the
// backend's DotReader, stuffed again by the client's DotWriter, a buffer
// at a time, never held whole (TOP too: the core cuts it). A backend that
// fails inside the body fails the read after the +OK began, and the core
// closes the client's connection: the client sees a message without its
// "." line, never a shortened message that looks complete.
//
// The one change on the way: only CRLF ends a line for the DotReader, so
// a bare LF in the backend's data stays data, and the DotWriter writes it
// as CRLF. A client therefore gets the message in CRLF form with a bare
// LF as a line end; a dot after such a LF is stuffed, so a backend's bare
// LF can never end the message early. The size, the backend's, is then
// short by one octet for each bare LF.
func (d *drop) Open(i int) (io.ReadCloser, error) {
	d.deadline()
	r, err := d.be.Retr(uint32(i + 1))
	if err != nil {
		return nil, d.fail(err)
	}
	return body{d, r}, nil
}

// OpenTop asks the backend for TOP, so that a client's TOP costs the
// backend no more than the top (pop3gen.TopOpener).
func (d *drop) OpenTop(i int, lines uint32) (io.ReadCloser, error) {
	d.deadline()
	r, err := d.be.Top(uint32(i+1), lines)
	if err != nil {
		return nil, d.fail(err)
	}
	return body{d, r}, nil
}

// Remove is UPDATE: DELE for each message marked, then QUIT, which makes
// the backend remove them. A DELE that fails leaves that message, and
// makes the client's QUIT fail with [SYS/TEMP] (MS-STANXPOP3 V0006).
func (d *drop) Remove(indexes []int) error {
	var failed error
	for _, i := range indexes {
		d.deadline()
		if err := d.be.Dele(uint32(i + 1)); err != nil && failed == nil {
			failed = err
		}
	}
	d.deadline()
	if err := d.be.Quit(); err != nil && failed == nil {
		failed = err
	}
	if failed != nil {
		d.s.conn.Log().Warn("pop3proxy: backend did not remove every message", "err", failed)
		return errors.New("the backend did not remove every message") // the core's [SYS/TEMP]
	}
	return nil
}

// Close ends the backend session without QUIT when the client goes: the
// backend removes nothing, as RFC 1939 §6 wants for a client that did not
// QUIT (after QUIT, Remove has already ended it).
func (d *drop) Close() error {
	_ = d.be.Close()
	return nil
}

// fail turns what the backend said into the client's reply: the backend's
// own -ERR (with its response code) is passed on as it is; a transport or
// protocol failure is [SYS/TEMP], and the client's connection closes
// after it, since the backend session is lost.
func (d *drop) fail(err error) error {
	var e *pop3.Error
	if errors.As(err, &e) {
		return e
	}
	d.s.conn.Log().Warn("pop3proxy: backend failed", "err", err)
	d.s.conn.CloseAfterReply()
	return errBackend
}

// deadline bounds the next exchange with the backend.
func (d *drop) deadline() {
	_ = d.be.Conn().SetDeadline(time.Now().Add(d.s.p.timeout()))
}

// body is a message as the backend sends it. Each read moves the
// backend's deadline on, so that a long message may take as long as it
// needs while data keeps coming.
type body struct {
	d *drop
	r io.Reader
}

func (b body) Read(p []byte) (int, error) {
	b.d.deadline()
	return b.r.Read(p)
}

// Close reads what TOP left of the message, at the same pace, so that
// the backend's next reply can be read.
func (b body) Close() error {
	_, err := io.Copy(io.Discard, b)
	return err
}

var _ interface {
	pop3gen.Handler
	pop3.AuthHandler
	pop3.CapaHandler
} = (*session)(nil)
