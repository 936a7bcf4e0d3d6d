package server_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3/memdrop"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/store"
)

// memStore is a Store and Authenticator of values: the seam another
// store (PostgreSQL) plugs into, with nothing of Maildir or passwd-file.
type memStore struct {
	mu       sync.Mutex
	msgs     []string
	drops    []*memdrop.Maildrop // those Open returned
	open     []store.OpenOptions
	accounts map[string]*account.Account
}

func (s *memStore) Lookup(user string) (*account.Account, bool, error) {
	a, ok := s.accounts[user]
	return a, ok, nil
}

// Open returns the library's memory maildrop of the store's messages,
// with the unique-ids and sizes the options ask for.
func (s *memStore) Open(ctx context.Context, user string, o store.OpenOptions) (pop3.Maildrop, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if user != "carol" {
		return nil, store.ErrNoMaildrop
	}
	s.open = append(s.open, o)
	var msgs []memdrop.Message
	for i, m := range s.msgs {
		msgs = append(msgs, memdrop.Message{UID: "mem-" + strconv.Itoa(i), Body: []byte(m)})
	}
	d := memdrop.New(msgs...)
	d.StorageSizes = !o.ExactSizes
	s.drops = append(s.drops, d)
	return d, nil
}

// TestStoreSeam: pop3d serves a Store and Authenticator of its caller's
// (Config.Store, Config.Users) with no Maildir or passwd-file at all:
// the login checks the account's hash, the options follow the profile,
// sizes and unique-ids come from the store's maildrop, UPDATE removes exactly the
// marked message, and a maildrop the store refuses for good is [SYS/PERM].
func TestStoreSeam(t *testing.T) {
	field, err := account.HashPassword("SHA512-CRYPT", "pw")
	require.NoError(t, err)
	acct, err := account.ParseAccount("carol:" + field)
	require.NoError(t, err)
	dave, err := account.ParseAccount("dave:" + field)
	require.NoError(t, err)
	st := &memStore{msgs: []string{"Subject: one\n\nbody\n", "Subject: two\n\nbody 2\n"},
		accounts: map[string]*account.Account{"carol": acct, "dave": dave}}
	e := newEnv(t, "rfc1939", func(c *server.Config) {
		c.Store, c.Users, c.MailRoot, c.Passwd = st, st, "", ""
		c.AddSet("UIDLFormat=dovecot")
	})
	c := e.login("carol", "pw")
	// rfc1939: ExactSizes, the CRLF form's size.
	exact := len(st.msgs[0]) + len(st.msgs[1]) + strings.Count(st.msgs[0]+st.msgs[1], "\n")
	assert.Equal(t, "+OK 2 "+strconv.Itoa(exact), c.Cmd("STAT"))
	c.Send("UIDL")
	assert.Equal(t, []string{"+OK unique-id listing follows", "1 mem-0", "2 mem-1"}, c.Multi())
	assert.Equal(t, "+OK message 2 deleted", c.Cmd("DELE 2"))
	assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
	st.mu.Lock()
	require.Len(t, st.drops, 1)
	assert.Equal(t, []int{1}, st.drops[0].Removed())
	assert.Equal(t, []store.OpenOptions{{Exclusive: true, ExactSizes: true, DovecotUIDs: true}}, withoutLog(st.open))
	st.mu.Unlock()

	d := e.dial()
	d.Cmd("USER carol")
	assert.Contains(t, d.Cmd("PASS wrong"), "-ERR [AUTH]")
	d.Cmd("USER dave")
	assert.Contains(t, d.Cmd("PASS pw"), "-ERR [SYS/PERM]")
}

func withoutLog(o []store.OpenOptions) []store.OpenOptions {
	out := make([]store.OpenOptions, len(o))
	for i, x := range o {
		x.Log = nil
		out[i] = x
	}
	return out
}
