package pgstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/store"
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
// and with opts.Exclusive the mailbox's lock, a lease row this front end
// renews until Close. No connection is held between queries: an idle
// session, locked or not, takes nothing from the pool.
func (s *Store) Open(ctx context.Context, user string, o store.OpenOptions) (pop3.Maildrop, error) {
	ctx, cancel := context.WithTimeout(ctx, s.LockWait)
	defer cancel()
	b := &box{s: s, dovecot: o.DovecotUIDs, exact: o.ExactSizes}
	if err := b.open(ctx, s.pool, user, o.Exclusive); err != nil {
		return nil, busy(ctx, "open mailbox", err)
	}
	return b, nil
}

// busy marks an error of a login that ran out of time as ErrBusy.
func busy(ctx context.Context, what string, err error) error {
	if errors.Is(err, store.ErrInUse) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pgstore: %s: %w: %w", what, store.ErrBusy, err)
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
	if err == nil {
		err = b.repair(ctx, user)
	}
	return b.unlockAfter(err)
}

// repair makes the rows of a damaged mailbox servable, rather than let the
// runtime refuse its owner's every login (it checks each size and
// unique-id at login), each from its own row alone, so that a message's
// unique-id does not depend on the others and stays the same from session
// to session: a negative chunk count is none; a negative size is measured
// from the chunks, within the login's time (a message whose chunks cannot
// all be read gets the size of what could); a unique-id RFC 1939 does not
// allow (1 to 70 characters from 0x21 to 0x7E) is replaced by the
// message's UID, as if it had none. No client was ever given such a
// unique-id: the runtime refused every login of the mailbox. Each repair is
// logged.
func (b *box) repair(ctx context.Context, user string) error {
	for i := range b.msgs {
		m := &b.msgs[i]
		if m.chunks < 0 {
			b.s.log.Warn("pgstore: a message's chunk count is negative; taken as none", "user", user, "uid", m.uid, "chunks", m.chunks)
			m.chunks = 0
		}
		if m.exact < 0 || m.storage < 0 {
			exact, storage, err := b.measure(ctx, m)
			b.s.log.Warn("pgstore: a message's size is negative; measured", "user", user, "uid", m.uid, "exact", exact, "storage", storage, "err", err)
			m.exact, m.storage = exact, storage
		}
		if m.uniqueID != "" && !pop3.ValidUID(m.uniqueID) {
			b.s.log.Warn("pgstore: an imported unique-id cannot be served; the UID's is used", "user", user, "uid", m.uid, "unique_id", fmt.Sprintf("%.80q", m.uniqueID))
			m.uniqueID = ""
		}
	}
	return nil
}

// measure reads message m's chunks for its sizes: the octets stored and
// those of its CRLF form, counted as delivery counts them (chunker).
func (b *box) measure(ctx context.Context, m *msg) (exact, storage int64, err error) {
	r := &reader{b: b, m: m, ctx: ctx}
	var c chunker
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		c.count(buf[:n])
		if err == io.EOF {
			return c.n + c.bare, c.n, nil
		}
		if err != nil {
			return c.n + c.bare, c.n, err // what could be read
		}
	}
}

// lock takes the mailbox's lock, a lease row, or answers ErrInUse while
// another session holds it unexpired. A client that reconnects as soon as
// QUIT's reply came finds it free: the core closes the maildrop (and so
// unlocks) before that reply goes out.
func (b *box) lock(ctx context.Context, q querier) error {
	b.holder = rand.Text()
	var ok bool
	err := q.QueryRow(ctx, `INSERT INTO mailbox_locks (mailbox_id, holder, expires)
		VALUES ($1, $2, now() + make_interval(secs => $3))
		ON CONFLICT (mailbox_id) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
		WHERE mailbox_locks.expires < now()
		RETURNING true`, b.id, b.holder, leaseTime.Seconds()).Scan(&ok)
	if err == pgx.ErrNoRows {
		return store.ErrInUse
	}
	if err != nil {
		return err
	}
	b.s.leaseLock(b.holder)
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
	exact    bool // Size states exact sizes (store.OpenOptions.ExactSizes)
	// locked is set while the session holds the mailbox's lock, the
	// lease row of holder.
	locked bool
	holder string
	// buf is the chunk buffer of the session's readers, reused.
	buf []byte
	// via is what the session's queries run on, the store's pool when
	// nil (the row fuzz target's rows in memory otherwise).
	via querier
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
	if b.via != nil {
		return b.via
	}
	return b.s.pool
}

