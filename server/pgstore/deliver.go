package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pop3kit/pop3kit/server/account"
)

// ChunkSize is the size of a body's rows: large enough that a 100 MB
// message is 400 queries, small enough that a session holds little.
const ChunkSize = 256 << 10

// ErrNoUID: the mailbox gave its last UID (2^32 - 1); it takes no more
// mail, since a UID is never given twice.
var ErrNoUID = errors.New("pgstore: the mailbox has no UID left")

// Deliver adds the message r to user's mailbox in one transaction: the
// chunks are written with COPY, then the message row takes the next UID
// (so the mailbox row is locked only for the commit), and the message is
// whole when Deliver returns nil, absent otherwise.
func (s *Store) Deliver(ctx context.Context, user string, r io.Reader) error {
	_, err := s.deliver(ctx, user, r, "", 0)
	return err
}

// deliver is Deliver, and for Import: source is the unique-id the
// message had in its source store ("" for new mail), recorded in the same
// transaction; a message whose source was imported before is skipped
// (imported false). validity is the UIDVALIDITY of a mailbox deliver
// creates (0: now's).
func (s *Store) deliver(ctx context.Context, user string, r io.Reader, source string, validity uint32) (imported bool, err error) {
	if err := account.CheckUserName(user); err != nil {
		return false, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("pgstore: deliver: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	mbox, _, err := mailbox(ctx, tx, user, validity)
	if err != nil {
		return false, fmt.Errorf("pgstore: deliver: %w", err)
	}
	if source != "" {
		tag, err := tx.Exec(ctx, "INSERT INTO imported (mailbox_id, source) VALUES ($1, $2) ON CONFLICT DO NOTHING", mbox, source)
		if err != nil {
			return false, fmt.Errorf("pgstore: import: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return false, nil
		}
	}
	var id int64
	if err := tx.QueryRow(ctx, "SELECT nextval(pg_get_serial_sequence('messages', 'id'))").Scan(&id); err != nil {
		return false, fmt.Errorf("pgstore: deliver: %w", err)
	}
	body := &chunker{r: r, id: id}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"message_chunks"}, []string{"message_id", "seq", "data"}, body); err != nil {
		if body.err != nil {
			err = body.err
		}
		return false, fmt.Errorf("pgstore: deliver: %w", err)
	}
	var uid int64
	err = tx.QueryRow(ctx, `UPDATE mailboxes SET uid_next = uid_next + 1
		WHERE id = $1 AND uid_next <= 4294967295 RETURNING uid_next - 1`, mbox).Scan(&uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ErrNoUID
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: deliver: %w", err)
	}
	var uniqueID *string
	if source != "" {
		uniqueID = &source
	}
	if _, err := tx.Exec(ctx, `INSERT INTO messages (id, mailbox_id, uid, exact_size, storage_size, chunks, unique_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, mbox, uid, body.n+body.bare, body.n, body.seq, uniqueID); err != nil {
		return false, fmt.Errorf("pgstore: deliver: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("pgstore: deliver: commit: %w", err)
	}
	return true, nil
}

// chunker is a message as COPY rows of ChunkSize octets. It counts the
// octets and the bare LFs (an LF not after a CR: two octets in the CRLF
// form) as they pass.
type chunker struct {
	r      io.Reader
	id     int64
	seq    int32
	buf    []byte
	row    [3]any
	n      int64
	bare   int64
	prevCR bool
	err    error // the reader's error, which COPY reports as its own
}

func (c *chunker) Next() bool {
	if c.buf == nil {
		c.buf = make([]byte, ChunkSize)
	}
	n, err := io.ReadFull(c.r, c.buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		c.err = err
		return false
	}
	if n == 0 {
		return false
	}
	b := c.buf[:n]
	c.count(b)
	c.row = [3]any{c.id, c.seq, b}
	c.seq++
	return true
}

func (c *chunker) count(b []byte) {
	c.n += int64(len(b))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.prevCR = b[len(b)-1] == '\r'
			return
		}
		if !(i > 0 && b[i-1] == '\r' || i == 0 && c.prevCR) {
			c.bare++
		}
		c.prevCR = false
		b = b[i+1:]
	}
}

// Values is the row Next read; COPY encodes it before the next Next, so
// the one buffer serves every chunk.
func (c *chunker) Values() ([]any, error) { return c.row[:], nil }
func (c *chunker) Err() error             { return c.err }
