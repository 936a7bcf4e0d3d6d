package lmtp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/lmtp"
)

// memStore takes deliveries into memory, and knows users of its own.
type memStore struct {
	mu    sync.Mutex
	mail  map[string][]string
	users map[string]*account.Account
	fail  map[string]error // a user whose delivery fails so
	used  map[string]int64
	warn  map[string]bool
}

func (s *memStore) Deliver(ctx context.Context, user string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[user]; err != nil {
		return err
	}
	s.mail[user] = append(s.mail[user], string(b))
	s.used[user] += int64(len(b))
	return nil
}

func (s *memStore) Lookup(user string) (*account.Account, bool, error) {
	a, ok := s.users[user]
	return a, ok, nil
}

func (s *memStore) Usage(ctx context.Context, user string) (int64, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[user], len(s.mail[user]), nil
}
func (s *memStore) Warned(user string) bool { s.mu.Lock(); defer s.mu.Unlock(); return s.warn[user] }
func (s *memStore) SetWarned(user string, w bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warn[user] = w
	return nil
}

func newStore(users ...string) *memStore {
	s := &memStore{mail: map[string][]string{}, users: map[string]*account.Account{}, fail: map[string]error{},
		used: map[string]int64{}, warn: map[string]bool{}}
	for _, u := range users {
		s.users[u] = &account.Account{User: u}
	}
	return s
}

// start serves cfg on the loopback and returns an LMTP client to it.
func start(t *testing.T, cfg lmtp.Config) *smtp.Client {
	t.Helper()
	cfg.Addr, cfg.Domain = "127.0.0.1:0", "mx.example"
	srv, err := lmtp.New(cfg)
	require.NoError(t, err)
	addr, err := srv.Listen()
	require.NoError(t, err)
	go srv.Serve()
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	nc, err := net.Dial("tcp", addr.String())
	require.NoError(t, err)
	c := smtp.NewClientLMTP(nc)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Hello("mta.example"))
	return c
}

// send sends msg to rcpts in one transaction and returns each accepted
// recipient's reply code after DATA (250 for those saved).
func send(t *testing.T, c *smtp.Client, msg string, rcpts ...string) map[string]int {
	t.Helper()
	require.NoError(t, c.Mail("sender@example.org", nil))
	codes := map[string]int{}
	var accepted []string
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			var se *smtp.SMTPError
			require.ErrorAs(t, err, &se)
			codes[r] = se.Code
			continue
		}
		accepted = append(accepted, r)
	}
	w, err := c.Data()
	require.NoError(t, err)
	_, err = io.WriteString(w, msg)
	require.NoError(t, err)
	_, err = w.CloseWithLMTPResponse()
	var le smtp.LMTPDataError
	if err != nil {
		require.ErrorAs(t, err, &le)
	}
	for _, r := range accepted {
		codes[r] = 250
		if e := le[r]; e != nil {
			codes[r] = e.Code
		}
	}
	return codes
}

// TestDeliveryPerRecipient: RFC 2033 §4.2 — one reply per recipient after
// DATA; an unknown recipient is refused at RCPT (550 5.1.1), a known one's
// address is found by its local part and by the part before "+detail", a
// lower-cased lookup finds a mixed-case address, and one user's failed
// delivery (451) is that user's alone.
func TestDeliveryPerRecipient(t *testing.T) {
	st := newStore("alice", "bob", "carol")
	st.fail["carol"] = errors.New("disk on fire")
	var codes []int
	c := start(t, lmtp.Config{Store: st, Users: st, LowerCase: true, Delivered: func(code int, _ int64) { codes = append(codes, code) }})
	got := send(t, c, "Subject: hi\r\n\r\nbody\r\n", "alice@example.org", "Bob+lists@example.org", "carol@example.org", "nobody@example.org")
	assert.Equal(t, map[string]int{"alice@example.org": 250, "Bob+lists@example.org": 250, "carol@example.org": 451, "nobody@example.org": 550}, got)
	assert.Equal(t, []string{"Subject: hi\r\n\r\nbody\r\n"}, st.mail["alice"])
	assert.Equal(t, []string{"Subject: hi\r\n\r\nbody\r\n"}, st.mail["bob"])
	assert.Empty(t, st.mail["carol"])
	assert.ElementsMatch(t, []int{250, 250, 451}, codes, "Delivered is told each delivery's reply")
}

// TestDeliveryTooLarge: a message over MaxMessageSize is refused for
// every recipient (552 5.3.4) and nothing is stored; SIZE= over the limit
// is refused at MAIL.
func TestDeliveryTooLarge(t *testing.T) {
	st := newStore("alice")
	c := start(t, lmtp.Config{Store: st, Users: st, MaxMessageSize: 64})
	got := send(t, c, strings.Repeat("x", 100)+"\r\n", "alice@example.org")
	assert.Equal(t, map[string]int{"alice@example.org": 552}, got)
	assert.Empty(t, st.mail["alice"])
	err := c.Mail("sender@example.org", &smtp.MailOptions{Size: 65})
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 552, se.Code)
}

// TestDeliveryQuota: MS-STANXPOP3 E0003, E0004 — a delivery that would
// take a maildrop over its quota is refused (552 5.2.2); the one that
// crosses the warning threshold puts one warning into the maildrop.
func TestDeliveryQuota(t *testing.T) {
	st := newStore("alice")
	c := start(t, lmtp.Config{Store: st, Users: st, Quota: 100, QuotaWarning: 50})
	msg := strings.Repeat("x", 58) + "\r\n" // 60 octets: over half the quota
	assert.Equal(t, map[string]int{"alice@example.org": 250}, send(t, c, msg, "alice@example.org"))
	require.Len(t, st.mail["alice"], 2, "the message and one warning")
	assert.Contains(t, st.mail["alice"][1], "Subject: Your mailbox is 60% full")
	assert.Equal(t, map[string]int{"alice@example.org": 552}, send(t, c, "x\r\n", "alice@example.org"), "already over its quota")
}

// TestCheckAddr: host:port or unix:/absolute/path.
func TestCheckAddr(t *testing.T) {
	assert.NoError(t, lmtp.CheckAddr("127.0.0.1:24"))
	assert.NoError(t, lmtp.CheckAddr("unix:/run/pop3d/lmtp"))
	assert.ErrorContains(t, lmtp.CheckAddr("unix:lmtp"), "absolute")
	assert.ErrorContains(t, lmtp.CheckAddr("localhost"), "host:port")
}
