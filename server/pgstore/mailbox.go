package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pop3kit/pop3kit/server"
)

// querier is what a mailbox's queries run on: the session's own
// connection (exclusive) or the pool (snapshot).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// mailbox returns user's mailbox id and UIDVALIDITY, creating the mailbox
// if the user has none yet (as Maildir creates the directory).
func mailbox(ctx context.Context, q querier, user string, validity uint32) (id int64, v uint32, err error) {
	const sel = "SELECT id, uidvalidity FROM mailboxes WHERE owner = $1"
	err = q.QueryRow(ctx, sel, user).Scan(&id, &v)
	if !errors.Is(err, pgx.ErrNoRows) {
		return id, v, err
	}
	if validity == 0 {
		validity = uint32(time.Now().Unix())
	}
	err = q.QueryRow(ctx, `INSERT INTO mailboxes (owner, uidvalidity) VALUES ($1, $2)
		ON CONFLICT (owner) DO NOTHING RETURNING id, uidvalidity`, user, int64(validity)).Scan(&id, &v)
	if errors.Is(err, pgx.ErrNoRows) { // created meanwhile by another session
		err = q.QueryRow(ctx, sel, user).Scan(&id, &v)
	}
	return id, v, err
}

// Open opens user's mailbox: its message list, fixed now (the snapshot),
// and with opts.Exclusive the mailbox's advisory lock, held on a
// connection of the session's own until Close.
func (s *Store) Open(ctx context.Context, user string, o server.OpenOptions) (server.Mailbox, error) {
	ctx, cancel := context.WithTimeout(ctx, s.LockWait)
	defer cancel()
	b := &box{s: s, dovecot: o.DovecotUIDs}
	var q querier = s.pool
	if o.Exclusive {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return nil, busy(ctx, "no connection to PostgreSQL", err)
		}
		b.conn, q = c, c
	}
	err := b.open(ctx, q, user, o.Exclusive)
	if err != nil {
		if b.conn != nil {
			b.conn.Release()
		}
		return nil, busy(ctx, "open mailbox", err)
	}
	return b, nil
}

// busy marks an error of a login that ran out of time as ErrBusy.
func busy(ctx context.Context, what string, err error) error {
	if errors.Is(err, server.ErrInUse) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pgstore: %s: %w: %w", what, server.ErrBusy, err)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

func (b *box) open(ctx context.Context, q querier, user string, exclusive bool) error {
	var err error
	if b.id, b.validity, err = mailbox(ctx, q, user, 0); err != nil {
		return err
	}
	if exclusive {
		if err := b.lock(ctx, q); err != nil {
			return err
		}
		b.locked = true
	}
	rows, err := q.Query(ctx, `SELECT id, uid, exact_size, storage_size, chunks, coalesce(unique_id, '')
		FROM messages WHERE mailbox_id = $1 ORDER BY uid`, b.id)
	if err != nil {
		return b.unlockAfter(err)
	}
	var m msg
	_, err = pgx.ForEachRow(rows, []any{&m.id, &m.uid, &m.exact, &m.storage, &m.chunks, &m.uniqueID}, func() error {
		b.msgs = append(b.msgs, m)
		return nil
	})
	return b.unlockAfter(err)
}

// lock takes the mailbox's advisory lock, or answers ErrInUse. A client
// that reconnects as soon as QUIT's reply came finds it free: the core
// closes the maildrop (and so unlocks) before that reply goes out.
func (b *box) lock(ctx context.Context, q querier) error {
	var ok bool
	if err := q.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", b.id).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return server.ErrInUse
	}
	return nil
}

// unlockAfter gives up the lock of an open that failed after taking it.
func (b *box) unlockAfter(err error) error {
	if err != nil && b.locked {
		b.unlock()
	}
	return err
}

// box is one session's mailbox.
type box struct {
	s        *Store
	id       int64
	validity uint32
	msgs     []msg
	dovecot  bool
	// conn is the session's connection, holding the lock (locked); nil
	// for a snapshot, whose queries take any connection of the pool.
	conn   *pgxpool.Conn
	locked bool
	// buf is the chunk buffer of the session's readers, reused.
	buf []byte
}

// msg is one message of the list.
type msg struct {
	id             int64
	uid            uint32
	exact, storage int64
	chunks         int32
	uniqueID       string // imported; "" derives it from uid
}

func (b *box) q() querier {
	if b.conn != nil {
		return b.conn
	}
	return b.s.pool
}

