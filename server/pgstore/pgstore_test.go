package pgstore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/internal/testpg"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/pgstore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testpg.StopShared()
	stopDurable()
	os.Exit(code)
}

var (
	hashOnce sync.Once
	hash     string
)

// field is the password field of every test user: SHA512-CRYPT of "pw".
func field(t testing.TB) string {
	hashOnce.Do(func() {
		var err error
		if hash, err = account.HashPassword("SHA512-CRYPT", "pw"); err != nil {
			panic(err)
		}
	})
	return hash
}

// open opens the store at dsn for the test's duration, with users alice
// and bob.
func open(t testing.TB, dsn string) *pgstore.Store {
	t.Helper()
	ctx := context.Background()
	s, err := pgstore.Open(ctx, dsn, nil)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	for _, u := range []string{"alice", "bob"} {
		require.NoError(t, s.SetPassword(ctx, u, field(t)))
	}
	return s
}

// frontEnd is a pop3d serving st: one front end of many on a database.
func frontEnd(t testing.TB, st *pgstore.Store, profile string, opts ...func(*server.Config)) string {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.Store, cfg.Users = st, st
	cfg.Profile, cfg.Hostname = profile, "pop3kit.test"
	cfg.FailDelay = 0
	cfg.TrustedNetworks = []string{"127.0.0.0/8"}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	addrs, err := srv.Listen()
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return addrs[0].String()
}

func deliver(t testing.TB, st *pgstore.Store, user string, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		require.NoError(t, st.Deliver(context.Background(), user, strings.NewReader(m)))
	}
}

