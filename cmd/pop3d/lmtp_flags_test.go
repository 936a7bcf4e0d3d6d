package main

import (
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeLMTPFlags: --lmtp unix:/path listens for LMTP beside POP3, and
// --max-message-size bounds what it takes; a delivered message is in the
// demo user's next session.
func TestServeLMTPFlags(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "lmtp.sock")
	addrs, out := startServe(t, "--demo-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0",
		"--lmtp", "unix:"+sock, "--max-message-size", "1KiB")
	conn, err := net.Dial("unix", sock)
	require.NoError(t, err)
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	require.NoError(t, c.Hello("mta.test"))
	var se *smtp.SMTPError
	require.ErrorAs(t, c.Mail("mta@example.org", &smtp.MailOptions{Size: 1025}), &se)
	assert.Equal(t, 552, se.Code, "over --max-message-size")
	require.NoError(t, c.Reset())
	require.NoError(t, c.SendMail("mta@example.org", []string{"demo@example.org"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")))

	m := regexp.MustCompile(`user "demo", password "([a-z0-9]+)"`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	got := talk(t, addrs[0].String(), "USER demo", "PASS "+m[1], "STAT", "QUIT")
	assert.Regexp(t, `^\+OK 4 \d+$`, got[3], "the demo's 3 messages and the delivered one")
	assert.Contains(t, out.String(), "listening for LMTP")
}
