package pgstore

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func repairOpen(t *testing.T, ctx context.Context, q querier, db *memDB) (*box, error) {
	t.Helper()
	st := &Store{log: slog.New(slog.DiscardHandler), QueryTimeout: time.Second, LockWait: time.Second}
	b := &box{s: st, via: q}
	return b, b.open(ctx, q, "f", false)
}

// TestRepairUniqueIDStays: a message's unique-id does not depend on the
// other messages (RFC 1939 §7: it persists across sessions): two rows
// imported with one unique-id are served it, as they always were, and
// removing the first leaves the second's as it was.
func TestRepairUniqueIDStays(t *testing.T) {
	rowA := []any{int64(1), uint32(1), int64(1), int64(1), int32(0), "same"}
	rowB := []any{int64(2), uint32(2), int64(1), int64(1), int32(0), "same"}
	db := &memDB{chunks: map[[2]int64][]byte{}, msgs: [][]any{rowA, rowB}}
	b, err := repairOpen(t, context.Background(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	before := b.UniqueID(1)
	db.msgs = [][]any{rowB} // A removed (DELE, QUIT) in that session
	b, err = repairOpen(t, context.Background(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	if after := b.UniqueID(0); after != before {
		t.Errorf("message uid 2's unique-id was %q, the next session %q", before, after)
	}
}

// TestRepairMissingChunk: a row with a negative size whose chunks cannot
// all be read (one lost) does not refuse the login: its size is what
// could be read, and RETR of it fails by itself.
func TestRepairMissingChunk(t *testing.T) {
	db := &memDB{chunks: map[[2]int64][]byte{{1, 0}: []byte("first half\n")}}
	db.msgs = [][]any{
		{int64(1), uint32(1), int64(-1), int64(-1), int32(2), ""},
		{int64(2), uint32(2), int64(1), int64(1), int32(0), ""},
	}
	if _, err := repairOpen(t, context.Background(), db, db); err != nil {
		t.Errorf("the mailbox does not open: %v", err)
	}
}

// ctxDB is memDB that honours its callers' contexts, as pgx does, and
// counts the chunks read.
type ctxDB struct {
	*memDB
	chunkReads int
}

func (db *ctxDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if strings.Contains(sql, "FROM message_chunks") {
		db.chunkReads++
	}
	return db.memDB.Query(ctx, sql, args...)
}

// TestRepairMeasureWithinLogin: measuring at login reads within the
// login's context (Store.Open bounds it by LockWait): a login whose time
// is up reads no more chunks.
func TestRepairMeasureWithinLogin(t *testing.T) {
	mem := &memDB{chunks: map[[2]int64][]byte{}}
	for i := range 200 {
		id := int64(i + 1)
		for seq := range 4 {
			mem.chunks[[2]int64{id, int64(seq)}] = []byte(strings.Repeat("x", 1000) + "\n")
		}
		mem.msgs = append(mem.msgs, []any{id, uint32(id), int64(-1), int64(-1), int32(4), ""})
	}
	db := &ctxDB{memDB: mem}
	// The message list is read; then the login's time runs out.
	ctx, cancel := context.WithCancel(context.Background())
	lister := &cancelAfterList{ctxDB: db, cancel: cancel}
	_, err := repairOpen(t, ctx, lister, mem)
	if db.chunkReads > 0 {
		t.Errorf("%d chunks read after the login's context ended (open: %v)", db.chunkReads, err)
	}
}

// cancelAfterList cancels the login's context once the message list has
// been read.
type cancelAfterList struct {
	*ctxDB
	cancel func()
}

func (q *cancelAfterList) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := q.ctxDB.Query(ctx, sql, args...)
	if strings.Contains(sql, "FROM messages") {
		q.cancel()
	}
	return rows, err
}