// TestMigrations: a new database gets the whole schema; opening it again,
// and three front ends starting at once on another, apply nothing twice.
func TestMigrations(t *testing.T) {
	dsn := testpg.DB(t)
	s := open(t, dsn)
	version := func(s *pgstore.Store) (v, rows int) {
		require.NoError(t, s.Pool().QueryRow(context.Background(), "SELECT max(version), count(*) FROM schema_version").Scan(&v, &rows))
		return
	}
	v, n := version(s)
	assert.Equal(t, pgstore.Version(), v)
	assert.Equal(t, pgstore.Version(), n)
	s2 := open(t, dsn)
	v, n = version(s2)
	assert.Equal(t, pgstore.Version(), v)
	assert.Equal(t, pgstore.Version(), n, "reopening applies nothing again")

	fresh := testpg.DB(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			st, err := pgstore.Open(context.Background(), fresh, nil)
			if err == nil {
				st.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	s3 := open(t, fresh)
	v, n = version(s3)
	assert.Equal(t, pgstore.Version(), n, "three front ends at once migrate once")
}

// TestUpgradeRefusedUnderOldLocks: a database at schema 2 whose mailbox
// is locked by a front end of the older pop3d (a session advisory lock) is
// not migrated to lease rows: Open says to stop every front end first.
// Once the old front end is gone, the same Open migrates, another
// application's advisory lock on the database notwithstanding. Without the
// check, old and new front ends would each lock the mailbox their own way
// and both serve it.
func TestUpgradeRefusedUnderOldLocks(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DB(t)
	old, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer old.Close(ctx)
	_, err = old.Exec(ctx, `CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,
		applied timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	for i, name := range []string{"0001_init.sql", "0002_shared_limits.sql"} {
		sql, err := os.ReadFile(filepath.Join("migrations", name))
		require.NoError(t, err)
		_, err = old.Exec(ctx, string(sql))
		require.NoError(t, err, name)
		_, err = old.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", i+1, name)
		require.NoError(t, err)
	}
	// The old front end's lock of alice's mailbox, as it took it.
	var id int64
	require.NoError(t, old.QueryRow(ctx, "INSERT INTO mailboxes (owner, uidvalidity) VALUES ('alice', 1) RETURNING id").Scan(&id))
	_, err = old.Exec(ctx, "SELECT pg_advisory_lock($1)", id)
	require.NoError(t, err)
	// Another application's single-key lock on the shared database,
	// which must not be taken for an old front end's.
	other, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer other.Close(ctx)
	_, err = other.Exec(ctx, "SELECT pg_advisory_lock(424242)")
	require.NoError(t, err)

	_, err = pgstore.Open(ctx, dsn, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stop every front end")
	var v int
	require.NoError(t, old.QueryRow(ctx, "SELECT max(version) FROM schema_version").Scan(&v))
	assert.Equal(t, 2, v, "nothing migrated")

	require.NoError(t, old.Close(ctx))
	s := open(t, dsn)
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT max(version) FROM schema_version").Scan(&v))
	assert.Equal(t, pgstore.Version(), v)
}

// TestSession: messages delivered into PostgreSQL are served through
// pop3d: sizes of the CRLF form, decimal UIDs, RETR as delivered, and
// UPDATE removes exactly the marked message.
func TestSession(t *testing.T) {
	st := open(t, testpg.DB(t))
	msgs := []string{"Subject: one\n\nbody\n", "Subject: two\r\n\r\n.dot\r\n", "Subject: three\n\n3\n"}
	deliver(t, st, "alice", msgs...)
	addr := frontEnd(t, st, "rfc1939")
	c := pop3test.LoggedIn(t, addr, "alice", "pw")
	exact := func(m string) int { return len(m) + strings.Count(m, "\n") - strings.Count(m, "\r\n") }
	total := exact(msgs[0]) + exact(msgs[1]) + exact(msgs[2])
	assert.Equal(t, "+OK 3 "+strconv.Itoa(total), c.OK("STAT"))
	c.OK("LIST")
	assert.Equal(t, []string{"1 " + strconv.Itoa(exact(msgs[0])), "2 " + strconv.Itoa(exact(msgs[1])), "3 " + strconv.Itoa(exact(msgs[2]))}, c.Multi())
	c.OK("UIDL")
	assert.Equal(t, []string{"1 1", "2 2", "3 3"}, c.Multi())
	c.OK("RETR 2")
	assert.Equal(t, []string{"Subject: two", "", ".dot"}, c.Multi())
	c.OK("DELE 2")
	c.OK("QUIT")

	c = pop3test.LoggedIn(t, addr, "alice", "pw")
	c.OK("UIDL")
	assert.Equal(t, []string{"1 1", "2 3"}, c.Multi(), "only message 2 was removed")
	c.OK("RETR 2")
	assert.Equal(t, []string{"Subject: three", "", "3"}, c.Multi())
	c.OK("QUIT")

	c = pop3test.Dial(t, addr)
	c.OK("USER alice")
	assert.Contains(t, c.Cmd("PASS wrong"), "-ERR [AUTH]")
}

// TestDovecotUIDs: with UIDLFormat=dovecot unique-ids are %08x%08x of
// UID and UIDVALIDITY, lower-case.
func TestDovecotUIDs(t *testing.T) {
	st := open(t, testpg.DB(t))
	deliver(t, st, "alice", "a\n")
	_, err := st.Pool().Exec(context.Background(), "UPDATE mailboxes SET uidvalidity = 3735928559")
	require.NoError(t, err)
	addr := frontEnd(t, st, "rfc1939", func(c *server.Config) { require.NoError(t, c.AddSet("UIDLFormat=dovecot")) })
	c := pop3test.LoggedIn(t, addr, "alice", "pw")
	c.OK("UIDL")
	assert.Equal(t, []string{"1 00000001deadbeef"}, c.Multi())
}

// lockHolder returns the PostgreSQL backend that holds user's mailbox
// lock, 0 when none does.
func lockHolder(t *testing.T, st *pgstore.Store, user string) bool {
	t.Helper()
	var n int
	err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM mailbox_locks l JOIN mailboxes m ON m.id = l.mailbox_id
		WHERE m.owner = $1 AND l.expires > now()`, user).Scan(&n)
	require.NoError(t, err)
	return n > 0
}

// TestLockAcrossFrontEnds: rfc1939's exclusive lock holds across two front
// ends on one database, is released at QUIT, and when the front end that
// holds it loses its connection (its backend is terminated, as when the
// front end dies).
func TestLockAcrossFrontEnds(t *testing.T) {
	dsn := testpg.DB(t)
	stA, stB := open(t, dsn), open(t, dsn)
	deliver(t, stA, "alice", "one\n")
	a, b := frontEnd(t, stA, "rfc1939"), frontEnd(t, stB, "rfc1939")

	ca := pop3test.LoggedIn(t, a, "alice", "pw")
	cb := pop3test.Dial(t, b)
	cb.OK("USER alice")
	assert.Contains(t, cb.Cmd("PASS pw"), "-ERR [IN-USE]")
	ca.OK("QUIT")
	cb = pop3test.LoggedIn(t, b, "alice", "pw")
	assert.Equal(t, "+OK 1 5", cb.OK("STAT"))

	// Front end B "dies": it no longer renews its lock, which lapses
	// (here at once, rather than after the lease's 15 s).
	require.True(t, lockHolder(t, stA, "alice"))
	_, err := stA.Pool().Exec(context.Background(), "UPDATE mailbox_locks SET expires = now() - interval '1 second'")
	require.NoError(t, err)
	require.False(t, lockHolder(t, stA, "alice"))
	ca = pop3test.LoggedIn(t, a, "alice", "pw")
	assert.Equal(t, "+OK 1 5", ca.OK("STAT"))
	ca.OK("QUIT")

}

// TestSnapshotAcrossFrontEnds: under Exchange's snapshot semantics a
// message another front end removed answers -ERR on RETR and TOP, and the
// rest of the session goes on.
func TestSnapshotAcrossFrontEnds(t *testing.T) {
	dsn := testpg.DB(t)
	stA, stB := open(t, dsn), open(t, dsn)
	deliver(t, stA, "alice", "one\n", "two\n", "three\n")
	a, b := frontEnd(t, stA, "exchange"), frontEnd(t, stB, "exchange")
	ca := pop3test.LoggedIn(t, a, "alice", "pw")
	cb := pop3test.LoggedIn(t, b, "alice", "pw")
	ca.OK("DELE 1")
	ca.OK("QUIT")
	assert.True(t, strings.HasPrefix(cb.Cmd("RETR 1"), "-ERR"))
	assert.True(t, strings.HasPrefix(cb.Cmd("TOP 1 0"), "-ERR"))
	cb.OK("RETR 2")
	assert.Equal(t, []string{"two"}, cb.Multi())
	cb.OK("DELE 1") // already gone: removing it again is no failure
	cb.OK("DELE 3")
	assert.NotContains(t, cb.Cmd("QUIT"), "-ERR")
	c := pop3test.LoggedIn(t, a, "alice", "pw")
	c.OK("UIDL")
	assert.Equal(t, []string{"1 2"}, c.Multi())
}

// patterned is size octets of mail, made as they are read: 76-octet
// lines of a repeating alphabet with LF ends.
type patterned struct{ n, size int }

func (p *patterned) Read(b []byte) (int, error) {
	if p.n >= p.size {
		return 0, io.EOF
	}
	b = b[:min(len(b), p.size-p.n)]
	for i := range b {
		if (p.n+i)%77 == 76 {
			b[i] = '\n'
		} else {
			b[i] = 'a' + byte((p.n+i)%26)
		}
	}
	p.n += len(b)
	return len(b), nil
}

// retrDiscard sends RETR n and reads the data to its end without keeping
// it, returning the octets read (dot-stuffed, terminator excluded).
func retrDiscard(t testing.TB, addr string, n int) int64 {
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64<<10)
	line := func() string {
		l, err := r.ReadSlice('\n')
		require.NoError(t, err)
		return string(l)
	}
	require.True(t, strings.HasPrefix(line(), "+OK"))
	for _, cmd := range []string{"USER alice", "PASS pw", fmt.Sprintf("RETR %d", n)} {
		fmt.Fprintf(nc, "%s\r\n", cmd)
		l := line()
		require.True(t, strings.HasPrefix(l, "+OK"), "%s: %s", cmd, l)
	}
	var got int64
	for {
		l, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			got += int64(len(l))
			continue
		}
		require.NoError(t, err)
		if string(l) == ".\r\n" {
			break
		}
		got += int64(len(l))
	}
	fmt.Fprintf(nc, "QUIT\r\n")
	return got
}

