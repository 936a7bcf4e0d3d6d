package main

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/internal/testserver"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
)

// The backend's messages, as an MDA leaves them in a Maildir (LF line
// ends); the second has lines that start with a dot.
const (
	msg1 = "From: a@example.org\nSubject: one\n\nfirst\n"
	msg2 = "From: b@example.org\nSubject: two\n\n.dot line\n.\nline 2\nline 3\n"
)

// The sizes of the messages in CRLF form, as LIST gives them.
var size1, size2 = len(msg1) + strings.Count(msg1, "\n"), len(msg2) + strings.Count(msg2, "\n")

// backend is pop3d, in process, with a Maildir for alice holding msg1 and
// msg2 (in that order), an empty one for bob, and a passwd-file.
type backend struct {
	addr string
	md   string // alice's Maildir
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "mail")
	testenv.Maildir(t, root, "alice", msg1, msg2)
	testenv.Maildir(t, root, "bob")
	pw := testenv.Passwd(t, filepath.Join(dir, "passwd"), testenv.User{Name: "alice", Password: "secret"}, testenv.User{Name: "bob", Password: "hunter2"})
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.MailRoot, cfg.Passwd, cfg.Profile = root, pw, "rfc1939"
	cfg.FailDelay = 0
	cfg.TrustedNetworks = []string{"127.0.0.0/8"}
	_, addrs := testserver.Serve(t, cfg)
	return &backend{addr: addrs[0].String(), md: filepath.Join(root, "alice")}
}

// files returns the contents of the messages in the backend's maildrop.
func (b *backend) files(t *testing.T) []string {
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(b.md, sub))
		require.NoError(t, err)
		for _, e := range ents {
			data, err := os.ReadFile(filepath.Join(b.md, sub, e.Name()))
			require.NoError(t, err)
			out = append(out, string(data))
		}
	}
	return out
}

// startProxy serves a proxy in front of addr on 127.0.0.1:0.
func startProxy(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &Proxy{Backend: addr, Timeout: 10 * time.Second, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	go func() { _ = p.Serve(ln, pop3gen.RFC1939()) }()
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

// need returns the path of a client program, or skips the test; under
// CI=true, which must run every test, a missing program fails it.
func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("under CI=true this test must run: %s is not installed", prog)
		}
		t.Skipf("%s is not installed on this machine; the test drives the real client", prog)
	}
	return p
}

