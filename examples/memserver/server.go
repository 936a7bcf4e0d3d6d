package main

import (
	"bytes"
	"net"
	"net/netip"
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
	nextUID  int
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
	b := &mailbox{password: password, nextUID: 1}
	for _, m := range msgs {
		b.msgs = append(b.msgs, message{uid: b.nextUID, body: []byte(m)})
		b.nextUID++
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

// handler implements pop3gen.Handler on the in-memory store.
type handler struct {
	store   *Store
	conn    *pop3gen.Conn
	user    string
	box     *mailbox
	deleted map[int]bool
}

var (
	errLogin   = pop3gen.NewError(pop3gen.CodeAuth, "invalid user name or password")
	errInUse   = pop3gen.NewError(pop3gen.CodeInUse, "mailbox in use by another session")
	errNoMsg   = pop3gen.NewError("", "no such message")
	errDeleted = pop3gen.NewError("", "message is marked deleted")
	errNoTLS   = pop3gen.NewError("", "TLS is not available here")
	errMech    = pop3gen.NewError("", "unsupported SASL mechanism")
)

// Close releases the mailbox when the connection ends.
func (h *handler) Close() error {
	h.release()
	return nil
}

func (h *handler) release() {
	if h.box != nil {
		h.store.mu.Lock()
		h.box.locked = false
		h.store.mu.Unlock()
	}
}

func (h *handler) login(user, password string) error {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	b, ok := h.store.boxes[user]
	if !ok || b.password != password {
		return errLogin
	}
	if b.locked {
		return errInUse
	}
	b.locked = true
	h.user, h.box, h.deleted = user, b, map[int]bool{}
	return nil
}

func (h *handler) User(w *pop3gen.Writer, arg []byte) error { h.user = string(arg); return nil }
func (h *handler) Pass(w *pop3gen.Writer, secret []byte) error {
	return h.login(h.user, string(secret))
}

func (h *handler) Mechanisms() []string { return []string{"PLAIN"} }

// Auth starts a SASL exchange; the core runs it (base64, the initial
// response, continuations, "*").
func (h *handler) Auth(mechanism string) (pop3gen.SASLServer, error) {
	return plainServer{h}, nil
}

func (h *handler) Authenticated(w *pop3gen.Writer) error { return nil }

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
	return nil, true, p.h.login(string(parts[1]), string(parts[2]))
}

func (h *handler) STLS(w *pop3gen.Writer) error { return errNoTLS }

// Capa lists the capabilities of the session's state; memserver serves
// neither APOP nor UTF8 nor LANG (it implements none of their optional
// interfaces), so none is announced.
func (h *handler) Capa(w *pop3gen.Writer) error {
	pop3gen.WriteCapa(w, &h.conn.Session().V, &pop3gen.CapaInfo{Plaintext: true, SASL: []string{"PLAIN"}, Implementation: "memserver"})
	return nil
}

// Quit ends a session that did not log in.
func (h *handler) Quit(w *pop3gen.Writer) error {
	w.OK("bye")
	return nil
}

// Update applies the deletions (QUIT from TRANSACTION).
func (h *handler) Update(w *pop3gen.Writer) error {
	h.store.mu.Lock()
	kept := h.box.msgs[:0]
	for i, m := range h.box.msgs {
		if !h.deleted[i+1] {
			kept = append(kept, m)
		}
	}
	h.box.msgs = kept
	h.store.mu.Unlock()
	w.OK("bye")
	return nil
}

// msg returns message n unless it does not exist or is marked deleted.
func (h *handler) msg(n uint32) (message, error) {
	if n < 1 || int(n) > len(h.box.msgs) {
		return message{}, errNoMsg
	}
	if h.deleted[int(n)] {
		return message{}, errDeleted
	}
	return h.box.msgs[n-1], nil
}

// size is the exact size of a message in its CRLF form.
func size(b []byte) int64 {
	return int64(len(b) + bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n")))
}

func (h *handler) Stat(w *pop3gen.Writer) error {
	n, total := 0, int64(0)
	for i, m := range h.box.msgs {
		if !h.deleted[i+1] {
			n++
			total += size(m.body)
		}
	}
	w.Stat(n, total)
	return nil
}

func (h *handler) List(w *pop3gen.Writer, msg uint32) error {
	if msg != 0 {
		m, err := h.msg(msg)
		if err != nil {
			return err
		}
		w.ScanListing(false, int(msg), size(m.body))
		return nil
	}
	w.Begin("scan listing follows")
	for i, m := range h.box.msgs {
		if !h.deleted[i+1] {
			w.ScanListing(true, i+1, size(m.body))
		}
	}
	w.End()
	return nil
}

func (h *handler) Retr(w *pop3gen.Writer, msg uint32) error {
	m, err := h.msg(msg)
	if err != nil {
		return err
	}
	w.Begin(strconv.FormatInt(size(m.body), 10) + " octets")
	d := w.Message()
	_, _ = d.Write(m.body)
	return d.Close()
}

func (h *handler) Dele(w *pop3gen.Writer, msg uint32) error {
	if _, err := h.msg(msg); err != nil {
		return err
	}
	h.deleted[int(msg)] = true
	w.OK("message " + strconv.Itoa(int(msg)) + " deleted")
	return nil
}

func (h *handler) Noop(w *pop3gen.Writer) error { return nil }
func (h *handler) Rset(w *pop3gen.Writer) error { h.deleted = map[int]bool{}; return nil }

// Top sends the header, the blank line and the first lines of the body.
func (h *handler) Top(w *pop3gen.Writer, msg, lines uint32) error {
	m, err := h.msg(msg)
	if err != nil {
		return err
	}
	head, body, _ := bytes.Cut(m.body, []byte("\n\n"))
	w.Begin("top of message follows")
	d := w.Message()
	_, _ = d.Write(head)
	_, _ = d.Write([]byte("\n\n"))
	for i := uint32(0); i < lines && len(body) > 0; i++ {
		line, rest, found := bytes.Cut(body, []byte("\n"))
		_, _ = d.Write(line)
		if found {
			_, _ = d.Write([]byte("\n"))
		}
		body = rest
	}
	return d.Close()
}

func (h *handler) UIDL(w *pop3gen.Writer, msg uint32) error {
	if msg != 0 {
		m, err := h.msg(msg)
		if err != nil {
			return err
		}
		return w.UniqueID(false, int(msg), strconv.Itoa(m.uid))
	}
	w.Begin("unique-id listing follows")
	for i, m := range h.box.msgs {
		if !h.deleted[i+1] {
			if err := w.UniqueID(true, i+1, strconv.Itoa(m.uid)); err != nil {
				return err
			}
		}
	}
	w.End()
	return nil
}

var _ pop3gen.Handler = (*handler)(nil)
