package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pires/go-proxyproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/internal/testpg"
)

// frontEnd is one pop3d process of the scale-out test.
type frontEnd struct {
	cmd        *exec.Cmd
	pop3, lmtp string
	log        *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startFrontEnd runs pop3d serve on the PostgreSQL store, taking PROXY
// headers from HAProxy (127.0.0.1), with LMTP.
func startFrontEnd(t *testing.T, bin, dsn string) *frontEnd {
	t.Helper()
	fe := &frontEnd{pop3: freeLoopback(t), lmtp: freeLoopback(t), log: &lockedLog{}}
	args := []string{"serve", "--store", dsn, "--listen", fe.pop3, "--lmtp", fe.lmtp,
		"--profile", "rfc1939", "--proxy-protocol-from", "127.0.0.1/32", "--trusted-networks", "127.0.0.0/8",
		"--fail-delay", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "--user", "nobody", "--group", "nogroup")
	}
	fe.cmd = exec.Command(bin, args...)
	fe.cmd.Stdout, fe.cmd.Stderr = fe.log, fe.log
	require.NoError(t, fe.cmd.Start())
	t.Cleanup(func() { _ = fe.cmd.Process.Kill(); _ = fe.cmd.Wait() })
	require.Eventually(t, func() bool { return strings.Contains(fe.log.String(), "serving POP3") }, 30*time.Second, 20*time.Millisecond,
		"front end did not start: %s", fe.log.String())
	return fe
}

// kill ends the front end as a crash would: SIGKILL, no shutdown.
func (fe *frontEnd) kill() {
	_ = fe.cmd.Process.Signal(syscall.SIGKILL)
	_ = fe.cmd.Wait()
}

// dialFront connects to a front end directly with the tests' one client,
// introduced by a PROXY header as HAProxy would (the front ends require
// one from 127.0.0.1).
func dialFront(t *testing.T, fe *frontEnd) *pop3test.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fe.pop3)
	require.NoError(t, err)
	src := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 40000}
	_, err = proxyproto.HeaderProxyFromAddrs(2, src, c.RemoteAddr()).WriteTo(c)
	require.NoError(t, err)
	return pop3test.Greeted(t, c)
}

// uidl returns the unique-id listing of c's maildrop.
func uidl(c *pop3test.Conn) []string {
	c.OK("UIDL")
	return c.Multi()
}

