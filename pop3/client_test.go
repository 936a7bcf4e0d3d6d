package pop3

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scripted serves one connection from a script of exchanges: for each
// command line the client must send, the reply the server writes. It
// records what it received.
func scripted(t *testing.T, greeting string, script [][2]string) (*Client, func() []string) {
	t.Helper()
	cc, sc := net.Pipe()
	got := make(chan []string, 1)
	go func() {
		defer sc.Close()
		var seen []string
		defer func() { got <- seen }()
		_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(sc, greeting); err != nil {
			return
		}
		br := bufio.NewReader(sc)
		for _, ex := range script {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			seen = append(seen, strings.TrimSuffix(l, "\r\n"))
			if _, err := io.WriteString(sc, ex[1]); err != nil {
				return
			}
		}
	}()
	_ = cc.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := NewClient(cc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, func() []string { _ = c.Close(); return <-got }
}

// TestClientSession: a whole session through Client — greeting with its
// APOP timestamp, CAPA, APOP, STAT, LIST, UIDL, RETR read in part then
// left behind, TOP, an -ERR with its code, DELE and QUIT — and the exact
// lines the client sent.
func TestClientSession(t *testing.T) {
	sum := md5.Sum([]byte("<1896.697170952@dbc.mtview.ca.us>tanstaaf"))
	digest := hex.EncodeToString(sum[:])
	c, sent := scripted(t, "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n", [][2]string{
		{"CAPA", "+OK\r\nTOP\r\nSASL PLAIN LOGIN\r\nLOGIN-DELAY 900\r\nEXPIRE NEVER\r\nIMPLEMENTATION pop3kit test\r\n.\r\n"},
		{"APOP mrose " + digest, "+OK mrose's maildrop has 2 messages (320 octets)\r\n"},
		{"STAT", "+OK 2 320\r\n"},
		{"LIST", "+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"},
		{"UIDL 2", "+OK 2 QhdPYR:00WBw1Ph7x7\r\n"},
		{"UIDL", "+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"},
		{"RETR 1", "+OK 120 octets\r\nSubject: a\r\n\r\n..dot\r\n.\r\n"},
		{"TOP 2 0", "+OK\r\nSubject: b\r\n\r\n.\r\n"},
		{"RETR 3", "-ERR [SYS/PERM] no such message\r\n"},
		{"DELE 1", "+OK message 1 deleted\r\n"},
		{"QUIT", "+OK bye\r\n"},
	})
	assert.Equal(t, "<1896.697170952@dbc.mtview.ca.us>", c.Timestamp())
	caps, err := c.Capa()
	require.NoError(t, err)
	assert.True(t, caps.Has("top"))
	assert.Equal(t, []string{"PLAIN", "LOGIN"}, caps.SASL())
	d, ok := caps.LoginDelay()
	assert.True(t, ok)
	assert.Equal(t, 900*time.Second, d)
	_, never, ok := caps.Expire()
	assert.True(t, ok && never)
	assert.Equal(t, "pop3kit test", caps.Implementation())
	require.NoError(t, c.APOP("mrose", "tanstaaf"))
	n, size, err := c.Stat()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, int64(320), size)
	list, err := c.List()
	require.NoError(t, err)
	assert.Equal(t, []ListEntry{{1, 120}, {2, 200}}, list)
	u, err := c.UIDLMsg(2)
	require.NoError(t, err)
	assert.Equal(t, UIDEntry{2, "QhdPYR:00WBw1Ph7x7"}, u)
	uids, err := c.UIDL()
	require.NoError(t, err)
	assert.Len(t, uids, 2)
	body, err := c.Retr(1)
	require.NoError(t, err)
	part := make([]byte, 4)
	_, err = io.ReadFull(body, part)
	require.NoError(t, err)
	assert.Equal(t, "Subj", string(part))
	top, err := c.Top(2, 0) // drops the rest of RETR's body first
	require.NoError(t, err)
	b, err := io.ReadAll(top)
	require.NoError(t, err)
	assert.Equal(t, "Subject: b\r\n\r\n", string(b))
	_, err = c.Retr(3)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "SYS/PERM", e.Code)
	assert.Equal(t, "no such message", e.Text)
	require.NoError(t, c.Dele(1))
	require.NoError(t, c.Quit())
	assert.Equal(t, []string{"CAPA", "APOP mrose " + digest, "STAT", "LIST", "UIDL 2", "UIDL", "RETR 1", "TOP 2 0", "RETR 3", "DELE 1", "QUIT"}, sent())
}

// TestClientAuth: a SASL exchange with a challenge, and a cancel with "*"
// when the mechanism gives up.
func TestClientAuth(t *testing.T) {
	c, sent := scripted(t, "+OK ready\r\n", [][2]string{
		{"AUTH LOGIN", "+ VXNlcm5hbWU6\r\n"},
		{"YWxpY2U=", "+ UGFzc3dvcmQ6\r\n"},
		{"c2VjcmV0", "+OK logged in\r\n"},
	})
	var challenges []string
	err := c.Auth("LOGIN", nil, func(ch []byte) ([]byte, error) {
		challenges = append(challenges, string(ch))
		if string(ch) == "Username:" {
			return []byte("alice"), nil
		}
		return []byte("secret"), nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"Username:", "Password:"}, challenges)
	assert.Equal(t, []string{"AUTH LOGIN", "YWxpY2U=", "c2VjcmV0"}, sent())

	c, sent = scripted(t, "+OK ready\r\n", [][2]string{
		{"AUTH PLAIN =", "+ \r\n"},
		{"*", "-ERR [AUTH] cancelled\r\n"},
	})
	err = c.Auth("PLAIN", []byte{}, func([]byte) ([]byte, error) { return nil, io.ErrShortBuffer })
	assert.ErrorIs(t, err, io.ErrShortBuffer)
	assert.Equal(t, []string{"AUTH PLAIN =", "*"}, sent())

	c, sent = scripted(t, "+OK ready\r\n", [][2]string{
		{"AUTH PLAIN AGEAYg==", "+ \r\n"},
		{"*", "-ERR [AUTH] cancelled\r\n"},
	})
	err = c.Auth("PLAIN", []byte("\x00a\x00b"), nil)
	assert.ErrorContains(t, err, "unexpected SASL challenge")
	assert.Equal(t, []string{"AUTH PLAIN AGEAYg==", "*"}, sent())
}

// TestClientRefuses: a command holding CR or LF is not sent; a bad
// greeting, a truncated body and data injected after +OK to STLS are
// errors.
func TestClientRefuses(t *testing.T) {
	c, _ := scripted(t, "+OK ready\r\n", nil)
	_, err := c.Cmd("USER a\r\nDELE 1")
	assert.ErrorContains(t, err, "CR or LF")

	cc, sc := net.Pipe()
	go func() { _, _ = io.WriteString(sc, "-ERR [SYS/TEMP] busy\r\n"); sc.Close() }()
	_, err = NewClient(cc)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "SYS/TEMP", e.Code)

	c, _ = scripted(t, "+OK ready\r\n", [][2]string{{"RETR 1", "+OK\r\nSubject: a\r\n"}})
	r, err := c.Retr(1)
	require.NoError(t, err)
	_, err = io.ReadAll(r)
	assert.ErrorIs(t, err, errTruncated)

	c, _ = scripted(t, "+OK ready\r\n", [][2]string{{"STLS", "+OK begin TLS\r\n+OK injected\r\n"}})
	err = c.STLS(context.Background(), nil)
	assert.ErrorContains(t, err, "after +OK to STLS")
}
