package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pop3kit/pop3kit/examples/emlserver/internal/emlpop3"
	"github.com/pop3kit/pop3kit/pop3"
)

// Mailbox is one directory of .eml files served as one maildrop to one
// user. One session at a time holds it (RFC 1939 §8's exclusive lock).
type Mailbox struct {
	Dir            string
	User, Password string

	mu     sync.Mutex
	locked bool
}

// Serve serves POP3 for mb on ln until ln fails. The core's runtime
// (emlpop3.Server, generated with XHDR added) owns the connection;
// emlserver brings only its handler.
func Serve(ln net.Listener, mb *Mailbox) error {
	v := emlpop3.RFC1939()
	// No APOP secret, no UTF-8 names, one language: the greeting carries
	// no timestamp, CAPA does not list UTF8 or LANG, and the core answers
	// those commands as not supported.
	v.APOP, v.UTF8, v.LANG = false, false, false
	srv := &pop3.Server{
		Dialect:  &v,
		Greeting: "emlserver ready",
		// An example on loopback: every connection counts as secure.
		Trusted: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		NewHandler: func(c *pop3.Conn) (pop3.Handler, error) {
			return &handler{mb: mb, conn: c}, nil
		},
	}
	return srv.Serve(ln)
}

// handler is a connection's backend: USER and PASS open the mailbox, and
// the table's own XHDR (an emlpop3.XhdrHandler, since the table marks it
// Optional) reads it; the core answers the other commands from the drop
// PASS returns.
type handler struct {
	mb   *Mailbox
	conn *pop3.Conn
	drop *drop // nil before login
}

var (
	errLogin = pop3.NewError(pop3.CodeAuth, "invalid user name or password")
	errInUse = pop3.NewError(pop3.CodeInUse, "mailbox in use by another session")
	errRead  = pop3.NewError(pop3.CodeSysTemp, "cannot read the mailbox")
)

func (h *handler) User(w *pop3.Writer, arg []byte) error { return nil } // checked at PASS

// Pass checks the password, locks the mailbox and opens the drop: the
// .eml files in name order, with their unique-ids and CRLF sizes.
func (h *handler) Pass(user, secret []byte) (pop3.Maildrop, error) {
	if string(user) != h.mb.User || string(secret) != h.mb.Password {
		return nil, errLogin
	}
	h.mb.mu.Lock()
	defer h.mb.mu.Unlock()
	if h.mb.locked {
		return nil, errInUse
	}
	msgs, err := scan(h.mb.Dir)
	if err != nil {
		return nil, errRead
	}
	h.mb.locked = true
	h.drop = &drop{mb: h.mb, msgs: msgs}
	return h.drop, nil
}

// Capa adds the server's name to the CAPA the core writes from the
// extended table, which lists XHDR.
func (h *handler) Capa(info *pop3.CapaInfo) { info.Implementation = "emlserver" }

// message is one .eml file as the session saw it at login.
type message struct {
	path string
	uid  string
	size int64 // in CRLF form, as RETR sends it
}

// drop is the mailbox as a session opened it: an emlpop3.Maildrop.
type drop struct {
	mb   *Mailbox
	msgs []message
}

func (d *drop) Len() int              { return len(d.msgs) }
func (d *drop) Size(i int) int64      { return d.msgs[i].size }
func (d *drop) UniqueID(i int) string { return d.msgs[i].uid }

// Open opens the file; the core streams it through its
// DotWriter, which turns LF into CRLF and stuffs the dots. A file that
// fails to read after the +OK makes the core close the connection rather
// than send a broken message.
func (d *drop) Open(i int) (io.ReadCloser, error) {
	f, err := os.Open(d.msgs[i].path)
	if err != nil {
		return nil, pop3.NewError(pop3.CodeSysTemp, "cannot read the message")
	}
	return f, nil
}

// Remove removes the files of the messages marked deleted (UPDATE).
func (d *drop) Remove(indexes []int) error {
	var failed error
	for _, i := range indexes {
		if err := os.Remove(d.msgs[i].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			failed = err
		}
	}
	return failed
}

// Close unlocks the mailbox; without QUIT nothing was removed.
func (d *drop) Close() error {
	d.mb.mu.Lock()
	d.mb.locked = false
	d.mb.mu.Unlock()
	return nil
}

// scan lists the .eml files of dir in name order.
func scan(dir string) ([]message, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	msgs := []message{}
	for _, p := range names {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		c := &crlfCounter{}
		_, err = io.Copy(c, f)
		_ = f.Close()
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, message{path: p, uid: uid(filepath.Base(p)), size: c.n})
	}
	return msgs, nil
}

// uid is the file's name without .eml when that is a valid unique-id
// (RFC 1939 §7: 1 to 70 octets from 0x21 to 0x7E), else a hash of the
// name: both stay the same across sessions while the file does.
func uid(name string) string {
	if id := strings.TrimSuffix(name, ".eml"); pop3.ValidUID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

// crlfCounter counts the octets of what is written to it in CRLF form:
// each LF not preceded by CR counts two.
type crlfCounter struct {
	n      int64
	lastCR bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	for i, b := range p {
		if b == '\n' && !(i > 0 && p[i-1] == '\r' || i == 0 && c.lastCR) {
			c.n++
		}
	}
	if len(p) > 0 {
		c.lastCR = p[len(p)-1] == '\r'
	}
	return len(p), nil
}

// Xhdr is the table's own command: "XHDR Subject" lists the Subject of
// every message not marked deleted that has one, a line "n value" each.
// Session.Message tells which messages are marked, as the core sees them.
// The values are read before the +OK, so that a file that cannot be read
// is -ERR rather than a cut listing; the Writer cuts a long value to the
// 512-octet line and replaces control characters, so that a header cannot
// forge a line.
func (h *handler) Xhdr(w *pop3.Writer, field []byte) error {
	s := h.conn.Session()
	var lines []string
	for n := 1; n <= len(h.drop.msgs); n++ {
		i, err := s.Message(uint32(n))
		if err != nil {
			continue // marked deleted
		}
		v, err := header(h.drop.msgs[i].path, string(field))
		if err != nil {
			return errRead
		}
		if v != "" {
			lines = append(lines, strconv.Itoa(n)+" "+v)
		}
	}
	w.Begin("header values follow")
	for _, l := range lines {
		w.Line(l)
	}
	w.End()
	return nil
}

// header returns the unfolded value of a message's header field, or "".
func header(path, field string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(bufio.NewReader(f))
	if err != nil {
		return "", nil // no header to read: the field is absent
	}
	return msg.Header.Get(field), nil
}

var _ interface {
	emlpop3.Handler
	emlpop3.XhdrHandler
	pop3.CapaHandler
} = (*handler)(nil)
