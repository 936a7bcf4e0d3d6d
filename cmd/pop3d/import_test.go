package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testpg"
	"github.com/pop3kit/pop3kit/server/account"
)

// TestImportAndServeStore: pop3d import takes a mail root's Maildirs and
// a passwd-file into PostgreSQL, a second run imports nothing, and pop3d
// serve --store (or the file's store key) serves them with the UIDLs the
// Maildirs had.
func TestImportAndServeStore(t *testing.T) {
	testpg.Need(t)
	pg, err := testpg.Start(testpg.Options{})
	require.NoError(t, err)
	defer pg.Close()
	dsn, err := pg.NewDB(context.Background())
	require.NoError(t, err)

	dir := t.TempDir()
	for _, u := range []string{"alice", "bob"} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, u, sub), 0o700))
		}
		for i := range 3 {
			name := fmt.Sprintf("17640000%02d.M%dP1.test", i, i)
			require.NoError(t, os.WriteFile(filepath.Join(dir, u, "new", name), fmt.Appendf(nil, "Subject: %s %d\n\nhi\n", u, i), 0o600))
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bob", "dovecot-uidlist"), []byte("3 V1764000000 N7 G0123456789abcdef0123456789abcdef\n"), 0o600))
	hash, err := account.HashPassword("SHA512-CRYPT", "pw")
	require.NoError(t, err)
	pw := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, os.WriteFile(pw, []byte("# users\nalice:"+hash+"::::::\nbob:"+hash+"\n"), 0o600))

	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"import", "--from", "maildir", dir, "--store", dsn, "--passwd", pw}, nil, &out, &errOut), errOut.String())
	assert.Equal(t, "import: 2 users, 6 messages, 6 imported now, 0 imported before\n", out.String())
	assert.Contains(t, errOut.String(), "import: user 2/2 bob: 3/3 messages")
	out.Reset()
	require.NoError(t, run([]string{"import", "--from", "maildir", dir, "--store", dsn}, nil, &out, &errOut))
	assert.Equal(t, "import: 2 users, 6 messages, 0 imported now, 6 imported before\n", out.String())

	uidl := func(addr, user string) []string {
		c := pop3test.LoggedIn(t, addr, user, "pw")
		c.OK("UIDL")
		defer c.OK("QUIT")
		return c.Multi()
	}
	addrs, _ := startServe(t, "--store", dsn, "--listen", "127.0.0.1:0", "--trusted-networks", "127.0.0.0/8", "--fail-delay", "0s", "--profile", "rfc1939")
	assert.Equal(t, []string{"1 1", "2 2", "3 3"}, uidl(addrs[0].String(), "alice"))
	assert.Equal(t, []string{"1 0000000769248100", "2 0000000869248100", "3 0000000969248100"}, uidl(addrs[0].String(), "bob"))

	cfg := filepath.Join(t.TempDir(), "pop3d.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("store = %q\nlisten = [\"127.0.0.1:0\"]\ntrusted_networks = [\"127.0.0.0/8\"]\n", dsn)), 0o600))
	addrs, _ = startServe(t, "--config", cfg, "--fail-delay", "0s")
	assert.Equal(t, []string{"1 1", "2 2", "3 3"}, uidl(addrs[0].String(), "alice"))
}