func (b *box) Len() int              { return len(b.msgs) }
func (b *box) Exact(i int) int64     { return b.msgs[i].exact }
func (b *box) Storage(i int) int64   { return b.msgs[i].storage }
func (b *box) UniqueID(i int) string { return uniqueID(&b.msgs[i], b.validity, b.dovecot) }

// uniqueID is the unique-id a message had before import, or else its UID
// in decimal, or in Dovecot's format (%08x%08x of UID and UIDVALIDITY,
// lower-case, as Dovecot writes it).
func uniqueID(m *msg, validity uint32, dovecot bool) string {
	switch {
	case m.uniqueID != "":
		return m.uniqueID
	case dovecot:
		return fmt.Sprintf("%08x%08x", m.uid, validity)
	}
	return strconv.FormatUint(uint64(m.uid), 10)
}

// Open returns a reader of message i that fetches its body a chunk at a
// time. A message another session removed since the list was made is
// ErrGone.
func (b *box) Open(i int) (io.ReadCloser, error) {
	m := &b.msgs[i]
	ctx, cancel := context.WithTimeout(context.Background(), b.s.QueryTimeout)
	defer cancel()
	var ok bool
	if err := b.q().QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1)", m.id).Scan(&ok); err != nil {
		return nil, fmt.Errorf("pgstore: message uid %d: %w", m.uid, err)
	}
	if !ok {
		return nil, server.ErrGone
	}
	return &reader{b: b, m: m}, nil
}

// reader reads a message's chunks in turn; it holds one chunk at most.
type reader struct {
	b    *box
	m    *msg
	seq  int32
	rest []byte // what is left of the chunk read last
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.seq >= r.m.chunks {
			return 0, io.EOF
		}
		if err := r.fetch(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// fetch reads chunk r.seq into the box's buffer. The bytea arrives in
// binary; it is copied out of pgx's read buffer, valid only until the
// next row, into one buffer per session rather than a new slice a chunk.
func (r *reader) fetch() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.b.s.QueryTimeout)
	defer cancel()
	rows, err := r.b.q().Query(ctx, "SELECT data FROM message_chunks WHERE message_id = $1 AND seq = $2", r.m.id, r.seq)
	if err != nil {
		return fmt.Errorf("pgstore: message uid %d: %w", r.m.uid, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("pgstore: message uid %d: %w", r.m.uid, err)
		}
		return fmt.Errorf("pgstore: message uid %d, chunk %d: %w", r.m.uid, r.seq, server.ErrGone)
	}
	if rows.FieldDescriptions()[0].Format == pgx.BinaryFormatCode {
		r.b.buf = append(r.b.buf[:0], rows.RawValues()[0]...)
	} else if err := rows.Scan(&r.b.buf); err != nil {
		return err
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgstore: message uid %d: %w", r.m.uid, err)
	}
	r.rest = r.b.buf
	r.seq++
	return nil
}

func (r *reader) Close() error { return nil }

// Seek goes back to the first octet (TOP measures what it sends with
// it); no other offset is supported.
func (r *reader) Seek(off int64, whence int) (int64, error) {
	if off != 0 || whence != io.SeekStart {
		return 0, errors.New("pgstore: a message reader seeks only to its start")
	}
	r.seq, r.rest = 0, nil
	return 0, nil
}

// Remove removes the messages at indexes in one statement: all of them
// or, when it fails, none. A message already removed by another session
// counts as removed.
func (b *box) Remove(indexes []int) (int, error) {
	ids := make([]int64, 0, len(indexes))
	for _, i := range indexes {
		if i >= 0 && i < len(b.msgs) {
			ids = append(ids, b.msgs[i].id)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.s.QueryTimeout)
	defer cancel()
	if _, err := b.q().Exec(ctx, "DELETE FROM messages WHERE mailbox_id = $1 AND id = ANY($2)", b.id, ids); err != nil {
		return len(ids), fmt.Errorf("pgstore: remove: %w", err)
	}
	return 0, nil
}

// Close releases the lock and the connection.
func (b *box) Close() error {
	if b.conn == nil {
		return nil
	}
	if b.locked {
		b.unlock()
	}
	if b.conn != nil {
		b.conn.Release()
		b.conn = nil
	}
	return nil
}

// unlock releases the advisory lock; when that fails, the connection is
// closed instead, which releases it as well (never back to the pool with
// the lock held).
func (b *box) unlock() {
	b.locked = false
	ctx, cancel := context.WithTimeout(context.Background(), b.s.QueryTimeout)
	defer cancel()
	if _, err := b.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", b.id); err != nil {
		c := b.conn.Hijack()
		b.conn = nil
		_ = c.Close(ctx)
	}
}
