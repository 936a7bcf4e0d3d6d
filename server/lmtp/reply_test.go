package lmtp

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// captured is a net.Conn that keeps what is written to it.
type captured struct {
	net.Conn
	buf bytes.Buffer
}

func (c *captured) Write(p []byte) (int, error) { return c.buf.Write(p) }

// TestReplyLinesBounded: found by FuzzLMTPSession
// (server/testdata/fuzz/FuzzLMTPSession/d0d7b61b9ad77e71): go-smtp echoes
// LHLO's argument in its greeting, so an LHLO of 700 octets with control
// characters was answered with a reply line of 700, beyond RFC 5321
// §4.5.3.1.5's 512. Every reply line is now cut to 512 octets with its
// CRLF, other than printable octets become "?", and a CRLF split across
// writes stays one line end.
func TestReplyLinesBounded(t *testing.T) {
	cc := &captured{}
	c := &slotConn{Conn: cc}
	domain := "0\x16" + strings.Repeat("\xf6", 700)
	for _, part := range []string{"250-Hello " + domain + "\r", "\n250-PIPELINING\r\n", "250 SIZE\r\n"} {
		n, err := c.Write([]byte(part))
		assert.NoError(t, err)
		assert.Equal(t, len(part), n)
	}
	lines := strings.SplitAfter(cc.buf.String(), "\r\n")
	assert.Equal(t, []string{"250-Hello 0?" + strings.Repeat("?", 510-len("250-Hello 0?")) + "\r\n", "250-PIPELINING\r\n", "250 SIZE\r\n", ""}, lines)
	for _, l := range lines {
		assert.LessOrEqual(t, len(l), 512)
	}
}
