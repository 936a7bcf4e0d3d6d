package account

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHashCost: SHA-crypt hashes use Dovecot's 5,000 rounds, and verifying
// one (as every failed login does with the dummy) stays cheap in memory.
// Found by FuzzServerSession's allocation bound: the library's default of
// 500,000 rounds allocated 32 MB per verification.
func TestHashCost(t *testing.T) {
	f, err := HashPassword("SHA512-CRYPT", "pw")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(f, "{SHA512-CRYPT}$6$rounds=5000$") || strings.HasPrefix(f, "{SHA512-CRYPT}$6$"), f)
	a, err := ParseAccount("u:" + f)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(3, func() { a.Verify([]byte("wrong")) })
	assert.Less(t, allocs, 20000.0, "allocations per verification")
	assert.True(t, a.Verify([]byte("pw")))
}

// TestPasswdSkipsBadLines: a line that does not parse, or a user defined
// twice, is skipped and logged with its file:line; the other accounts
// load.
func TestPasswdSkipsBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	text := "# comment\nalice:{PLAIN}a\nno colon here\nbob:{MD5}x\nalice:{PLAIN}again\ncarol:{PLAIN}c\n"
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	var log bytes.Buffer
	p, err := OpenPasswd(path, slog.New(slog.NewTextHandler(&log, nil)))
	require.NoError(t, err)
	assert.Equal(t, 2, p.Len())
	a, ok, _ := p.Lookup("alice")
	require.True(t, ok)
	assert.True(t, a.Verify([]byte("a")), "the first definition wins")
	for _, at := range []string{path + ":3", path + ":4", path + ":5"} {
		assert.Contains(t, log.String(), "at="+at+" ", "line %s is logged", at)
	}
	assert.NotContains(t, log.String(), path+":6")
}

// TestPasswdReloadErrors: a passwd-file that disappears, or is replaced
// by something that cannot be read as one, fails closed: no account is
// served (not even one the file still held: the change may have removed
// it) and Lookup says why, until a reload succeeds. The failure is logged
// once, not on every login, and so is the recovery. Before, the accounts
// last read were kept, and a user removed from the unreadable file went
// on logging in.
func TestPasswdReloadErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, os.WriteFile(path, []byte("alice:{PLAIN}a\n"), 0o600))
	var log bytes.Buffer
	p, err := OpenPasswd(path, slog.New(slog.NewTextHandler(&log, nil)))
	require.NoError(t, err)
	for _, change := range []func(){
		func() { require.NoError(t, os.Remove(path)) },
		func() { require.NoError(t, os.Mkdir(path, 0o700)) },
	} {
		change()
		for range 3 {
			p.checked = time.Time{} // as if a second had passed
			a, ok, err := p.Lookup("alice")
			assert.False(t, ok, "no account is served while the file cannot be read")
			assert.Nil(t, a)
			assert.Error(t, err)
			ok, err = p.Authenticate("alice", []byte("a"))
			assert.False(t, ok)
			assert.Error(t, err)
		}
		require.NoError(t, os.RemoveAll(path))
	}
	assert.Equal(t, 2, strings.Count(log.String(), "changed but cannot be read: refusing every login until it can"), "once per distinct error:\n%s", log.String())
	require.NoError(t, os.WriteFile(path, []byte("alice:{PLAIN}a\nbob:{PLAIN}b\n"), 0o600))
	p.checked = time.Time{}
	a, ok, err := p.Lookup("bob")
	assert.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, a.Verify([]byte("b")))
	assert.Contains(t, log.String(), "readable again")
}

// TestPasswdRacyRewrite: a rewrite that keeps size, modification time
// and (within the clock's tick) change time is still noticed while the
// last change is recent: the content's hash decides.
func TestPasswdRacyRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, os.WriteFile(path, []byte("alice:{PLAIN}aaaa\n"), 0o600))
	p, err := OpenPasswd(path, nil)
	require.NoError(t, err)
	require.True(t, p.racy, "just written: within the racy window")
	// Rewrite in place, then pretend the stamp did not change, as it may
	// not within one tick of the kernel's clock.
	require.NoError(t, os.WriteFile(path, []byte("alice:{PLAIN}bbbb\n"), 0o600))
	st, err := os.Stat(path)
	require.NoError(t, err)
	p.stamp = stampOf(st)
	p.checked = time.Time{}
	a, ok, err := p.Lookup("alice")
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, a.Verify([]byte("bbbb")), "the new content was read")
}
