package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testpg"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/pgstore"
	"github.com/pop3kit/pop3kit/server/store"
)

// TestSharedLimitsAcrossFrontEnds: on one database, the per-user session
// limit and LOGIN-DELAY hold for all front ends together, not for each:
// under Exchange's snapshot semantics (no lock) a second session of alice
// on another front end is refused at a limit of 1, and is let in once the
// first ends; a login within LOGIN-DELAY of one on another front end is
// refused with [LOGIN-DELAY].
func TestSharedLimitsAcrossFrontEnds(t *testing.T) {
	dsn := testpg.DB(t)
	stA, stB := open(t, dsn), open(t, dsn)
	deliver(t, stA, "alice", "one\n")
	one := func(c *server.Config) { c.MaxSessionsPerUser = 1 }
	a, b := frontEnd(t, stA, "exchange2010", one), frontEnd(t, stB, "exchange2010", one)

	ca := pop3test.LoggedIn(t, a, "alice", "pw")
	cb := pop3test.Dial(t, b)
	cb.OK("USER alice")
	assert.Contains(t, cb.Cmd("PASS pw"), "-ERR [IN-USE] too many sessions for this user on this site")
	ca.OK("QUIT")
	require.Eventually(t, func() bool {
		c := pop3test.Dial(t, b)
		defer c.C.Close()
		c.OK("USER alice")
		return c.Cmd("PASS pw")[:3] == "+OK"
	}, 10*time.Second, 50*time.Millisecond, "the slot is free once alice's first session ended")

	delay := func(c *server.Config) { c.LoginDelay = server.Duration(time.Minute) }
	c, d := frontEnd(t, stA, "exchange2010", delay), frontEnd(t, stB, "exchange2010", delay)
	cc := pop3test.LoggedIn(t, c, "bob", "pw")
	cc.OK("QUIT")
	cd := pop3test.Dial(t, d)
	cd.OK("USER bob")
	assert.Contains(t, cd.Cmd("PASS pw"), "-ERR [LOGIN-DELAY]", "bob logged in on the other front end a moment ago")
}

// TestSessionLeaseLapses: a session whose front end died (stopped renewing
// its lease) stops counting once the lease lapses; a live one keeps its
// slot.
func TestSessionLeaseLapses(t *testing.T) {
	dsn := testpg.DB(t)
	st := open(t, dsn)
	ctx := context.Background()
	release, err := st.BeginSession(ctx, "alice", 1)
	require.NoError(t, err)
	_, err = st.BeginSession(ctx, "alice", 1)
	assert.ErrorIs(t, err, store.ErrTooManySessions)
	// The front end "dies": its lease is not renewed and runs out.
	_, err = st.Pool().Exec(ctx, "UPDATE sessions SET expires = now() - interval '1 second' WHERE name = 'alice'")
	require.NoError(t, err)
	rel2, err := st.BeginSession(ctx, "alice", 1)
	require.NoError(t, err, "the lapsed lease frees the slot")
	rel2()
	release() // ending a lapsed lease is harmless
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&n))
	assert.Zero(t, n)
}

// TestImportBrokenSource: a hostile or damaged Maildir — a FIFO and a
// directory among the messages, a symbolic link to a file outside it, a
// damaged dovecot-uidlist, a user directory that is a symbolic link —
// imports the real messages and nothing else, never blocks on the FIFO,
// reads nothing outside the mail root, and refuses the linked user with a
// clear error.
func TestImportBrokenSource(t *testing.T) {
	dir := t.TempDir()
	writeMaildir(t, dir, "alice", "Subject: one\n\nreal\n", "Subject: two\n\nreal\n")
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("Subject: secret\n\nnot mail of alice\n"), 0o600))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "alice", "cur", "1.fifo:2,"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "alice", "new", "2.dir"), 0o700))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "alice", "new", "3.link")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alice", "dovecot-uidlist"), []byte("3 V1 N\x00garbage\nnonsense\n"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(dir, "alice"), filepath.Join(dir, "mallory")))

	st := open(t, testpg.DB(t))
	root, err := maildir.OpenMailRoot(dir)
	require.NoError(t, err)
	defer root.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, total, err := st.ImportMaildir(ctx, root, "alice", pgstore.ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the two real messages")
	assert.Equal(t, 2, total)
	_, _, err = st.ImportMaildir(ctx, root, "mallory", pgstore.ImportOptions{})
	require.Error(t, err, "a user directory that is a symbolic link")
	assert.ErrorIs(t, err, maildir.ErrNotMaildir)

	addr := frontEnd(t, st, "rfc1939")
	c := pop3test.LoggedIn(t, addr, "alice", "pw")
	c.OK("RETR 1")
	body := strings.Join(c.Multi(), "\n")
	c.OK("RETR 2")
	body += strings.Join(c.Multi(), "\n")
	assert.NotContains(t, body, "not mail of alice")
	c.OK("QUIT")
}

