package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server"
)

// TestCoreClientAgainstPop3d: the core's client side (pop3.Client on
// pop3gen.ReplyReader) reads everything pop3d sends over TCP — the
// greeting and its APOP timestamp, CAPA with arguments, STLS, SASL PLAIN,
// STAT, LIST, UIDL, RETR and TOP bodies with dot-stuffed lines, -ERR with
// response codes — under every profile, and gets back the bytes that
// were delivered.
func TestCoreClientAgainstPop3d(t *testing.T) {
	for _, p := range allProfiles {
		t.Run(p, func(t *testing.T) {
			e := newEnv(t, p, func(c *server.Config) {
				c.Expire, c.Implementation = "NEVER", "pop3kit test"
			})
			e.deliver("alice", msg1, "")
			e.deliver("alice", msg2, "")

			c, err := pop3.Dial(e.addr)
			require.NoError(t, err)
			defer c.Close()
			_ = c.Conn().SetDeadline(time.Now().Add(30 * time.Second))
			assert.True(t, strings.HasPrefix(c.Greeting(), "pop3kit"), c.Greeting())

			caps, err := c.Capa()
			require.NoError(t, err)
			for _, name := range []string{"TOP", "UIDL", "RESP-CODES", "PIPELINING", "STLS"} {
				assert.True(t, caps.Has(name), "CAPA lists %s: %v", name, caps)
			}
			assert.Contains(t, caps.SASL(), "PLAIN")
			_, never, ok := caps.Expire()
			assert.True(t, ok && never, "EXPIRE NEVER")
			assert.Equal(t, "pop3kit test", caps.Implementation())

			require.NoError(t, c.STLS(context.Background(), &tls.Config{RootCAs: e.pool, ServerName: "localhost"}))
			caps, err = c.Capa()
			require.NoError(t, err)
			assert.False(t, caps.Has("STLS"), "not after STLS")

			err = c.Auth("PLAIN", []byte("\x00alice\x00wrong"), nil)
			var perr *pop3.Error
			require.ErrorAs(t, err, &perr)
			assert.Equal(t, pop3.CodeAuth, perr.Code)
			require.NoError(t, c.Auth("PLAIN", nil, func(challenge []byte) ([]byte, error) {
				assert.Empty(t, challenge)
				return []byte("\x00alice\x00secret"), nil
			}), "PLAIN with an empty challenge")

			n, size, err := c.Stat()
			require.NoError(t, err)
			assert.Equal(t, 2, n)
			list, err := c.List()
			require.NoError(t, err)
			require.Len(t, list, 2)
			assert.Equal(t, size, list[0].Octets+list[1].Octets, "STAT is the sum of LIST")
			one, err := c.ListMsg(2)
			require.NoError(t, err)
			assert.Equal(t, list[1], one)
			uids, err := c.UIDL()
			require.NoError(t, err)
			require.Len(t, uids, 2)
			u, err := c.UIDLMsg(1)
			require.NoError(t, err)
			assert.Equal(t, uids[0], u)

			for i, m := range []string{msg1, msg2} {
				body, err := c.Retr(uint32(i + 1))
				require.NoError(t, err)
				b, err := io.ReadAll(body)
				require.NoError(t, err)
				assert.Equal(t, strings.ReplaceAll(m, "\n", "\r\n"), string(b), "RETR %d", i+1)
			}
			top, err := c.Top(2, 1)
			require.NoError(t, err)
			b, err := io.ReadAll(top)
			require.NoError(t, err)
			assert.Equal(t, "From: b@example.org\r\nSubject: two\r\n\r\n.dot line\r\n", string(b))
			// A body left unread is dropped by the next command.
			_, err = c.Retr(1)
			require.NoError(t, err)
			require.NoError(t, c.Noop())

			require.NoError(t, c.Dele(1))
			_, err = c.Retr(1)
			require.Error(t, err)
			assert.True(t, errors.As(err, &perr), "a -ERR is an *Error: %v", err)
			r, err := c.Cmd("RETR 99")
			assert.Error(t, err)
			assert.Equal(t, pop3.StatusErr, r.Status)
			require.NoError(t, c.Rset())
			require.NoError(t, c.Quit())
			assert.Len(t, e.files("alice"), 2, "RSET unmarked the message")
		})
	}
}

// TestCoreClientResponseCodes: the parser reads pop3d's response codes —
// [IN-USE] from a locked maildrop, [AUTH] from a bad password — and the
// APOP timestamp, as a client decides on them.
func TestCoreClientResponseCodes(t *testing.T) {
	e := newEnv(t, "rfc1939", set("APOP=true"))
	e.deliver("alice", msg1, "")
	first, err := pop3.Dial(e.addr)
	require.NoError(t, err)
	defer first.Close()
	require.NotEmpty(t, first.Timestamp(), "greeting %q carries a timestamp", first.Greeting())
	require.NoError(t, first.APOP("alice", "secret"))

	c, err := pop3.Dial(e.addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.User("alice"))
	r, err := c.Cmd("PASS secret")
	require.Error(t, err)
	assert.True(t, r.HasCode(pop3.CodeInUse), "%q", r.Code)
	require.NoError(t, c.User("alice"))
	err = c.Pass("wrong")
	var perr *pop3.Error
	if assert.ErrorAs(t, err, &perr) {
		assert.Equal(t, pop3.CodeAuth, perr.Code)
	}
	require.NoError(t, first.Quit())
}