// TestPoplibThroughProxy: Python's poplib, talking to the proxy, gets
// pop3d's maildrop — STAT, LIST, UIDL, RETR and TOP of a message with
// dot lines, DELE, QUIT — and the backend's maildrop then lacks the
// deleted message, which the proxy DELEs only at QUIT. A wrong password is refused with pop3d's own reply,
// and the third closes the connection; AUTH PLAIN logs in too.
func TestPoplibThroughProxy(t *testing.T) {
	py := need(t, "python3")
	be := startBackend(t)
	addr := startProxy(t, be.addr)
	host, port, _ := strings.Cut(addr, ":")
	script := `
import poplib, sys, base64
host, port = sys.argv[1], int(sys.argv[2])
def try_(f, *a):
    try:
        return f(*a)
    except poplib.error_proto as e:
        return e.args[0]
w = poplib.POP3(host, port, timeout=20)
w.user("alice")
print("wrong", try_(w.pass_, "guess"))
print("stat-unauth", try_(w.stat))
for i in range(2):
    w.user("alice")
    print("wrong", i + 2, try_(w.pass_, "guess"))
try:
    w.noop()
    print("after 3 failures: still open")
except (poplib.error_proto, OSError) as e:
    print("after 3 failures: closed", repr(e))
a = poplib.POP3(host, port, timeout=20)
print("auth", a._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0bob\0hunter2").decode()))
print("auth-stat", a.stat())
a.quit()
p = poplib.POP3(host, port, timeout=20)
print("greeting", p.getwelcome())
print("capa", p.capa())
p.user("alice")
print("pass", p.pass_("secret"))
print("capa-after-login", sorted(p.capa()))
print("stat", p.stat())
print("list", p.list()[1])
print("list1", p.list(1))
print("uidl", p.uidl()[1])
print("retr", p.retr(2)[1])
print("top", p.top(2, 1)[1])
print("retr-none", try_(p.retr, 9))
print("dele", p.dele(1))
print("retr-deleted", try_(p.retr, 1))
print("noop", p.noop())
print("quit", p.quit())
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Contains(t, s, "wrong b'-ERR [AUTH]")
	assert.Contains(t, s, "stat-unauth b'-ERR")
	assert.Contains(t, s, "wrong 3 b'-ERR [AUTH]")
	assert.Contains(t, s, "after 3 failures: closed")
	assert.Contains(t, s, "auth b'+OK")
	assert.Contains(t, s, "auth-stat (0, 0)")
	assert.Contains(t, s, "greeting b'+OK pop3proxy ready'")
	assert.Contains(t, s, "'IMPLEMENTATION': ['pop3proxy']")
	assert.Contains(t, s, "'SASL': ['PLAIN']")
	assert.Contains(t, s, "pass b'+OK")
	assert.Contains(t, s, "capa-after-login ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'TOP', 'UIDL']", "no USER or SASL once logged in")
	assert.Contains(t, s, "stat (2, "+strconv.Itoa(size1+size2)+")")
	assert.Contains(t, s, "list [b'1 "+strconv.Itoa(size1)+"', b'2 "+strconv.Itoa(size2)+"']")
	assert.Contains(t, s, "list1 b'+OK 1 "+strconv.Itoa(size1)+"'")
	assert.Contains(t, s, "uidl [b'1 1', b'2 2']")
	assert.Contains(t, s, "retr [b'From: b@example.org', b'Subject: two', b'', b'.dot line', b'.', b'line 2', b'line 3']")
	assert.Contains(t, s, "top [b'From: b@example.org', b'Subject: two', b'', b'.dot line']")
	assert.Contains(t, s, "retr-none b'-ERR")
	assert.Contains(t, s, "dele b'+OK")
	assert.Contains(t, s, "retr-deleted b'-ERR")
	assert.Contains(t, s, "noop b'+OK")
	assert.Contains(t, s, "quit b'+OK signing off (1 message removed)'")
	assert.Equal(t, []string{msg2}, be.files(t), "the backend removed the message deleted through the proxy")
}

// TestCurlThroughProxy: curl lists and fetches through the proxy.
func TestCurlThroughProxy(t *testing.T) {
	curl := need(t, "curl")
	be := startBackend(t)
	base := "pop3://" + startProxy(t, be.addr) + "/"
	common := []string{"-sS", "--max-time", "20", "-u", "alice:secret"}
	out, err := exec.Command(curl, append(common, base)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "1 "+strconv.Itoa(size1)+"\r\n2 "+strconv.Itoa(size2)+"\r\n", string(out), "LIST")
	out, err = exec.Command(curl, append(common, base+"2")...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, strings.ReplaceAll(msg2, "\n", "\r\n"), string(out), "RETR")
	out, err = exec.Command(curl, append([]string{"-sS", "--max-time", "20", "-u", "alice:wrong"}, base)...).CombinedOutput()
	assert.Error(t, err, "a wrong password is refused: %s", out)
}

// fakeBackend serves one connection with a scripted server: a greeting,
// +OK to USER and PASS, a maildrop of two messages in LIST and UIDL, and
// to any other command the reply script gives for its keyword (+OK when
// it gives none). After a reply that does not end in CRLF, an empty one
// included, it closes the connection. The channel returns the command
// lines it received once the connection is over.
func fakeBackend(t *testing.T, script map[string]string) (string, <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	got := make(chan []string, 1)
	go func() {
		var cmds []string
		defer func() { got <- cmds }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		_, _ = c.Write([]byte("+OK fake\r\n"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\r\n")
			cmds = append(cmds, line)
			keyword, _, _ := strings.Cut(line, " ")
			reply, ok := script[keyword]
			if !ok {
				reply = map[string]string{
					"LIST": "+OK\r\n1 120\r\n2 30\r\n.\r\n",
					"UIDL": "+OK\r\n1 a1\r\n2 a2\r\n.\r\n",
				}[keyword]
			}
			if reply == "" && !ok {
				reply = "+OK\r\n"
			}
			_, _ = c.Write([]byte(reply))
			if !strings.HasSuffix(reply, "\r\n") {
				return
			}
		}
	}()
	return ln.Addr().String(), got
}

// dialProxy connects to the proxy in front of a fake backend with the
// tests' one client and logs in, returning the connection and its reader
// (the tests read the wire as it comes) and what PASS got, with its CRLF.
func dialProxy(t *testing.T, backend string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	p := pop3test.Dial(t, startProxy(t, backend))
	p.OK("USER alice")
	return p.C, p.R, p.Cmd("PASS secret") + "\r\n"
}

// commands returns the command lines the fake backend received.
func commands(t *testing.T, got <-chan []string) []string {
	t.Helper()
	select {
	case cmds := <-got:
		return cmds
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's connection did not end")
		return nil
	}
}

// TestBackendFailures: what the client sees when the backend misbehaves
// inside RETR. A backend that dies inside the body closes the client's
// connection with no "." line (the client can tell the message is cut);
// one that dies before its reply gets -ERR [SYS/TEMP] and the close; a
// bare LF in the backend's data reaches the client as CRLF, and a dot
// after it is stuffed, so the message still ends where the backend's does.
// The +OK states the size LIST gave (the rfc1939 profile: ExactSizes).
func TestBackendFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		retr string // what the backend sends to RETR
		want string // everything the client reads after sending RETR 1
	}{
		{name: "dies inside the body", retr: "+OK 120 octets\r\nSubject: x\r\n\r\npart",
			want: "+OK 120 octets\r\nSubject: x\r\n\r\npart"},
		{name: "dies before the reply", retr: "",
			want: "-ERR [SYS/TEMP] the mail server is not available, try again later\r\n"},
		{name: "bare LF", retr: "+OK 9 octets\r\na\n.\r\nb\r\n.\r\n",
			want: "+OK 120 octets\r\na\r\n..\r\nb\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, _ := fakeBackend(t, map[string]string{"RETR": tc.retr})
			c, r, pass := dialProxy(t, be)
			require.Equal(t, "+OK maildrop has 2 messages (150 octets)\r\n", pass)
			_, err := c.Write([]byte("RETR 1\r\n"))
			require.NoError(t, err)
			if strings.HasSuffix(tc.want, "\r\n.\r\n") {
				// The message was whole: the session goes on.
				got := make([]byte, len(tc.want))
				_, err := io.ReadFull(r, got)
				require.NoError(t, err)
				assert.Equal(t, tc.want, string(got))
				return
			}
			got, err := io.ReadAll(r)
			require.NoError(t, err, "the proxy closed the connection")
			assert.Equal(t, tc.want, string(got))
		})
	}
}

// TestBackendSession: what the proxy sends the backend. It reads LIST
// and UIDL once at login and refuses listings that are not of messages 1
// to n; TOP is the backend's TOP (TopOpener), cut at the count should
// the backend send more, and the backend's next reply is still read right; DELE reaches the backend only at QUIT,
// whose reply is the core's unless a DELE failed; a client that goes
// without QUIT makes the proxy close the backend session without QUIT,
// so nothing is removed.
func TestBackendSession(t *testing.T) {
	const login = "USER alice|PASS secret|LIST|UIDL"
	for _, tc := range []struct {
		name   string
		script map[string]string
		pass   string   // the reply to PASS
		send   []string // after login, each answered with one status line (TOP: its listing follows)
		want   []string // the status lines the client gets
		quit   bool     // end with QUIT, else the client closes the connection
		cmds   string   // what the backend received, |-separated
	}{
		{name: "QUIT removes", send: []string{"DELE 2", "NOOP"}, want: []string{"+OK message 2 deleted", "+OK"},
			quit: true, cmds: login + "|DELE 2|QUIT"},
		{name: "a failed DELE still QUITs", script: map[string]string{"DELE": "-ERR no such message\r\n"},
			send: []string{"DELE 1", "DELE 2"}, want: []string{"+OK message 1 deleted", "+OK message 2 deleted"},
			quit: true, cmds: login + "|DELE 1|DELE 2|QUIT"},
		{name: "no QUIT, no DELE", send: []string{"DELE 1"}, want: []string{"+OK message 1 deleted"},
			cmds: login},
		{name: "TOP, then more", script: map[string]string{"TOP": "+OK\r\nA: b\r\n\r\nl1\r\nl2\r\n.\r\n"},
			send: []string{"TOP 2 0", "DELE 1"}, want: []string{"+OK top of message follows", "+OK message 1 deleted"},
			quit: true, cmds: login + "|TOP 2 0|DELE 1|QUIT"},
		{name: "UIDL refused", script: map[string]string{"UIDL": "-ERR not supported\r\n"},
			pass: "-ERR [SYS/TEMP] the mail server is not available, try again later", cmds: login},
		{name: "listings disagree", script: map[string]string{"UIDL": "+OK\r\n1 a1\r\n3 a3\r\n.\r\n"},
			pass: "-ERR [SYS/TEMP] the mail server is not available, try again later", cmds: login},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, got := fakeBackend(t, tc.script)
			c, r, pass := dialProxy(t, be)
			if tc.pass == "" {
				tc.pass = "+OK maildrop has 2 messages (150 octets)"
			}
			require.Equal(t, tc.pass+"\r\n", pass)
			for i, cmd := range tc.send {
				_, err := c.Write([]byte(cmd + "\r\n"))
				require.NoError(t, err)
				line, err := r.ReadString('\n')
				require.NoError(t, err)
				assert.Equal(t, tc.want[i]+"\r\n", line, cmd)
				if strings.HasPrefix(cmd, "TOP") {
					rest, err := r.ReadString('.')
					require.NoError(t, err)
					assert.Equal(t, "A: b\r\n\r\n.", rest)
					_, _ = r.ReadString('\n')
				}
			}
			if tc.quit {
				_, err := c.Write([]byte("QUIT\r\n"))
				require.NoError(t, err)
				line, err := r.ReadString('\n')
				require.NoError(t, err)
				if tc.script["DELE"] != "" {
					assert.Equal(t, "-ERR [SYS/TEMP] some messages marked deleted could not be removed\r\n", line)
				} else {
					assert.Equal(t, "+OK signing off (1 message removed)\r\n", line)
				}
			}
			_ = c.Close()
			assert.Equal(t, strings.Split(tc.cmds, "|"), commands(t, got))
		})
	}
}