// TestLargeRETR: a 100 MB message is delivered and sent with the heap
// growing by far less than its size: both ways it passes a chunk at a
// time.
func TestLargeRETR(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB through PostgreSQL")
	}
	st := open(t, testpg.DB(t))
	const size = 77 * 1361788 // 100 MiB and a bit: whole lines
	peak := heapPeak()
	require.NoError(t, st.Deliver(context.Background(), "alice", &patterned{size: size}))
	grew := peak()
	t.Logf("delivery: heap grew by %d MiB at most", grew>>20)
	assert.Less(t, grew, uint64(32<<20))
	addr := frontEnd(t, st, "rfc1939")
	peak = heapPeak()
	got := retrDiscard(t, addr, 1)
	grew = peak()
	t.Logf("RETR: heap grew by %d MiB at most", grew>>20)
	assert.Less(t, grew, uint64(32<<20))
	assert.Equal(t, int64(size+size/77), got, "every line ends in CRLF, none is dot-stuffed")
}

// heapPeak samples the heap until the returned function is called, and
// returns the largest growth over the heap at the start.
func heapPeak() func() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var top atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base && m.HeapAlloc-base > top.Load() {
				top.Store(m.HeapAlloc - base)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return top.Load()
	}
}

// writeMaildir writes messages into DIR/user/new as an MDA does.
func writeMaildir(t testing.TB, dir, user string, msgs ...string) {
	testenv.Maildir(t, dir, user, msgs...)
}