func (b *box) Len() int              { return len(b.msgs) }
func (b *box) ExactSize(i int) int64 { return b.msgs[i].exact }
func (b *box) UniqueID(i int) string { return uniqueID(&b.msgs[i], b.validity, b.dovecot) }

// Size is what STAT and LIST state: the exact size, or the octets stored.
func (b *box) Size(i int) int64 {
	if b.exact {
		return b.msgs[i].exact
	}
	return b.msgs[i].storage
}

// uniqueID is the unique-id a message had before import, or else its UID
// in decimal, or in Dovecot's format (%08x%08x of UID and UIDVALIDITY,
// lower-case, as Dovecot writes it).
func uniqueID(m *msg, validity uint32, dovecot bool) string {
	switch {
	case m.uniqueID != "":
		return m.uniqueID
	case dovecot:
		return store.DovecotUID(m.uid, validity)
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
		return nil, store.ErrGone
	}
	return &reader{b: b, m: m}, nil
}

// reader reads a message's chunks in turn; it holds one chunk at most.
type reader struct {
	b    *box
	m    *msg
	seq  int32
	rest []byte // what is left of the chunk read last
	// ctx bounds the reads (a login's measuring); nil: each chunk's read
	// has QueryTimeout.
	ctx context.Context
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
	parent := r.ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, r.b.s.QueryTimeout)
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
		return fmt.Errorf("pgstore: message uid %d, chunk %d: %w", r.m.uid, r.seq, store.ErrGone)
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
// or, when it fails, none (a *store.RemoveError). A message already
// removed by another session counts as removed.
func (b *box) Remove(indexes []int) error {
	ids := make([]int64, 0, len(indexes))
	for _, i := range indexes {
		if i >= 0 && i < len(b.msgs) {
			ids = append(ids, b.msgs[i].id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.s.QueryTimeout)
	defer cancel()
	if !b.locked {
		if _, err := b.q().Exec(ctx, "DELETE FROM messages WHERE mailbox_id = $1 AND id = ANY($2)", b.id, ids); err != nil {
			return &store.RemoveError{Failed: len(ids), Err: fmt.Errorf("pgstore: remove: %w", err)}
		}
		return nil
	}
	// Under the lock, only while it is still the session's: a front end
	// cut off from the database too long to renew it has lost it, and
	// another session may be serving the mailbox now.
	err := pgx.BeginFunc(ctx, b.s.pool, func(tx pgx.Tx) error {
		var held bool
		err := tx.QueryRow(ctx, `SELECT true FROM mailbox_locks WHERE mailbox_id = $1 AND holder = $2 AND expires > now() FOR UPDATE`,
			b.id, b.holder).Scan(&held)
		if err == pgx.ErrNoRows {
			return errLockLost
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM messages WHERE mailbox_id = $1 AND id = ANY($2)", b.id, ids)
		return err
	})
	if err != nil {
		return &store.RemoveError{Failed: len(ids), Err: fmt.Errorf("pgstore: remove: %w", err)}
	}
	return nil
}

// errLockLost: the session's lock lapsed before UPDATE (its front end
// could not renew it); nothing was removed.
var errLockLost = errors.New("the maildrop's lock lapsed before UPDATE; nothing was removed")

// Close releases the lock, if the session holds it.
func (b *box) Close() error {
	if b.locked {
		b.unlock()
	}
	return nil
}

// unlock ends the lock's lease; when that fails, the lease lapses by
// itself within leaseTime, no longer renewed.
func (b *box) unlock() {
	b.locked = false
	b.s.endLockLease(b.holder)
	ctx, cancel := context.WithTimeout(context.Background(), b.s.QueryTimeout)
	defer cancel()
	if _, err := b.s.pool.Exec(ctx, "DELETE FROM mailbox_locks WHERE mailbox_id = $1 AND holder = $2", b.id, b.holder); err != nil {
		b.s.log.Warn("pgstore: a mailbox lock was not ended; it lapses by itself", "err", err)
	}
}