// loginOnceFree logs alice in on fe as soon as her maildrop is free (the
// lock of a killed front end lapses within its 15 s lease).
func loginOnceFree(t *testing.T, fe *frontEnd, why string) *pop3test.Conn {
	t.Helper()
	var s *pop3test.Conn
	var last string
	require.Eventually(t, func() bool {
		s = dialFront(t, fe)
		s.Cmd("USER alice")
		last = s.Cmd("PASS secret")
		if !strings.HasPrefix(last, "+OK") {
			_ = s.C.Close() // not left to count against the address's limit
			return false
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "%s; the last reply: %s\n%s", why, last, fe.log.String())
	return s
}

// lmtpDeliver hands a message to a front end's LMTP listener.
func lmtpDeliver(t *testing.T, fe *frontEnd, rcpt, body string) {
	t.Helper()
	conn, err := net.Dial("tcp", fe.lmtp)
	require.NoError(t, err)
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	require.NoError(t, c.Hello("mta.test"))
	require.NoError(t, c.Mail("mta@example.org", nil))
	require.NoError(t, c.Rcpt(rcpt, nil))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = w.Write([]byte(body))
	require.NoError(t, err)
	_, err = w.CloseWithLMTPResponse()
	require.NoError(t, err)
}

// TestScaleOut: HAProxy (Debian's package) in front of three pop3d front
// ends on one PostgreSQL, sending PROXY protocol v2. Real clients (curl,
// Python's poplib) go through HAProxy; rfc1939's exclusive lock holds
// across front ends and is released when the front end holding it is
// killed; a front end killed after DELE, as its client QUITs, loses no
// message it was not told to remove; and a message delivered by LMTP
// through one front end is seen by sessions on the others.
func TestScaleOut(t *testing.T) {
	haproxy := findTool(t, "haproxy", "haproxy")
	curl := findTool(t, "curl", "curl")
	python := findTool(t, "python3", "python3")
	dsn := testpg.DB(t)

	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := testenv.Pop3d(t)

	// The users and their mail arrive by pop3d import, from a Maildir and
	// a passwd-file.
	root := filepath.Join(dir, "mail")
	var msgs []string
	for _, subj := range []string{"one", "two", "three"} {
		msgs = append(msgs, "Subject: "+subj+"\n\nbody "+subj+"\n")
	}
	testenv.Maildir(t, root, "alice", msgs...)
	pw := testenv.Passwd(t, filepath.Join(dir, "passwd"), testenv.User{Name: "alice", Password: "secret", Scheme: "SHA512-CRYPT"})
	importArgs := []string{"import", "--from", "maildir", root, "--store", dsn, "--passwd", pw}
	if os.Geteuid() == 0 {
		// As root, import reads the Maildir as the account the front
		// ends serve as, as every command that opens a mail root does.
		ids, err := lookupNobody()
		require.NoError(t, err)
		require.NoError(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(p, ids[0], ids[1])
		}))
		importArgs = append(importArgs, "--user", "nobody", "--group", "nogroup")
	}
	out, err := exec.Command(bin, importArgs...).CombinedOutput()
	require.NoError(t, err, "import: %s", out)

	fes := []*frontEnd{startFrontEnd(t, bin, dsn), startFrontEnd(t, bin, dsn), startFrontEnd(t, bin, dsn)}
	front := "127.0.0.2:" + strings.Split(freeLoopback(t), ":")[1]
	cfg := fmt.Sprintf("global\n\tmaxconn 200\ndefaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 60s\n\ttimeout server 60s\n"+
		"frontend pop3\n\tbind %s\n\tdefault_backend fronts\nbackend fronts\n\tbalance roundrobin\n", front)
	for i, fe := range fes {
		cfg += fmt.Sprintf("\tserver fe%d %s send-proxy-v2 source 127.0.0.1\n", i, fe.pop3)
	}
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))
	hp := exec.Command(haproxy, "-db", "-f", cfgFile)
	var hpLog lockedLog
	hp.Stdout, hp.Stderr = &hpLog, &hpLog
	require.NoError(t, hp.Start())
	t.Cleanup(func() { _ = hp.Process.Kill(); _ = hp.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "haproxy: %s", hpLog.String())

	// Real clients through HAProxy, each connection to the next front end.
	for i := range 3 {
		got, err := exec.Command(curl, "-sS", "--max-time", "20", "-u", "alice:secret", "pop3://"+front+"/1").CombinedOutput()
		require.NoError(t, err, "curl %d: %s", i, got)
		assert.Contains(t, string(got), "Subject: one")
	}
	py := fmt.Sprintf(`import poplib
p = poplib.POP3(%q, %s)
p.user("alice"); p.pass_("secret")
print("stat", p.stat()); print("uidl", p.uidl()[1]); p.quit()`, strings.Split(front, ":")[0], strings.Split(front, ":")[1])
	got, err := exec.Command(python, "-c", py).CombinedOutput()
	require.NoError(t, err, "%s", got)
	assert.Contains(t, string(got), "stat (3,")
	for _, fe := range fes {
		assert.Regexp(t, `remote=192\.0\.2\.|remote=127\.0\.0\.1:\d+ user=alice`, fe.log.String(), "each front end saw a client")
	}

	// The lock across front ends, and its release when its holder dies.
	holder := dialFront(t, fes[0])
	holder.Cmd("USER alice")
	require.True(t, strings.HasPrefix(holder.Cmd("PASS secret"), "+OK"))
	uidls := uidl(holder)
	require.Len(t, uidls, 3)
	other := dialFront(t, fes[1])
	other.Cmd("USER alice")
	assert.Contains(t, other.Cmd("PASS secret"), "-ERR [IN-USE]", "locked by a session on another front end")
	fes[0].kill()
	after := loginOnceFree(t, fes[1], "the dead front end's lock is released")
	assert.Equal(t, uidls, uidl(after), "nothing lost, unique-ids stable across front ends")

	// Killed as its client QUITs after DELE 1: message 1 is gone or not,
	// the others certainly stay.
	assert.Equal(t, "+OK message 1 deleted", after.Cmd("DELE 1"))
	_, _ = after.C.Write([]byte("QUIT\r\n"))
	fes[1].kill()
	check := loginOnceFree(t, fes[2], "the killed front end's lock is released")
	left := uidl(check)
	require.True(t, len(left) == 2 || len(left) == 3, "%v", left)
	for _, u := range uidls[1:] {
		id := strings.SplitN(u, " ", 2)[1]
		found := false
		for _, l := range left {
			found = found || strings.HasSuffix(l, " "+id)
		}
		assert.True(t, found, "unmarked message %s kept", id)
	}
	assert.Equal(t, "+OK signing off (0 messages removed)", check.Cmd("QUIT"))

	// A delivery through one front end is seen on another.
	fresh := startFrontEnd(t, bin, dsn)
	lmtpDeliver(t, fes[2], "alice@example.org", "Subject: via LMTP\r\n\r\nhello\r\n")
	s := dialFront(t, fresh)
	s.Cmd("USER alice")
	require.True(t, strings.HasPrefix(s.Cmd("PASS secret"), "+OK"))
	got2 := uidl(s)
	assert.Len(t, got2, len(left)+1)
	assert.True(t, strings.HasPrefix(s.Cmd("RETR "+fmt.Sprint(len(got2))), "+OK"))
	body := ""
	for l := s.Line(); l != "."; l = s.Line() {
		body += l + "\n"
	}
	assert.Contains(t, body, "Subject: via LMTP")
	_ = context.Background
}
