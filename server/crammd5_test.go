package server_test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server"
)

func withCRAM(c *server.Config) { c.SASLMechanisms = []string{"CRAM-MD5", "PLAIN"} }

// TestCRAMMD5Curl logs in with curl's CRAM-MD5 against a {CRAM-MD5}
// secret and a PLAIN one, refuses a wrong password and an account with
// only a one-way hash, and is off unless listed.
func TestCRAMMD5Curl(t *testing.T) {
	clause.Covers(t, "RFC2195-2-CRAMMD5")
	curl := need(t, "curl")
	e := newEnv(t, "exchange2010", scramUsers(t), withCRAM, untrusted)
	e.deliver("cram", msg1, "")
	run := func(user, pw string) (string, error) {
		out, err := exec.Command(curl, "-sS", "--max-time", "20", "-u", user+":"+pw,
			"--login-options", "AUTH=CRAM-MD5", "pop3://"+e.addr+"/").CombinedOutput()
		return string(out), err
	}
	out, err := run("cram", "cram pass")
	require.NoError(t, err, out)
	assert.Equal(t, "1 41\r\n", out, "{CRAM-MD5} secret, on a connection where plaintext is refused")
	out, err = run("alice", "secret")
	require.NoError(t, err, out)
	assert.Equal(t, "", strings.TrimSpace(out), "PLAIN secret: logged in to an empty maildrop")
	for _, u := range [][2]string{{"cram", "cram pasS"}, {"alice", "wrong"}, {"bob", "hunter2"}, {"nobody", "x"}} {
		out, err := run(u[0], u[1])
		assert.Error(t, err, "%v: %s", u, out)
		assert.Contains(t, out, "denied", "%v", u)
	}

	off := newEnv(t, "exchange2010", scramUsers(t))
	c := off.dial()
	assert.Equal(t, "-ERR "+pop3.ErrUnknownMechanism.Text, c.Cmd("AUTH CRAM-MD5"), "off unless listed")
}

// TestCRAMMD5Protocol: the challenge is unique and in msg-id form, the
// digest checks in either case, and malformed answers fail as logins do.
func TestCRAMMD5Protocol(t *testing.T) {
	e := newEnv(t, "exchange2010", scramUsers(t), withCRAM)
	challenge := func(c *pop3test.Conn) string {
		r := c.Cmd("AUTH CRAM-MD5")
		require.True(t, strings.HasPrefix(r, "+ "), r)
		b, err := base64.StdEncoding.DecodeString(r[2:])
		require.NoError(t, err)
		assert.Regexp(t, `^<[0-9a-f]{16}\.[0-9]+@pop3kit\.test>$`, string(b))
		return string(b)
	}
	answer := func(user, pw, ch string) string {
		m := hmac.New(md5.New, []byte(pw))
		m.Write([]byte(ch))
		return base64.StdEncoding.EncodeToString([]byte(user + " " + hex.EncodeToString(m.Sum(nil))))
	}
	c := e.dial()
	ch := challenge(c)
	assert.Equal(t, okEmpty, c.Cmd(answer("cram", "cram pass", ch)))
	c = e.dial()
	assert.NotEqual(t, ch, challenge(c), "a new challenge each time")
	assert.Equal(t, authError, c.Cmd(answer("cram", "cram pass", ch)), "an answer to an old challenge")
	for _, bad := range []string{"cram", "cram 0123", "cram " + strings.Repeat("zz", 16), strings.Repeat("x", 400)} {
		c = e.dial()
		challenge(c)
		assert.Equal(t, authError, c.Cmd(base64.StdEncoding.EncodeToString([]byte(bad))), bad)
	}
	c = e.dial()
	assert.Equal(t, authError, c.Cmd("AUTH CRAM-MD5 "+base64.StdEncoding.EncodeToString([]byte("cram x"))), "no initial response")
}
