package main

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// Store holds mailboxes in memory.
type Store struct {
	mu    sync.Mutex
	boxes map[string]*mailbox
}

type mailbox struct {
	password string
	msgs     []message
	locked   bool
}

type message struct {
	uid  int
	body []byte // LF line ends, as a Maildir holds them
}

// DemoStore returns a store with the mailbox "demo" (password "demo").
func DemoStore() *Store {
	s := &Store{boxes: map[string]*mailbox{}}
	s.Add("demo", "demo", "Subject: hello\n\nWelcome to memserver.\n", "Subject: second\n\n.A line that starts with a dot.\n")
	return s
}

// Add creates a mailbox holding the given messages.
func (s *Store) Add(user, password string, msgs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &mailbox{password: password}
	for i, m := range msgs {
		b.msgs = append(b.msgs, message{uid: i + 1, body: []byte(m)})
	}
	s.boxes[user] = b
}

// Count returns the number of messages in a mailbox.
func (s *Store) Count(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.boxes[user].msgs)
}

// Serve serves POP3 on ln until it fails. The core's runtime owns the
// connection (greeting, read loop, timers, limits); memserver brings only
// its handler.
func Serve(ln net.Listener, st *Store, v pop3gen.Variations) error {
	srv := &pop3gen.Server{
		Variations: v,
		Greeting:   "memserver ready",
		// An example on loopback: every connection counts as secure, so
		// that plaintext logins work under every profile.
		Trusted: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		NewHandler: func(c *pop3gen.Conn) (pop3gen.Handler, error) {
			return &handler{store: st, conn: c}, nil
		},
	}
	return srv.Serve(ln)
}

// handler is a session: USER, PASS, AUTH PLAIN and CAPA of its own; the
// TRANSACTION commands and UPDATE come from pop3gen.MaildropHandler over
// the mailbox it opens, which returns values and never writes a reply.
type handler struct {
	pop3gen.MaildropHandler
	store *Store
	conn  *pop3gen.Conn
	user  string
	pass  string // from AUTH PLAIN, for Authenticated
}

var (
	errLogin = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name or password")
	errInUse = pop3gen.NewError(pop3gen.CodeInUse, "mailbox in use by another session")
)

// login opens the user's mailbox for the session as the profile's store
// variations say: locked (MaildropAccess=lock, RFC 1939's exclusive
// access) or a snapshot shared with other sessions (Exchange), with exact
// or storage sizes (ExactSizes).
func (h *handler) login(w *pop3gen.Writer, user, password string) error {
	v := h.conn.Variations()
	lock := v.MaildropAccess == pop3gen.MaildropAccessLock
	h.store.mu.Lock()
	b, ok := h.store.boxes[user]
	if !ok || b.password != password {
		h.store.mu.Unlock()
		return errLogin
	}
	if lock && b.locked {
		h.store.mu.Unlock()
		return errInUse
	}
	b.locked = b.locked || lock
	snapshot := append([]message(nil), b.msgs...)
	h.store.mu.Unlock()
	return h.Open(w, &drop{store: h.store, box: b, msgs: snapshot, locked: lock, exact: v.ExactSizes})
}

func (h *handler) User(w *pop3gen.Writer, arg []byte) error { h.user = string(arg); return nil }
func (h *handler) Pass(w *pop3gen.Writer, secret []byte) error {
	return h.login(w, h.user, string(secret))
}

func (h *handler) Mechanisms() []string { return []string{"PLAIN"} }

// Auth starts a SASL exchange; the core runs it (base64, the initial
// response, continuations, "*").
func (h *handler) Auth(mechanism string) (pop3gen.SASLServer, error) { return plainServer{h}, nil }

func (h *handler) Authenticated(w *pop3gen.Writer) error { return h.login(w, h.user, h.pass) }

// plainServer is SASL PLAIN (RFC 4616): authzid NUL authcid NUL passwd.
type plainServer struct{ h *handler }

func (p plainServer) Next(response []byte) ([]byte, bool, error) {
	if response == nil {
		return nil, false, nil // ask for the credentials
	}
	parts := bytes.Split(response, []byte{0})
	if len(parts) != 3 || len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
		return nil, false, errLogin
	}
	p.h.user, p.h.pass = string(parts[1]), string(parts[2])
	return nil, true, nil
}

func (h *handler) STLS(w *pop3gen.Writer) error { return pop3gen.ErrNotSupported }

// Capa lists the capabilities of the session's state; memserver serves
// neither APOP nor UTF8 nor LANG (it implements none of their optional
// interfaces), so none is announced.
func (h *handler) Capa(w *pop3gen.Writer) error {
	s := h.conn.Session()
	info := s.CapaInfo() // USER and SASL as the state and variations allow
	info.Implementation = "memserver"
	pop3gen.WriteCapa(w, &s.V, &info)
	return nil
}

// drop is an open mailbox: the messages as they were at login.
type drop struct {
	store  *Store
	box    *mailbox
	msgs   []message
	locked bool // this session holds the mailbox's lock
	exact  bool // sizes of the CRLF form (ExactSizes), else as stored
}

func (d *drop) Len() int              { return len(d.msgs) }
func (d *drop) UniqueID(i int) string { return strconv.Itoa(d.msgs[i].uid) }
func (d *drop) Open(i int) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(d.msgs[i].body)), nil
}

// Size is the exact size of the message's CRLF form, or the octets it is
// stored in (LF line ends), as ExactSizes says.
func (d *drop) Size(i int) int64 {
	if b := d.msgs[i].body; d.exact {
		return int64(len(b) + bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n")))
	}
	return int64(len(d.msgs[i].body))
}

// Remove removes the messages at the indexes given (by uid: the list may
// have grown since login).
func (d *drop) Remove(indexes []int) error {
	gone := map[int]bool{}
	for _, i := range indexes {
		gone[d.msgs[i].uid] = true
	}
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	d.box.msgs = slices.DeleteFunc(d.box.msgs, func(m message) bool { return gone[m.uid] })
	return nil
}

// Close unlocks the mailbox if this session locked it.
func (d *drop) Close() error {
	d.store.mu.Lock()
	d.box.locked = d.box.locked && !d.locked
	d.store.mu.Unlock()
	return nil
}

var _ pop3gen.Handler = (*handler)(nil)
