package main

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pop3kit/pop3kit/pop3"
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
	uid  int    // decimal and never reused (UIDLFormat=decimal, as in every profile)
	body []byte // LF line ends, as a Maildir holds them
}

// DemoStore returns a store with the mailbox "demo" (password "demo").
func DemoStore() *Store {
	return &Store{boxes: map[string]*mailbox{"demo": {password: "demo", msgs: []message{
		{uid: 1, body: []byte("Subject: hello\n\nWelcome to memserver.\n")},
		{uid: 2, body: []byte("Subject: second\n\n.A line that starts with a dot.\n")},
	}}}}
}

// Serve serves POP3 on ln until it fails. The core's runtime owns the
// connection, and the core answers every command from the Maildrop a
// login returns: memserver brings only the logins.
func Serve(ln net.Listener, st *Store, v pop3gen.Variations) error {
	srv := &pop3.Server{
		Dialect:  &v,
		Greeting: "memserver ready",
		// An example: every client counts as secure, for plaintext logins.
		Trusted:    []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		NewHandler: func(c *pop3.Conn) (pop3.Handler, error) { return &handler{store: st, conn: c}, nil },
	}
	return srv.Serve(ln)
}

// handler is a connection's backend: USER/PASS and AUTH PLAIN (an
// AuthHandler), and its name in CAPA (a CapaHandler). It implements no
// APOPHandler, UTF8Handler or LangHandler: those commands are neither
// served nor announced.
type handler struct {
	store      *Store
	conn       *pop3.Conn
	user, pass string // from AUTH PLAIN
}

var (
	errLogin = pop3.NewError(pop3.CodeAuth, "invalid user name or password")
	errInUse = pop3.NewError(pop3.CodeInUse, "mailbox in use by another session")
	errGone  = pop3.NewError("", "message was removed by another session")
)

func (h *handler) User(w *pop3.Writer, arg []byte) error { return nil } // checked at PASS
func (h *handler) Pass(user, secret []byte) (pop3.Maildrop, error) {
	return h.open(string(user), string(secret))
}
func (h *handler) Mechanisms() []string                  { return []string{"PLAIN"} }
func (h *handler) Auth(string) (pop3.SASLServer, error)  { return plain{h}, nil }
func (h *handler) Authenticated() (pop3.Maildrop, error) { return h.open(h.user, h.pass) }
func (h *handler) Capa(info *pop3.CapaInfo)              { info.Implementation = "memserver" }

// open opens a mailbox as the profile's store variations say: the name as
// sent or lower-cased (UserNameCase); locked (MaildropAccess=lock, RFC
// 1939's exclusive access) or a snapshot other sessions share (Exchange);
// exact or storage sizes (ExactSizes).
func (h *handler) open(user, password string) (pop3.Maildrop, error) {
	v := h.conn.Variations()
	if v.UserNameCase == pop3.UserNameCaseLower {
		user = strings.ToLower(user)
	}
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	b := h.store.boxes[user]
	if b == nil || b.password != password {
		return nil, errLogin
	}
	if b.locked {
		return nil, errInUse
	}
	if err := h.conn.Login(user); err != nil { // the runtime's per-user limit
		return nil, err
	}
	b.locked = v.MaildropAccess == pop3.MaildropAccessLock
	return &drop{store: h.store, box: b, msgs: slices.Clone(b.msgs), exact: v.ExactSizes}, nil
}

// plain is SASL PLAIN (RFC 4616): authzid NUL authcid NUL passwd. The
// core runs the exchange (base64, continuations, "*").
type plain struct{ h *handler }

func (p plain) Next(response []byte) ([]byte, bool, error) {
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

// drop is a pop3.Maildrop: the mailbox's messages as they were at login.
type drop struct {
	store *Store
	box   *mailbox
	msgs  []message
	exact bool // sizes of the CRLF form (ExactSizes), else as stored
}

func (d *drop) Len() int              { return len(d.msgs) }
func (d *drop) UniqueID(i int) string { return strconv.Itoa(d.msgs[i].uid) }

// Size is the size of the message's CRLF form, or the octets it is stored
// in (LF line ends), as ExactSizes says.
func (d *drop) Size(i int) int64 {
	b, crs := d.msgs[i].body, 0
	if d.exact {
		crs = bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n"))
	}
	return int64(len(b) + crs)
}

// Open returns the message, unless a session sharing the snapshot removed
// it meanwhile (MS-STANXPOP3 C0004: RETR and TOP then fail).
func (d *drop) Open(i int) (io.ReadCloser, error) {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	if !slices.ContainsFunc(d.box.msgs, func(m message) bool { return m.uid == d.msgs[i].uid }) {
		return nil, errGone
	}
	return io.NopCloser(bytes.NewReader(d.msgs[i].body)), nil
}

// Remove removes the messages at the indexes given (UPDATE), by uid: the
// mailbox may have changed since a snapshot was taken.
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

// Close unlocks the mailbox (under a snapshot nobody locks it). The
// runtime calls it when the connection ends, however it ends.
func (d *drop) Close() error {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	d.box.locked = false
	return nil
}

var _ interface {
	pop3gen.Handler
	pop3.AuthHandler
	pop3.CapaHandler
} = (*handler)(nil)
