package memdrop_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3/memdrop"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// handler logs anyone in to its maildrop.
type handler struct{ d *memdrop.Maildrop }

func (handler) User(*pop3.Writer, []byte) error                   { return nil }
func (h handler) Pass(user, secret []byte) (pop3.Maildrop, error) { return h.d, nil }

// serve serves d to one session on the loopback and returns a client
// logged in to it.
func serve(t *testing.T, d *memdrop.Maildrop) *pop3.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	v := pop3gen.RFC1939()
	srv := &pop3.Server{Dialect: &v, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, LoginPolicy: pop3.LoginPolicy{FailDelay: -1},
		NewHandler: func(*pop3.Conn) (pop3.Handler, error) { return handler{d}, nil }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c, err := pop3.Dial(ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.User("u"))
	require.NoError(t, c.Pass("p"))
	return c
}

// TestMaildropServed: the runtime serves a memdrop as RFC 1939 says —
// exact sizes of the CRLF form, the unique-ids given (or the position's),
// bodies in CRLF form and dot-stuffed, TOP, and UPDATE removing exactly
// the message marked; the maildrop is closed once when the session ends.
func TestMaildropServed(t *testing.T) {
	d := memdrop.New(
		memdrop.Message{UID: "first", Body: []byte("Subject: a\n\n.dot\nbody\n")},
		memdrop.Message{Body: []byte("Subject: b\r\n\r\nb\r\n")},
	)
	c := serve(t, d)
	n, octets, err := c.Stat()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, int64(len("Subject: a\r\n\r\n.dot\r\nbody\r\n")+len("Subject: b\r\n\r\nb\r\n")), octets)
	uids, err := c.UIDL()
	require.NoError(t, err)
	require.Len(t, uids, 2)
	assert.Equal(t, "first", uids[0].UID)
	assert.Equal(t, "2", uids[1].UID, "a message without a UID gets its position")
	r, err := c.Retr(1)
	require.NoError(t, err)
	body, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "Subject: a\r\n\r\n.dot\r\nbody\r\n", string(body), "unstuffed by the client, in CRLF form")
	r, err = c.Top(1, 0)
	require.NoError(t, err)
	top, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "Subject: a\r\n\r\n", string(top))
	require.NoError(t, c.Dele(2))
	require.NoError(t, c.Quit())
	assert.Equal(t, []int{1}, d.Removed())
	assert.Eventually(t, func() bool { return d.Closes() == 1 }, 5*time.Second, 10*time.Millisecond)
}

// TestMaildropStorageSizes: with StorageSizes, STAT and LIST state the
// octets stored (MS-STANXPOP3 §2.1.4), and ExactSize the CRLF form's.
func TestMaildropStorageSizes(t *testing.T) {
	d := memdrop.New(memdrop.Message{Body: []byte("a\nb\n")})
	d.StorageSizes = true
	assert.Equal(t, int64(4), d.Size(0))
	assert.Equal(t, int64(6), d.ExactSize(0))
	d.StorageSizes = false
	assert.Equal(t, int64(6), d.Size(0))
}

// TestMaildropRemoveChecks: an index out of range, or one removed before,
// is an error and removes nothing — a test of a runtime sees the bug.
func TestMaildropRemoveChecks(t *testing.T) {
	d := memdrop.New(memdrop.Message{Body: []byte("x\n")}, memdrop.Message{Body: []byte("y\n")})
	assert.Error(t, d.Remove([]int{0, 2}))
	assert.Empty(t, d.Removed())
	require.NoError(t, d.Remove([]int{1}))
	assert.Error(t, d.Remove([]int{1}))
	assert.Error(t, d.Remove([]int{-1}))
	assert.Equal(t, []int{1}, d.Removed())
}
