package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start serves a demo store on 127.0.0.1:0 for the test's duration.
func start(t *testing.T, v pop3gen.Variations) (string, *Store) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	st := DemoStore()
	go func() { _ = Serve(ln, st, v) }()
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String(), st
}

// dial connects with the tests' one client (internal/pop3test), which
// checks every reply line for CRLF, 512 octets and a status indicator, and
// unstuffs multi-line replies.
func dial(t *testing.T, addr string) *pop3test.Conn {
	c := pop3test.Dial(t, addr)
	assert.Equal(t, "+OK memserver ready", c.Greeting)
	return c
}

// count returns the number of messages left in the demo mailbox.
func count(st *Store) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.boxes["demo"].msgs)
}

// TestMemServerSession: a server that implements only authentication and
// a Maildrop of values gets the whole protocol from pop3gen — a full
// session over real TCP.
func TestMemServerSession(t *testing.T) {
	addr, st := start(t, pop3gen.Exchange2010())
	c := dial(t, addr)
	assert.Equal(t, "+OK Capability list follows", c.Cmd("CAPA"))
	assert.Contains(t, c.Multi(), "SASL PLAIN")
	assert.Equal(t, "+OK", c.Cmd("USER Demo"), "Exchange's profile lower-cases names (UserNameCase)")
	// Exchange's profile: storage sizes (ExactSizes off), and a snapshot
	// that a second session may share (MaildropAccess=snapshot).
	assert.Equal(t, "+OK maildrop has 2 messages (87 octets)", c.Cmd("PASS demo"))
	assert.Equal(t, "+OK 2 87", c.Cmd("STAT"))
	assert.Equal(t, "+OK 2 messages (87 octets)", c.Cmd("LIST"))
	assert.Equal(t, []string{"1 38", "2 49"}, c.Multi())
	other := dial(t, addr)
	other.Cmd("USER demo")
	assert.Equal(t, "+OK maildrop has 2 messages (87 octets)", other.Cmd("PASS demo"), "a snapshot is shared")
	assert.Equal(t, "+OK message follows", c.Cmd("RETR 2"))
	assert.Equal(t, []string{"Subject: second", "", ".A line that starts with a dot."}, c.Multi())
	assert.Equal(t, "+OK top of message follows", c.Cmd("TOP 1 0"))
	assert.Equal(t, []string{"Subject: hello", ""}, c.Multi())
	assert.Equal(t, "+OK 1 1", c.Cmd("UIDL 1"))
	assert.Equal(t, "+OK message 1 deleted", c.Cmd("DELE 1"))
	assert.Equal(t, "-ERR message is marked deleted", c.Cmd("RETR 1"))
	assert.Equal(t, "-ERR command valid only after login", dial(t, addr).Cmd("STAT"))
	assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
	assert.Equal(t, 1, count(st))
	// The other session's snapshot still lists message 1, but it is gone
	// (MS-STANXPOP3 C0004).
	assert.Equal(t, "+OK 1 38", other.Cmd("LIST 1"))
	assert.Equal(t, "-ERR message was removed by another session", other.Cmd("RETR 1"))
	assert.Equal(t, "+OK message follows", other.Cmd("RETR 2"))
	assert.Equal(t, []string{"Subject: second", "", ".A line that starts with a dot."}, other.Multi())
}

// TestMemServerPipelining: many commands in one write, answered in order.
func TestMemServerPipelining(t *testing.T) {
	addr, _ := start(t, pop3gen.RFC1939())
	c := dial(t, addr)
	_, err := c.C.Write([]byte("AUTH PLAIN AGRlbW8AZGVtbw==\r\nSTAT\r\nNOOP\r\nQUIT\r\n"))
	require.NoError(t, err)
	// rfc1939's profile: exact sizes (the CRLF form), and the lock.
	assert.Equal(t, "+OK maildrop has 2 messages (93 octets)", c.Line())
	assert.Equal(t, "+OK 2 93", c.Line())
	assert.Equal(t, "+OK", c.Line())
	assert.Equal(t, "+OK signing off (0 messages removed)", c.Line())

	held := dial(t, addr)
	held.Cmd("USER demo")
	held.Cmd("PASS demo")
	second := dial(t, addr)
	second.Cmd("USER demo")
	assert.Equal(t, "-ERR [IN-USE] mailbox in use by another session", second.Cmd("PASS demo"), "RFC 1939's exclusive lock")
	second.Cmd("USER Demo")
	assert.Equal(t, "-ERR [AUTH] invalid user name or password", second.Cmd("PASS demo"), "rfc1939 keeps the name's case")
	held.C.Close() // no QUIT: the runtime closes the Maildrop all the same
	assert.Eventually(t, func() bool {
		third := dial(t, addr)
		third.Cmd("USER demo")
		return third.Cmd("PASS demo") == "+OK maildrop has 2 messages (93 octets)"
	}, 5*time.Second, 20*time.Millisecond, "the end of the connection unlocked the mailbox")
}

// TestPoplib: Python's poplib, a real client, logs in with USER/PASS,
// lists, retrieves a message with a dot line, deletes and quits; memserver
// then holds one message.
func TestPoplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("under CI=true this test must run: python3 is not installed")
		}
		t.Skip("python3 is not installed on this machine; the test drives the real client")
	}
	addr, st := start(t, pop3gen.RFC1939())
	host, port, _ := strings.Cut(addr, ":")
	script := `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=20)
p.user("demo")
p.pass_("demo")
print("stat", p.stat())
print("uidl", p.uidl()[1])
print("retr", p.retr(2)[1])
print("dele", p.dele(1))
print("quit", p.quit())
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "stat (2, 93)")
	assert.Contains(t, string(out), "uidl [b'1 1', b'2 2']")
	assert.Contains(t, string(out), "retr [b'Subject: second', b'', b'.A line that starts with a dot.']")
	assert.Contains(t, string(out), "quit b'+OK signing off (1 message removed)'")
	require.Eventually(t, func() bool { return count(st) == 1 }, 5*time.Second, 10*time.Millisecond)
}
