package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/stretchr/testify/require"
)

// The tests in this file's family drive the real program: pop3d built by
// go build, started as a site would start it, over real sockets and files.

// TestMain removes the pop3d that builtPop3d built. Subcommands run in
// the test binary keep its privileges: the tests run as root in CI, and
// root given up would be gone for every later test; the built-binary
// tests cover the switch.
func TestMain(m *testing.M) {
	keepPrivilegesInProcess = true
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// builtPop3d is pop3d built once for the test binary (testenv.Pop3d), in a
// directory every account may search (root's tests run it as nobody).
func builtPop3d(t *testing.T) string { return testenv.Pop3d(t) }

// site is a mail site on disk for a built pop3d: a mail root, a
// passwd-file, and the account pop3d serves as (nobody:nogroup when the
// tests run as root, who may not serve mail itself; the tests' own
// account otherwise). Everything it makes belongs to that account.
type site struct {
	t      *testing.T
	dir    string
	root   string // the mail root
	passwd string
	uid    int
	gid    int
	// as is the --user/--group pair pop3d is started with; empty when
	// the tests are not root.
	as []string
}

// newSite makes an empty site in a temporary directory.
func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), uid: os.Getuid(), gid: os.Getgid()}
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		require.NoError(t, err)
		nogroup, err := user.LookupGroup("nogroup")
		require.NoError(t, err)
		s.uid, _ = strconv.Atoi(nobody.Uid)
		s.gid, _ = strconv.Atoi(nogroup.Gid)
		s.as = []string{"--user", "nobody", "--group", "nogroup"}
		// nobody must reach the files: t.TempDir is DIR/TestName…/001,
		// both levels 0700.
		require.NoError(t, os.Chmod(s.dir, 0o755))
		require.NoError(t, os.Chmod(filepath.Dir(s.dir), 0o755))
	}
	s.root = filepath.Join(s.dir, "mail")
	s.passwd = filepath.Join(s.dir, "passwd")
	s.mkdir(s.root)
	s.write(s.passwd, "")
	return s
}

func (s *site) mkdir(p string) {
	s.t.Helper()
	require.NoError(s.t, os.MkdirAll(p, 0o700))
	require.NoError(s.t, os.Chown(p, s.uid, s.gid))
}

func (s *site) write(p, content string) {
	s.t.Helper()
	require.NoError(s.t, os.WriteFile(p, []byte(content), 0o600))
	require.NoError(s.t, os.Chown(p, s.uid, s.gid))
}

// addUser adds a user with a {PLAIN} password (verified at once, so the
// tests time the policy, not a hash) and a Maildir holding messages, each
// delivered to new/ under a Maildir name of its own.
func (s *site) addUser(name, password string, messages ...string) {
	s.t.Helper()
	f, err := os.OpenFile(s.passwd, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(s.t, err)
	_, err = fmt.Fprintf(f, "%s:{PLAIN}%s\n", name, password)
	require.NoError(s.t, err)
	require.NoError(s.t, f.Close())
	md := filepath.Join(s.root, name)
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		s.mkdir(filepath.Join(md, sub))
	}
	for i, m := range messages {
		s.write(filepath.Join(md, "new", fmt.Sprintf("%d.M%dP1.test", 1764000000+i, i)), m)
	}
}

// running is a started pop3d.
type running struct {
	cmd *exec.Cmd
	// addrs are the POP3 listeners in the order of the flags.
	addrs []string
	log   *lockedBuffer
}

// serve starts the built pop3d on the site with args after its own
// (listeners, mail root, passwd-file, account) and stops it when the test
// ends.
func (s *site) serve(args ...string) *running {
	s.t.Helper()
	bin := builtPop3d(s.t)
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	all := append([]string{"serve", "--mail-root", s.root, "--passwd", s.passwd}, s.as...)
	if !hasFlag(args, "--listen") {
		all = append(all, "--listen", "127.0.0.1:0")
	}
	cmd := exec.CommandContext(ctx, bin, append(all, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(s.t, err)
	r := &running{cmd: cmd, log: &lockedBuffer{}}
	cmd.Stderr = r.log
	require.NoError(s.t, cmd.Start())
	s.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		m := regexp.MustCompile(`serving POP3 on \[([^\]]*)\]`).FindStringSubmatch(line)
		require.NotNil(s.t, m, "pop3d did not start: %q\n%s", line, r.log.String())
		r.addrs = strings.Fields(m[1])
	case <-time.After(60 * time.Second):
		s.t.Fatalf("pop3d did not start in 60 s:\n%s", r.log.String())
	}
	return r
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}