// uidl returns the UIDL listing of a session of user at addr.
func uidl(t testing.TB, addr, user string) []string {
	t.Helper()
	c := pop3test.LoggedIn(t, addr, user, "pw")
	c.OK("UIDL")
	defer c.OK("QUIT")
	return c.Multi()
}

// maildirServer serves the Maildirs under dir with alice and bob in a
// passwd-file, as pop3d did before the import.
func maildirServer(t testing.TB, dir string, sets ...string) string {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, os.WriteFile(pw, []byte("alice:"+field(t)+"\nbob:"+field(t)+"\n"), 0o600))
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.MailRoot, cfg.Passwd, cfg.Profile = dir, pw, "rfc1939"
	cfg.FailDelay, cfg.TrustedNetworks, cfg.Hostname = 0, []string{"127.0.0.0/8"}, "pop3kit.test"
	for _, s := range sets {
		require.NoError(t, cfg.AddSet(s))
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	addrs, err := srv.Listen()
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return addrs[0].String()
}

// TestImportKeepsUIDLs: a Maildir served with pop3kit-uidlist (alice:
// decimal unique-ids) and one with dovecot-uidlist (bob: Dovecot's) are
// imported; each message keeps the unique-id pop3d showed, whatever
// UIDLFormat the PostgreSQL front end uses; mail delivered afterwards
// gets a unique-id none of them had. A second import imports nothing.
func TestImportKeepsUIDLs(t *testing.T) {
	dir := t.TempDir()
	writeMaildir(t, dir, "alice", "a1\n", "a2\n", "a3\n")
	writeMaildir(t, dir, "bob", "b1\n", "b2\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bob", "dovecot-uidlist"), []byte("3 V1764000000 N40 G0123456789abcdef0123456789abcdef\n"), 0o600))
	before := map[string][]string{
		"alice": uidl(t, maildirServer(t, dir), "alice"),
		"bob":   uidl(t, maildirServer(t, dir, "UIDLFormat=dovecot"), "bob"),
	}
	require.Equal(t, []string{"1 1", "2 2", "3 3"}, before["alice"])
	require.Equal(t, []string{"1 0000002869248100", "2 0000002969248100"}, before["bob"])

	st := open(t, testpg.DB(t))
	root, err := maildir.OpenMailRoot(dir)
	require.NoError(t, err)
	defer root.Close()
	for _, u := range []string{"alice", "bob"} {
		n, total, err := st.ImportMaildir(context.Background(), root, u, pgstore.ImportOptions{DovecotUIDs: u == "bob"})
		require.NoError(t, err)
		assert.Equal(t, len(before[u]), n)
		assert.Equal(t, len(before[u]), total)
	}
	for _, set := range []string{"UIDLFormat=decimal", "UIDLFormat=dovecot"} {
		addr := frontEnd(t, st, "rfc1939", func(c *server.Config) { require.NoError(t, c.AddSet(set)) })
		for _, u := range []string{"alice", "bob"} {
			assert.Equal(t, before[u], uidl(t, addr, u), "%s, %s", u, set)
		}
	}
	for _, u := range []string{"alice", "bob"} {
		n, _, err := st.ImportMaildir(context.Background(), root, u, pgstore.ImportOptions{DovecotUIDs: u == "bob"})
		require.NoError(t, err)
		assert.Zero(t, n, "a second import of %s", u)
	}
	// The imported messages took UIDs above the Maildir's (alice 4-6, bob
	// 42-43), so new mail gets a unique-id that no message had before.
	deliver(t, st, "alice", "a4\n")
	deliver(t, st, "bob", "b3\n")
	addr := frontEnd(t, st, "rfc1939")
	assert.Equal(t, append(before["alice"], "4 7"), uidl(t, addr, "alice"))
	addr = frontEnd(t, st, "rfc1939", func(c *server.Config) { require.NoError(t, c.AddSet("UIDLFormat=dovecot")) })
	assert.Equal(t, append(before["bob"], "3 0000002c69248100"), uidl(t, addr, "bob"))
}

