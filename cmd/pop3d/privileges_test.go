package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/account"
)

// needRoot skips a test that switches accounts unless it runs as root (as
// it does in CI and in the project's container).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("only root can switch accounts; run the tests as root (as CI does) to cover the privilege drop")
	}
}

// TestPrivilegesDropped builds pop3d, starts it as root with --user nobody
// --group nogroup, a mail root owned by nobody and a TLS key only root can
// read, logs in over TCP and retrieves a message, and reads
// /proc/<pid>/status: every uid and gid of the process is nobody's and
// nogroup's, and its only supplementary group is nogroup.
func TestPrivilegesDropped(t *testing.T) {
	needRoot(t)
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	nogroup, err := user.LookupGroup("nogroup")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nogroup.Gid)

	dir := t.TempDir()
	// nobody must reach the mail root and the passwd-file: open the way
	// through the test's directories (made 0700 for root).
	// t.TempDir is DIR/TestName…/001; both levels are 0700.
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	bin := builtPop3d(t)

	root := filepath.Join(dir, "mail")
	md := filepath.Join(root, "alice")
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(md, sub), 0o700))
	}
	const body = "Subject: dropped\r\n\r\nserved by nobody\r\n"
	require.NoError(t, os.WriteFile(filepath.Join(md, "new", "1764000000.M1P1.test"), []byte(body), 0o600))
	line, err := account.HashPassword("PLAIN", "pw")
	require.NoError(t, err)
	passwd := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(passwd, []byte("alice:"+line+"\n"), 0o600))
	for _, p := range []string{root, md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp"),
		filepath.Join(md, "new", "1764000000.M1P1.test"), passwd} {
		require.NoError(t, os.Chown(p, uid, gid))
	}
	// The TLS key stays root's, mode 0600: pop3d must read it before it
	// gives root up.
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, selfSigned(cert, key))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--user", "nobody", "--group", "nogroup",
		"--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
		"--mail-root", root, "--passwd", passwd, "--profile", "rfc1939", "--fail-delay", "0s")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	// pop3d writes its log while the test reads it.
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	first, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "pop3d did not start: %s", stderr.String())
	m := regexp.MustCompile(`serving POP3 on \[(\S+) `).FindStringSubmatch(first)
	require.NotNil(t, m, first)

	got := talk(t, m[1], "USER alice", "PASS pw", "RETR 1")
	require.Regexp(t, `^\+OK pop3kit ready`, got[0])
	require.Equal(t, "+OK", got[1])
	require.Regexp(t, `^\+OK maildrop has 1 message`, got[2], "login as nobody: %s", stderr.String())
	require.Regexp(t, `^\+OK \d+ octets$`, got[3], "RETR as nobody: %s", stderr.String())

	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	require.NoError(t, err)
	ids := func(field string) string {
		return regexp.MustCompile(`(?m)^` + field + `:\s*(.*)$`).FindStringSubmatch(string(status))[1]
	}
	require.Equal(t, strings.Repeat(nobody.Uid+"\t", 3)+nobody.Uid, ids("Uid"), "real, effective, saved and fs uid")
	require.Equal(t, strings.Repeat(nogroup.Gid+"\t", 3)+nogroup.Gid, ids("Gid"), "real, effective, saved and fs gid")
	require.Equal(t, nogroup.Gid, strings.TrimSpace(ids("Groups")), "supplementary groups: nogroup only")
	require.Contains(t, stderr.String(), `msg="serving as" user=nobody`)
}

// TestPrivilegesRootNeedsUser: as root, serve with a real configuration
// and no --user refuses to start, before binding anything, and says what
// to pass.
func TestPrivilegesRootNeedsUser(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "mail")
	require.NoError(t, os.MkdirAll(root, 0o700))
	passwd := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(passwd, []byte("alice:{PLAIN}pw\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	var out bytes.Buffer
	err = serve([]string{"--listen", addr, "--mail-root", root, "--passwd", passwd}, &out, &out, nil)
	require.ErrorContains(t, err, "refusing to serve as root: pass --user (and --group)")
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err, "nothing was bound")
	ln.Close()
	require.ErrorContains(t, serve([]string{"--listen", addr, "--mail-root", root, "--passwd", passwd, "--user", "root"}, &out, &out, nil),
		`--user "root" is root`)

}

// TestDemoAsRootServesAsNobody: the demo started by root serves as nobody,
// never as root; and root refuses a demo directory a local user prepared
// (owned by them, its mail root a link to /), which would otherwise have
// let them read files only root may read.
func TestDemoAsRootServesAsNobody(t *testing.T) {
	needRoot(t)
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	bin := builtPop3d(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Under a directory only root may search, as a clone under /root is:
	// nobody reaches the mail root and the passwd-file through what root
	// opened before the switch.
	private := filepath.Join(dir, "private")
	require.NoError(t, os.Mkdir(private, 0o700))
	cmd := exec.CommandContext(ctx, bin, "serve", "--demo-dir", filepath.Join(private, "demo"), "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := bufio.NewReader(stdout)
	first, err := r.ReadString('\n')
	require.NoError(t, err, "pop3d did not start: %s", stderr.String())
	pw := regexp.MustCompile(`password "([^"]+)"`).FindStringSubmatch(first)
	require.NotNil(t, pw, first)
	second, err := r.ReadString('\n')
	require.NoError(t, err, "pop3d did not serve: %s", stderr.String())
	m := regexp.MustCompile(`serving POP3 on \[(\S+) `).FindStringSubmatch(second)
	require.NotNil(t, m, second)
	got := talk(t, m[1], "USER demo", "PASS "+pw[1], "RETR 1")
	require.Regexp(t, `^\+OK maildrop has 3 messages`, got[2], "login as nobody: %s", stderr.String())
	require.Regexp(t, `^\+OK`, got[3], "RETR as nobody: %s", stderr.String())
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	require.NoError(t, err)
	uids := regexp.MustCompile(`(?m)^Uid:\s*(.*)$`).FindStringSubmatch(string(status))[1]
	require.Equal(t, strings.Repeat(nobody.Uid+"\t", 3)+nobody.Uid, uids, "the demo serves as nobody")
	require.Contains(t, stderr.String(), "the demo was started as root: it serves as nobody instead")

	// A demo directory prepared by another user is refused.
	evil := filepath.Join(dir, "evil")
	require.NoError(t, os.MkdirAll(evil, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(evil, "demo-password"), []byte("x\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(evil, "passwd"), []byte("tmp:{PLAIN}x\n"), 0o644))
	require.NoError(t, os.Symlink("/", filepath.Join(evil, "mail")))
	uid, _ := strconv.Atoi(nobody.Uid)
	require.NoError(t, os.Lchown(evil, uid, -1))
	out, err := exec.CommandContext(ctx, bin, "serve", "--demo-dir", evil, "--listen", "127.0.0.1:0").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "is a symbolic link")
	require.NoError(t, os.Remove(filepath.Join(evil, "mail")))
	require.NoError(t, os.Chmod(evil, 0o777))
	out, err = exec.CommandContext(ctx, bin, "serve", "--demo-dir", evil, "--listen", "127.0.0.1:0").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "no one else may write")
}

// lockedBuffer is a bytes.Buffer that a child process writes while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
