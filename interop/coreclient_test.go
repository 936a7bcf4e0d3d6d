package interop

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
)

// TestCoreClientAgainstDovecot: the core's client side (pop3.Client on
// ReplyReader) reads a real Dovecot — its greeting, CAPA, a login, STAT,
// LIST, UIDL, RETR and TOP bodies, an -ERR with a response code — and gets
// back the messages in the Maildir, in CRLF form, with the sizes Dovecot
// lists. pop3d is the other server the parser is tested against
// (server/coreclient_test.go).
func TestCoreClientAgainstDovecot(t *testing.T) {
	dovecot := findDovecot(t)
	w := newWorld(t, rand.New(rand.NewPCG(1939, 2449)))
	addr := w.startDovecot(t, dovecot)

	c, err := pop3.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Conn().SetDeadline(time.Now().Add(30 * time.Second))
	caps, err := c.Capa()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"TOP", "UIDL", "RESP-CODES", "USER"} {
		if !caps.Has(name) {
			t.Errorf("Dovecot's CAPA lacks %s: %v", name, caps)
		}
	}

	bad, err := pop3.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_ = bad.Conn().SetDeadline(time.Now().Add(30 * time.Second))
	if err := bad.User(bob.name); err != nil {
		t.Fatal(err)
	}
	r, err := bad.Cmd("PASS wrong")
	if err == nil || !r.HasCode(pop3.CodeAuth) {
		t.Errorf("a wrong password: %v, code %q; want [AUTH]", err, r.Code)
	}

	if err := c.User(bob.name); err != nil {
		t.Fatal(err)
	}
	if err := c.Pass(bob.password); err != nil {
		t.Fatal(err)
	}
	n, size, err := c.Stat()
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	uids, err := c.UIDL()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n || len(uids) != n {
		t.Fatalf("STAT says %d messages, LIST lists %d, UIDL %d", n, len(list), len(uids))
	}
	var stored []string
	ents, err := os.ReadDir(filepath.Join(w.dvMail, bob.name, "cur"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(w.dvMail, bob.name, "cur", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, strings.ReplaceAll(string(b), "\n", "\r\n"))
	}
	var sum int64
	for i, l := range list {
		sum += l.Octets
		body, err := c.Retr(l.Msg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("RETR %d: %v", l.Msg, err)
		}
		if int64(len(b)) != l.Octets {
			t.Errorf("RETR %d: %d octets, LIST says %d", l.Msg, len(b), l.Octets)
		}
		found := false
		for _, s := range stored {
			found = found || s == string(b)
		}
		if !found {
			t.Errorf("RETR %d: %q is no message of the Maildir", l.Msg, b)
		}
		top, err := c.Top(l.Msg, 0)
		if err != nil {
			t.Fatal(err)
		}
		h, err := io.ReadAll(top)
		if err != nil || !bytes.HasPrefix(b, h) || !bytes.HasSuffix(h, []byte("\r\n\r\n")) {
			t.Errorf("TOP %d 0: %q (%v) is not the header of %q", l.Msg, h, err, b)
		}
		if uids[i].Msg != l.Msg {
			t.Errorf("UIDL line %d is message %d, LIST's %d", i, uids[i].Msg, l.Msg)
		}
	}
	if sum != size {
		t.Errorf("STAT says %d octets, LIST adds up to %d", size, sum)
	}
	if _, err := c.Retr(uint32(n + 1)); err == nil {
		t.Errorf("RETR of message %d of %d succeeded", n+1, n)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}