// TestImportInterrupted: an import cancelled midway leaves whole messages
// only, and a second run completes it with nothing doubled; a message
// removed after its import does not come back.
func TestImportInterrupted(t *testing.T) {
	dir := t.TempDir()
	var msgs []string
	for i := range 20 {
		msgs = append(msgs, fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat("x", i*1000)))
	}
	writeMaildir(t, dir, "alice", msgs...)
	root, err := maildir.OpenMailRoot(dir)
	require.NoError(t, err)
	defer root.Close()
	st := open(t, testpg.DB(t))
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	n, total, err := st.ImportMaildir(ctx, root, "alice", pgstore.ImportOptions{Progress: func(int, int) {
		if seen++; seen == 7 {
			cancel()
		}
	}})
	require.Error(t, err)
	assert.Equal(t, 20, total)
	assert.Equal(t, 7, n)
	count := func() (msgs, chunks int) {
		require.NoError(t, st.Pool().QueryRow(context.Background(), "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_chunks)").Scan(&msgs, &chunks))
		return
	}
	m, c := count()
	assert.Equal(t, 7, m)
	assert.Equal(t, 7, c, "no chunk of a message that was not committed")

	c0 := pop3test.LoggedIn(t, frontEnd(t, st, "rfc1939"), "alice", "pw")
	c0.OK("DELE 1")
	c0.OK("QUIT")
	n, _, err = st.ImportMaildir(context.Background(), root, "alice", pgstore.ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, 13, n)
	m, _ = count()
	assert.Equal(t, 19, m, "the removed message stays removed")
	var dup int
	require.NoError(t, st.Pool().QueryRow(context.Background(), "SELECT count(*) - count(DISTINCT unique_id) FROM messages").Scan(&dup))
	assert.Zero(t, dup)
}

// TestPostgresGoesAway: a PostgreSQL stopped mid-session fails the next
// command that needs it and the next login with [SYS/TEMP]; nothing is
// lost, and pop3d serves again once it is back.
func TestPostgresGoesAway(t *testing.T) {
	testpg.Need(t)
	pg, err := testpg.Start(testpg.Options{})
	require.NoError(t, err)
	defer pg.Close()
	ctx := context.Background()
	dsn, err := pg.NewDB(ctx)
	require.NoError(t, err)
	st := open(t, dsn)
	st.QueryTimeout, st.LockWait = 3*time.Second, 3*time.Second
	deliver(t, st, "alice", "one\n", "two\n")
	addr := frontEnd(t, st, "exchange")
	c := pop3test.LoggedIn(t, addr, "alice", "pw")
	c.OK("DELE 1")
	require.NoError(t, pg.Stop())
	assert.Contains(t, c.Cmd("RETR 2"), "-ERR [SYS/TEMP]")
	assert.Contains(t, c.Cmd("QUIT"), "-ERR [SYS/TEMP]", "message 1 could not be removed, and the client is told")
	d := pop3test.Dial(t, addr)
	d.OK("USER alice")
	assert.Contains(t, d.Cmd("PASS pw"), "-ERR [SYS/TEMP]")

	require.NoError(t, pg.Restart())
	assert.Equal(t, []string{"1 1", "2 2"}, uidl(t, addr, "alice"), "nothing was lost; the pool reconnects")
}
