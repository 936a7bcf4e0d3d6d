package pgstore_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testpg"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/pgstore"
)

// The benchmarks run the PostgreSQL store beside the Maildir store in the
// same run, on a cluster with fsync on (as production runs it), and a
// {PLAIN} password so that the login measures the store, not the hash.

var durable struct {
	once sync.Once
	pg   *testpg.Server
	err  error
}

func benchDB(b *testing.B) string {
	testpg.Need(b)
	durable.once.Do(func() { durable.pg, durable.err = testpg.Start(testpg.Options{Durable: true}) })
	require.NoError(b, durable.err)
	dsn, err := durable.pg.NewDB(context.Background())
	require.NoError(b, err)
	return dsn
}

func stopDurable() {
	if durable.pg != nil {
		_ = durable.pg.Close()
	}
}

// benchServers returns a Maildir pop3d and a PostgreSQL pop3d, each with
// alice's maildrop holding msg.
func benchServers(b *testing.B, msg func() io.Reader) (maildirAddr, pgAddr string) {
	dir := b.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(b, os.MkdirAll(filepath.Join(dir, "alice", sub), 0o700))
	}
	f, err := os.Create(filepath.Join(dir, "alice", "new", "1764000000.M1P1.bench"))
	require.NoError(b, err)
	_, err = io.Copy(f, msg())
	require.NoError(b, err)
	require.NoError(b, f.Close())
	pw := filepath.Join(b.TempDir(), "passwd")
	require.NoError(b, os.WriteFile(pw, []byte("alice:{PLAIN}pw\n"), 0o600))
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.MailRoot, cfg.Passwd, cfg.Profile = []string{"127.0.0.1:0"}, dir, pw, "rfc1939"
	cfg.FailDelay, cfg.TrustedNetworks, cfg.Hostname = 0, []string{"127.0.0.0/8"}, "pop3kit.test"
	cfg.MaxSessionsPerUser = 1000
	srv, err := server.New(cfg, nil)
	require.NoError(b, err)
	addrs, err := srv.Listen()
	require.NoError(b, err)
	go func() { _ = srv.Serve() }()
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	st, err := pgstore.Open(context.Background(), benchDB(b), nil)
	require.NoError(b, err)
	b.Cleanup(st.Close)
	require.NoError(b, st.SetPassword(context.Background(), "alice", "{PLAIN}pw"))
	require.NoError(b, st.Deliver(context.Background(), "alice", msg()))
	return addrs[0].String(), frontEnd(b, st, "rfc1939", func(c *server.Config) { c.MaxSessionsPerUser = 1000 })
}

// BenchmarkSessions: one session a loop (connect, USER, PASS, STAT, RETR
// of 1 kB, QUIT), sequentially; sessions/s is the figure.
func BenchmarkSessions(b *testing.B) {
	msg := "Subject: bench\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 16)
	md, pg := benchServers(b, func() io.Reader { return strings.NewReader(msg) })
	for _, s := range []struct{ name, addr string }{{"maildir", md}, {"postgres", pg}} {
		b.Run(s.name, func(b *testing.B) {
			c := pop3test.LoggedIn(b, s.addr, "alice", "pw")
			c.OK("RETR 1")
			require.Len(b, c.Multi(), 18)
			c.OK("QUIT")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c := pop3test.LoggedIn(b, s.addr, "alice", "pw")
				c.OK("STAT")
				c.OK("RETR 1")
				c.Data()
				c.OK("QUIT")
				// The maildrop is closed (the lock released) after QUIT's
				// reply; the next login waits for the connection's end.
				_, _ = io.Copy(io.Discard, c.C)
				c.C.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
}

// BenchmarkRETR100MB: RETR of one 100 MiB message, read and discarded by
// the client; MB/s is the figure.
func BenchmarkRETR100MB(b *testing.B) {
	const size = 77 * 1361788
	md, pg := benchServers(b, func() io.Reader { return &patterned{size: size} })
	for _, s := range []struct{ name, addr string }{{"maildir", md}, {"postgres", pg}} {
		b.Run(s.name, func(b *testing.B) {
			require.Equal(b, int64(size+size/77), retrDiscard(b, s.addr, 1))
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				retrDiscard(b, s.addr, 1)
			}
		})
	}
}

// BenchmarkImport: messages of 4 kB taken from a Maildir: into
// PostgreSQL by ImportMaildir (a transaction each), and, beside it, into
// another Maildir as an MDA delivers (tmp/, fsync, rename into new/).
func BenchmarkImport(b *testing.B) {
	body := "Subject: import\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 64)
	src := func(b *testing.B) (string, *maildir.MailRoot) {
		dir := b.TempDir()
		msgs := make([]string, b.N)
		for i := range msgs {
			msgs[i] = body
		}
		writeMaildir(b, dir, "alice", msgs...)
		root, err := maildir.OpenMailRoot(dir)
		require.NoError(b, err)
		b.Cleanup(func() { root.Close() })
		return dir, root
	}
	b.Run("maildir", func(b *testing.B) {
		dir, _ := src(b)
		dst := b.TempDir()
		for _, sub := range []string{"tmp", "new"} {
			require.NoError(b, os.MkdirAll(filepath.Join(dst, sub), 0o700))
		}
		ents, err := os.ReadDir(filepath.Join(dir, "alice", "new"))
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for i, e := range ents {
			in, err := os.Open(filepath.Join(dir, "alice", "new", e.Name()))
			require.NoError(b, err)
			tmp := filepath.Join(dst, "tmp", fmt.Sprint(i))
			out, err := os.Create(tmp)
			require.NoError(b, err)
			_, err = io.Copy(out, in)
			require.NoError(b, err)
			require.NoError(b, out.Sync())
			require.NoError(b, out.Close())
			in.Close()
			require.NoError(b, os.Rename(tmp, filepath.Join(dst, "new", fmt.Sprint(i))))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("postgres", func(b *testing.B) {
		_, root := src(b)
		st, err := pgstore.Open(context.Background(), benchDB(b), nil)
		require.NoError(b, err)
		defer st.Close()
		b.ReportAllocs()
		b.ResetTimer()
		n, _, err := st.ImportMaildir(context.Background(), root, "alice", pgstore.ImportOptions{})
		require.NoError(b, err)
		require.Equal(b, b.N, n)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