// TestIdleLockedSessionsHoldNoConnection: with a pool of 4 connections,
// 200 open rfc1939 sessions, each holding its mailbox's lock, leave the
// pool free: another user's login and a delivery go through at once, and
// the locks still hold. Before, each locked session kept a connection:
// the fifth session's login, and every delivery, waited LockWait and
// failed.
func TestIdleLockedSessionsHoldNoConnection(t *testing.T) {
	dsn := testpg.DB(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st := open(t, dsn+sep+"pool_max_conns=4")
	st.LockWait = 5 * time.Second
	ctx := context.Background()
	const n = 200
	var boxes []pop3.Maildrop
	for i := range n {
		user := fmt.Sprintf("idle%d", i)
		require.NoError(t, st.SetPassword(ctx, user, "{PLAIN}pw"))
		b, err := st.Open(ctx, user, store.OpenOptions{Exclusive: true})
		require.NoError(t, err, "locked session %d", i)
		boxes = append(boxes, b)
	}
	t.Cleanup(func() {
		for _, b := range boxes {
			_ = b.Close()
		}
	})
	start := time.Now()
	require.NoError(t, st.Deliver(ctx, "alice", strings.NewReader("Subject: x\n\nbody\n")), "a delivery")
	b, err := st.Open(ctx, "alice", store.OpenOptions{Exclusive: true})
	require.NoError(t, err, "another user's login")
	took := time.Since(start)
	t.Logf("%d idle locked sessions on a pool of 4: a delivery and a login took %v; pool: %d acquired", n, took.Round(time.Millisecond), st.Pool().Stat().AcquiredConns())
	assert.Equal(t, 1, b.Len())
	require.NoError(t, b.Close())
	_, err = st.Open(ctx, "idle7", store.OpenOptions{Exclusive: true})
	assert.ErrorIs(t, err, store.ErrInUse, "the locks still hold")
	assert.Zero(t, st.Pool().Stat().AcquiredConns(), "no connection held between queries")
}

// TestLockLapsedRemovesNothing: a session whose lock lapsed (its front end
// could not renew it, and another session took the mailbox) removes
// nothing at UPDATE and says so; the session that holds the lock now is
// not disturbed.
func TestLockLapsedRemovesNothing(t *testing.T) {
	st := open(t, testpg.DB(t))
	ctx := context.Background()
	require.NoError(t, st.Deliver(ctx, "alice", strings.NewReader("Subject: x\n\nbody\n")))
	a, err := st.Open(ctx, "alice", store.OpenOptions{Exclusive: true})
	require.NoError(t, err)
	_, err = st.Pool().Exec(ctx, "UPDATE mailbox_locks SET expires = now() - interval '1 second'")
	require.NoError(t, err)
	b, err := st.Open(ctx, "alice", store.OpenOptions{Exclusive: true})
	require.NoError(t, err, "the lapsed lock is taken")
	err = a.Remove([]int{0})
	var re *store.RemoveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 1, re.Failed)
	assert.ErrorContains(t, err, "lock lapsed")
	require.NoError(t, a.Close())
	assert.Equal(t, 1, b.Len())
	_, err = st.Open(ctx, "alice", store.OpenOptions{Exclusive: true})
	assert.ErrorIs(t, err, store.ErrInUse, "a's Close did not end b's lock")
	require.NoError(t, b.Close())
}
