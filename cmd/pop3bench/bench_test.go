package main

import (
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/pop3"
)

// TestStuff: the floor's wire form is the message's CRLF form, a final
// line break added, lines starting with a dot stuffed, then ".".
func TestStuff(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\n":      "a\r\nb\r\n.\r\n",
		".x\r\n..y\n": "..x\r\n...y\r\n.\r\n",
		"no break":    "no break\r\n.\r\n",
		"":            ".\r\n",
		"a\r\n.\r\nb": "a\r\n..\r\nb\r\n.\r\n",
	} {
		assert.Equal(t, want, string(stuff([]byte(in))), "%q", in)
	}
}

// TestFloorServesTheSite: the floor answers the session mix from the
// site's Maildirs, and a client reads back every message as the site
// holds it (in CRLF form), so the floor and the servers measured against
// it send the same bytes.
func TestFloorServesTheSite(t *testing.T) {
	st, err := newSite(t.TempDir(), options{users: 2, msgs: 3, msgSize: 2000})
	require.NoError(t, err)
	drops, err := loadFloor(st.mail)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go serveFloor(ln, drops)
	login, octets, err := session(ln.Addr().String(), st.users[1])
	require.NoError(t, err)
	assert.Positive(t, login)
	var want int64
	for _, m := range st.msgs {
		want += int64(len(testenv.CRLFForm(m)))
	}
	assert.Equal(t, want, octets, "every message, in CRLF form")
	c, err := pop3.Dial(ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.User(st.users[0]))
	require.NoError(t, c.Pass(password))
	n, size, err := c.Stat()
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, want, size)
	r, err := c.Retr(2)
	require.NoError(t, err)
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, string(testenv.CRLFForm(st.msgs[1])), string(b))
}
