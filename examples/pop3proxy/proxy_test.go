package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	md := filepath.Join(root, "alice")
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(md, sub), 0o700))
		require.NoError(t, os.MkdirAll(filepath.Join(root, "bob", sub), 0o700))
	}
	for i, m := range []string{msg1, msg2} {
		name := "17640000" + string(rune('0'+i)) + "0.M1P1.test"
		require.NoError(t, os.WriteFile(filepath.Join(md, "new", name), []byte(m), 0o600))
	}
	var passwd string
	for _, u := range []struct{ name, password string }{{"alice", "secret"}, {"bob", "hunter2"}} {
		f, err := server.HashPassword("PLAIN", u.password)
		require.NoError(t, err)
		passwd += u.name + ":" + f + "::::::\n"
	}
	pw := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(pw, []byte(passwd), 0o600))
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.MailRoot, cfg.Passwd, cfg.Profile = root, pw, "rfc1939"
	cfg.FailDelay = 0
	cfg.TrustedNetworks = []string{"127.0.0.0/8"}
	srv, err := server.New(cfg, nil)
	require.NoError(t, err)
	addrs, err := srv.Listen()
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &backend{addr: addrs[0].String(), md: md}
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
	p := &Proxy{Backend: addr, Timeout: 10 * time.Second}
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
// deleted message. A wrong password is refused with pop3d's own reply,
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
	assert.Contains(t, s, "quit b'+OK pop3kit signing off (1 messages removed)'", "pop3d's QUIT reply, passed on")
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
// +OK to USER and PASS, then for RETR the reply given, after which it
// closes the connection.
func fakeBackend(t *testing.T, retr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
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
			if strings.HasPrefix(line, "RETR") {
				_, _ = c.Write([]byte(retr))
				return
			}
			_, _ = c.Write([]byte("+OK\r\n"))
		}
	}()
	return ln.Addr().String()
}

// TestBackendFailures: what the client sees when the backend misbehaves
// inside RETR. A backend that dies inside the body closes the client's
// connection with no "." line (the client can tell the message is cut);
// one that dies before its reply gets -ERR [SYS/TEMP] and the close; a
// bare LF in the backend's data reaches the client as CRLF, and a dot
// after it is stuffed, so the message still ends where the backend's does.
func TestBackendFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		retr string // what the backend sends to RETR before closing
		want string // everything the client reads after sending RETR 1
	}{
		{name: "dies inside the body", retr: "+OK 100 octets\r\nSubject: x\r\n\r\npart",
			want: "+OK 100 octets\r\nSubject: x\r\n\r\npart"},
		{name: "dies before the reply", retr: "",
			want: "-ERR [SYS/TEMP] the mail server is not available, try again later\r\n"},
		{name: "bare LF", retr: "+OK 9 octets\r\na\n.\r\nb\r\n.\r\n",
			want: "+OK 9 octets\r\na\r\n..\r\nb\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startProxy(t, fakeBackend(t, tc.retr))
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
			r := bufio.NewReader(c)
			for _, cmd := range []string{"", "USER alice", "PASS secret"} {
				if cmd != "" {
					_, err := c.Write([]byte(cmd + "\r\n"))
					require.NoError(t, err)
				}
				line, err := r.ReadString('\n')
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(line, "+OK"), "%s: %q", cmd, line)
			}
			_, err = c.Write([]byte("RETR 1\r\n"))
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
