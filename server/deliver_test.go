package server_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/store"
)

// maildirDeliverer returns the Maildir store of a new mail root as a
// Deliverer, and the root's path.
func maildirDeliverer(t *testing.T) (store.Deliverer, string) {
	t.Helper()
	root := t.TempDir()
	m, err := maildir.OpenMailRoot(root)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	var d store.Deliverer = m // the Maildir store takes deliveries
	return d, root
}

// listDir lists a directory's names.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestDeliverMaildir: a delivery lands in new/ under a maildir(5) unique
// name with ,S= (octets stored) and ,W= (octets in CRLF form), holds the
// octets as given (LF stays LF), and leaves tmp/ empty; two deliveries of
// one message get two names.
func TestDeliverMaildir(t *testing.T) {
	d, root := maildirDeliverer(t)
	const msg = "Subject: bare LF\n\nline\r\nline\n" // 29 octets, 3 bare LF
	for range 2 {
		require.NoError(t, d.Deliver(context.Background(), "alice", strings.NewReader(msg)))
	}
	assert.Empty(t, listDir(t, filepath.Join(root, "alice", "tmp")))
	names := listDir(t, filepath.Join(root, "alice", "new"))
	require.Len(t, names, 2)
	assert.NotEqual(t, names[0], names[1])
	host, _ := os.Hostname()
	for _, n := range names {
		assert.Regexp(t, `^\d+\.M\d+P\d+R[0-9a-f]{16}\.`+regexp.QuoteMeta(host)+`,S=29,W=32$`, n)
		b, err := os.ReadFile(filepath.Join(root, "alice", "new", n))
		require.NoError(t, err)
		assert.Equal(t, msg, string(b))
		fi, err := os.Stat(filepath.Join(root, "alice", "new", n))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
}

// TestDeliverAllOrNothing: a reader that fails part way (a connection
// cut off), or a context that ends, leaves nothing in tmp/ or new/, and
// the error says why.
func TestDeliverAllOrNothing(t *testing.T) {
	d, root := maildirDeliverer(t)
	cut := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(strings.Repeat("x", 100_000)), iotest.ErrReader(cut))
	err := d.Deliver(context.Background(), "alice", r)
	require.ErrorIs(t, err, cut)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, d.Deliver(ctx, "alice", strings.NewReader("x\n")), context.Canceled)

	for _, sub := range []string{"tmp", "new", "cur"} {
		assert.Empty(t, listDir(t, filepath.Join(root, "alice", sub)), sub)
	}
}

// TestDeliverRefuses: names that could reach outside the mail root, and a
// user directory that is a symbolic link (to another user's Maildir or
// anywhere), are refused with ErrNotMaildir, and nothing is written.
func TestDeliverRefuses(t *testing.T) {
	d, root := maildirDeliverer(t)
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "mallory")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "file"), nil, 0o600))
	for _, user := range []string{"", ".", "..", "../x", "a/b", ".hidden", "mallory", "file"} {
		err := d.Deliver(context.Background(), user, strings.NewReader("x\n"))
		assert.ErrorIs(t, err, maildir.ErrNotMaildir, "%q", user)
	}
	assert.Empty(t, listDir(t, outside), "nothing written through the link")
	assert.ElementsMatch(t, []string{"mallory", "file"}, listDir(t, root))
}

// TestDeliverThenOpen: what Deliver wrote, a login lists with the sizes
// of its name and reads back.
func TestDeliverThenOpen(t *testing.T) {
	root := t.TempDir()
	m, err := maildir.OpenMailRoot(root)
	require.NoError(t, err)
	defer m.Close()
	var st store.Store = m
	const msg = "Subject: s\n\nbody\n"
	require.NoError(t, m.Deliver(context.Background(), "bob", strings.NewReader(msg)))
	box, err := st.Open(context.Background(), "bob", store.OpenOptions{})
	require.NoError(t, err)
	defer box.Close()
	require.Equal(t, 1, box.Len())
	assert.Equal(t, int64(len(msg)), box.Size(0), "storage size without ExactSizes")
	assert.Equal(t, int64(len(msg)+3), box.(pop3.ExactSizer).ExactSize(0))
	exact, err := st.Open(context.Background(), "bob", store.OpenOptions{ExactSizes: true})
	require.NoError(t, err)
	defer exact.Close()
	assert.Equal(t, int64(len(msg)+3), exact.Size(0), "exact size with ExactSizes")
	rc, err := box.Open(0)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	assert.Equal(t, msg, string(b))
}
