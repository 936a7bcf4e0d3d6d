// Package pgstore is a PostgreSQL store for pop3d: users and their
// password hashes, mailboxes and messages in one database that any number
// of pop3d front ends share.
//
// The driver is github.com/jackc/pgx/v5: the maintained PostgreSQL driver,
// with a connection pool (pgxpool), COPY (bodies are written with it) and
// context cancellation on every query (a session's queries are bounded,
// and a PostgreSQL that goes away fails them instead of hanging them).
//
// The exclusive-access lock of RFC 1939 is a lease row of the mailbox
// (mailbox_locks), as each session's count toward the per-user limit is
// (sessions): taken only where none is unexpired, renewed every 5 s by the
// front end that holds it, lapsed within 15 s when that front end dies.
// UPDATE removes under the lock only while the lease is still the
// session's. No session holds a connection between its queries, so the
// pool (pool_max_conns in the URL) is sized for the queries at once, not
// the sessions: 500 idle locked sessions leave a pool of 4 free.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/store"
)

// migrations are the schema's versions, applied in the order of their
// numbers: NNNN_what.sql. A file, once released, never changes; a change
// to the schema is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Store is a PostgreSQL database as pop3d's Store, Authenticator and
// Deliverer. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// QueryTimeout bounds each query a session makes outside a login
	// (reading a chunk, removing the marked, looking up a user).
	QueryTimeout time.Duration
	// LockWait bounds a login's wait for a connection and its queries.
	LockWait time.Duration

	leases leases // the sessions this front end holds (limits.go)
}

var (
	_ store.Store           = (*Store)(nil)
	_ account.Authenticator = (*Store)(nil)
	_ store.Deliverer       = (*Store)(nil)
)

// defaultMaxConns is the pool's size unless the URL sets pool_max_conns:
// enough for the queries of many logins, deliveries and RETRs at once.
const defaultMaxConns = 64

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as libpq reads them) and brings its schema up to date.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{pool: pool, log: log, QueryTimeout: 30 * time.Second, LockWait: maildir.DefaultLockWait}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %s: %w", cfg.ConnConfig.Database, err)
	}
	return s, nil
}

// Close closes the pool's connections (and so releases the locks of any
// session still open).
func (s *Store) Close() {
	s.leases.mu.Lock()
	if s.leases.stop != nil {
		close(s.leases.stop)
		s.leases.stop = nil
	}
	s.leases.mu.Unlock()
	s.pool.Close()
}

// Pool is the store's connection pool, for tools and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// migrateLock is the advisory lock (pop3kit's two-key space: 'pop3', 1)
// that front ends starting at once queue on, so that one of them migrates
// and the others find the schema current.
const migrateLockClass, migrateLockObj = 0x706f7033, 1

// Version is the schema version this package knows: the highest
// migration's number.
func Version() int {
	vs, _ := versions()
	return vs[len(vs)-1].n
}

type migration struct {
	n    int
	name string
}

func versions() ([]migration, error) {
	ents, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n != len(out)+1 {
			return nil, fmt.Errorf("migration %s: want %04d_….sql", e.Name(), len(out)+1)
		}
		out = append(out, migration{n, e.Name()})
	}
	return out, nil
}

// migrate applies the migrations the database lacks, each in a
// transaction of its own with its schema_version row, under an advisory
// lock. A database newer than this package is refused: this pop3d would
// not know its tables.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := versions()
	if err != nil {
		return err
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", migrateLockClass, migrateLockObj); err != nil {
		return err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Exec(uctx, "SELECT pg_advisory_unlock($1, $2)", migrateLockClass, migrateLockObj); err != nil {
			c.Hijack().Close(uctx) // the lock goes with the connection
		}
	}()
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version integer PRIMARY KEY,
		name    text NOT NULL,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var cur int
	if err := c.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&cur); err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("schema version %d is newer than this pop3d's (%d): run a newer pop3d", cur, len(ms))
	}
	if cur > 0 && cur < leaseMigration {
		if err := noOldLocks(ctx, c); err != nil {
			return err
		}
	}
	for _, m := range ms[cur:] {
		sql, err := migrations.ReadFile(path.Join("migrations", m.name))
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.n, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		s.log.Info("schema migrated", "version", m.n, "migration", m.name)
	}
	return nil
}

// leaseMigration is the migration that made the mailbox lock a lease row:
// front ends from before it take a session advisory lock instead, and the
// two kinds would not see each other's locks.
const leaseMigration = 3

// noOldLocks refuses to migrate past leaseMigration while front ends from
// before it hold mailbox locks on the database: single-key advisory locks
// whose key is a mailbox's id, as they took them (this package's own are
// two-key, and another application's locks on a shared database are not
// mistaken for theirs unless their keys happen to be mailbox ids). It cannot see an older
// front end that holds none at this moment: the README asks that every
// front end be stopped before such an upgrade.
func noOldLocks(ctx context.Context, c *pgxpool.Conn) error {
	var n int
	err := c.QueryRow(ctx, `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid <> pg_backend_pid()
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND (classid::text::bigint << 32) + objid::text::bigint IN (SELECT id FROM mailboxes)`).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("schema migration %d changes how mailboxes are locked, and %d mailbox%s locked by front ends of an older pop3d: stop every front end on this database, then start the new ones",
			leaseMigration, n, map[bool]string{true: " is", false: "es are"}[n == 1])
	}
	return nil
}

// Lookup returns user's account from the users table; its password is a
// passwd-file field ({SCHEME}hash), parsed as the passwd-file's are.
func (s *Store) Lookup(user string) (*account.Account, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.QueryTimeout)
	defer cancel()
	var field string
	err := s.pool.QueryRow(ctx, "SELECT password FROM users WHERE name = $1", user).Scan(&field)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: users: %w", err)
	}
	a, err := account.ParseAccount(user + ":" + field)
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: user %.80q: %w", user, err)
	}
	return a, true, nil
}

// SetPassword sets user's password field ({SCHEME}hash, as
// server.HashPassword returns it), adding the user if new.
func (s *Store) SetPassword(ctx context.Context, user, field string) error {
	if err := account.CheckUserName(user); err != nil {
		return err
	}
	if _, err := account.ParseAccount(user + ":" + field); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (name, password) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET password = EXCLUDED.password`, user, field)
	return err
}
