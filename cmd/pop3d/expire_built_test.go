package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// config writes a pop3d.toml for the site, as an administrator would for
// the server and the expire timer alike, and returns its path.
func (s *site) config(extra string) string {
	s.t.Helper()
	user := ""
	if s.as != nil {
		user = "user = \"nobody\"\ngroup = \"nogroup\"\n"
	}
	p := filepath.Join(s.dir, "pop3d.toml")
	s.write(p, fmt.Sprintf("mail_root = %q\npasswd = %q\nprofile = \"rfc1939\"\ntrusted_networks = [\"127.0.0.0/8\"]\nretention = \"60d\"\n%s%s",
		s.root, s.passwd, user, extra))
	return p
}

// pop3dCmd runs the built pop3d with args and returns its output and exit
// code.
func pop3dCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(builtPop3d(t), args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return string(out), code
}

// uidl logs alice in and returns her UIDL listing.
func uidl(t *testing.T, addr string) []string {
	t.Helper()
	c := pop3test.LoggedIn(t, addr, "alice", "right")
	c.OK("UIDL")
	l := c.Multi()
	c.OK("QUIT")
	return l
}

// rootOwned lists what under dir belongs to root.
func rootOwned(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Sys().(*syscall.Stat_t).Uid == 0 {
			out = append(out, p)
		}
		return nil
	}))
	return out
}

// TestBuiltExpireAsRoot: with the configuration of a running pop3d that
// serves as nobody, `pop3d expire` run as root (as a cron job or the
// shipped timer would) works as the config's user: the old message goes,
// nothing in the Maildir belongs to root afterwards, every other message
// keeps its UID and the next delivery gets the next one, and logins go
// on. Without a user to switch to, root is refused and nothing changes;
// `--dry-run` changes no file and no directory. Before, expire as root
// wrote root-owned 0600 pop3kit.lock, pop3kit-uidlist.lock and
// pop3kit-uidlist into every Maildir, --dry-run included; the server then
// could not read its list, started a new one and renumbered every
// message (uid 8 became 1, the next new message got 2).
func TestBuiltExpireAsRoot(t *testing.T) {
	needRoot(t)
	s := newSite(t)
	s.addUser("alice", "right", "Subject: 1\r\n\r\nold\r\n", "Subject: 2\r\n\r\nkept\r\n", "Subject: 3\r\n\r\nkept too\r\n")
	md := filepath.Join(s.root, "alice")
	cfg := s.config("")
	srv := s.serve("--config", cfg)
	addr := srv.addrs[0]
	before := uidl(t, addr) // the first login moves new/ to cur/ and numbers 1, 2, 3
	require.Equal(t, []string{"1 1", "2 2", "3 3"}, before)
	// The first message is 90 days old.
	cur, err := filepath.Glob(filepath.Join(md, "cur", "1764000000.*"))
	require.NoError(t, err)
	require.Len(t, cur, 1)
	old := time.Now().Add(-90 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(cur[0], old, old))

	// Root without a user to switch to is refused, and touches nothing.
	state := testenv.State(t, s.root)
	out, code := pop3dCmd(t, "expire", "--mail-root", s.root, "--older-than", "60d")
	assert.NotZero(t, code, out)
	assert.Contains(t, out, "refusing to run as root: pass --user")
	assert.Equal(t, state, testenv.State(t, s.root), "a refused expire changed the tree")

	// A dry run, as root, with the server's config: counts, changes nothing.
	out, code = pop3dCmd(t, "expire", "--config", cfg, "--dry-run")
	require.Zero(t, code, out)
	assert.Contains(t, out, "would remove 1 messages")
	assert.Equal(t, state, testenv.State(t, s.root), "a dry run changed the tree")

	// The real run, as root, with the server's config.
	out, code = pop3dCmd(t, "expire", "--config", cfg)
	require.Zero(t, code, out)
	assert.Contains(t, out, "removed 1 messages")
	assert.Empty(t, rootOwned(t, s.root), "files root left in the mail root")

	s.write(filepath.Join(md, "new", "1764000100.M9P1.test"), "Subject: 4\r\n\r\nnew\r\n")
	after := uidl(t, addr)
	assert.Equal(t, []string{"1 2", "2 3", "3 4"}, after, "every message keeps its UID; the new one gets the next")
	assert.NotContains(t, srv.log.String(), "starting a new")
	assert.NotContains(t, srv.log.String(), "level=ERROR")
}

// TestBuiltExpireDryRunChangesNothing: `pop3d expire --dry-run` on a
// Maildir no session has opened yet — messages in new/, no UID list, no
// lock files — counts the old messages and leaves every file and
// directory as it was: nothing moved to cur/, no list, no lock. Before, a
// dry run opened every maildrop as a session does, writing the UID list
// and its locks and moving new/ to cur/.
func TestBuiltExpireDryRunChangesNothing(t *testing.T) {
	s := newSite(t)
	s.addUser("alice", "right", "Subject: 1\r\n\r\nold\r\n", "Subject: 2\r\n\r\nnew\r\n")
	s.addUser("bob", "right")
	old := time.Now().Add(-90 * 24 * time.Hour)
	olds, err := filepath.Glob(filepath.Join(s.root, "alice", "new", "1764000000.*"))
	require.NoError(t, err)
	require.Len(t, olds, 1)
	require.NoError(t, os.Chtimes(olds[0], old, old))
	cfg := s.config("")
	state := testenv.State(t, s.root)
	out, code := pop3dCmd(t, "expire", "--config", cfg, "--dry-run")
	require.Zero(t, code, out)
	assert.Contains(t, out, "would remove 1 messages (")
	assert.Contains(t, out, "from 2 maildrops")
	assert.Equal(t, state, testenv.State(t, s.root), "the dry run changed the tree")
	for _, f := range []string{"pop3kit.lock", "pop3kit-uidlist", "pop3kit-uidlist.lock"} {
		assert.NoFileExists(t, filepath.Join(s.root, "alice", f))
	}
	assert.False(t, strings.Contains(out, "level=WARN"), out)
}

// TestBuiltVersionAndHelp: pop3d --version names the build (module
// version, VCS revision, Go version) and exits 0; asking any command for
// its help exits 0 (before, serve -h and expire -h exited 2, like an
// error, and --version was an unknown command).
func TestBuiltVersionAndHelp(t *testing.T) {
	out, code := pop3dCmd(t, "--version")
	assert.Zero(t, code, out)
	assert.Regexp(t, `^pop3d \S+ \(revision \S+.*go1\.\d+`, out)
	for _, args := range [][]string{{"--help"}, {"serve", "-h"}, {"serve", "--help"}, {"expire", "--help"}, {"check", "--help"}, {"import", "--help"}, {"user", "add", "--help"}} {
		out, code := pop3dCmd(t, args...)
		assert.Zero(t, code, "%v: %s", args, out)
		assert.Contains(t, strings.ToLower(out), "usage", "%v", args)
	}
}
