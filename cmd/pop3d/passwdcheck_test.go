package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPasswdUnreadableAfterDrop builds pop3d and starts it as root with
// --user nobody --group nogroup and a passwd-file owned root:root, mode
// 0600: it reads the file as root, but after the switch it could not
// re-read it when it changes, so it refuses to start and says what to
// change. Made group-readable by --group (root:nogroup 0640), the same
// command serves and logs alice in. Before, pop3d started, and the first
// change of the file (a user removed) failed to reload while the removed
// user went on logging in.
func TestPasswdUnreadableAfterDrop(t *testing.T) {
	needRoot(t)
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	nogroup, err := user.LookupGroup("nogroup")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nogroup.Gid)

	dir := t.TempDir()
	// nobody must reach the files: open the way through the test's
	// directories (t.TempDir is DIR/TestName…/001, both 0700).
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	bin := builtPop3d(t)
	root := filepath.Join(dir, "mail")
	for _, sub := range []string{"", "alice", "alice/cur", "alice/new", "alice/tmp"} {
		p := filepath.Join(root, sub)
		require.NoError(t, os.MkdirAll(p, 0o700))
		require.NoError(t, os.Chown(p, uid, gid))
	}
	passwd := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(passwd, []byte("alice:{PLAIN}pw\n"), 0o600))
	require.NoError(t, os.Chown(passwd, 0, 0))

	// start runs pop3d and returns the address it serves on, or "" and
	// its log if it exited.
	start := func() (string, string, *exec.Cmd) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, bin, "serve", "--user", "nobody", "--group", "nogroup",
			"--listen", "127.0.0.1:0", "--trusted-networks", "127.0.0.0/8",
			"--mail-root", root, "--passwd", passwd, "--fail-delay", "0s")
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		first, err := bufio.NewReader(stdout).ReadString('\n')
		if errors.Is(err, io.EOF) {
			// The log is whole only once pop3d has exited and Wait has
			// copied the rest of its standard error.
			_ = cmd.Wait()
			return "", stderr.String(), cmd
		}
		require.NoError(t, err)
		m := regexp.MustCompile(`serving POP3 on \[(\S+)\]`).FindStringSubmatch(first)
		require.NotNil(t, m, first)
		return m[1], stderr.String(), cmd
	}

	addr, log, cmd := start()
	require.Empty(t, addr, "pop3d served with a passwd-file its --user cannot read; log:\n%s", log)
	require.NotNil(t, cmd.ProcessState)
	require.Equal(t, 2, cmd.ProcessState.ExitCode())
	t.Logf("refused: %s", log)
	require.Contains(t, log, "pop3d: --passwd "+passwd+" cannot be read as --user nobody --group nogroup")
	require.Contains(t, log, "permission denied")
	require.Contains(t, log, "chgrp nogroup "+passwd+" && chmod 640 "+passwd)

	// As the message says: group-readable by --group.
	require.NoError(t, os.Chown(passwd, 0, gid))
	require.NoError(t, os.Chmod(passwd, 0o640))
	addr, log, _ = start()
	require.NotEmpty(t, addr, "pop3d did not start: %s", log)
	got := talk(t, addr, "USER alice", "PASS pw")
	require.Regexp(t, `^\+OK maildrop has 0 messages`, got[2])
}
