package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	fuzz "github.com/AdaLogics/go-fuzz-headers"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/internal/sessionmodel"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// memRows is pgx.Rows over values in memory: what a damaged or hostile
// database could hand the store, decoded as pgx hands it.
type memRows struct {
	rows   [][]any
	i      int
	closed bool
}

func (r *memRows) Close()                        { r.closed = true }
func (r *memRows) Err() error                    { return nil }
func (r *memRows) CommandTag() pgconn.CommandTag { return pgconn.NewCommandTag("SELECT") }
func (r *memRows) Conn() *pgx.Conn               { return nil }
func (r *memRows) TypeMap() *pgtype.Map          { return pgtype.NewMap() }
func (r *memRows) Next() bool {
	if r.closed || r.i >= len(r.rows) {
		r.closed = true
		return false
	}
	r.i++
	return true
}

func (r *memRows) FieldDescriptions() []pgconn.FieldDescription {
	return []pgconn.FieldDescription{{Format: pgx.BinaryFormatCode}}
}

func (r *memRows) Values() ([]any, error) { return r.rows[r.i-1], nil }

func (r *memRows) RawValues() [][]byte {
	var out [][]byte
	for _, v := range r.rows[r.i-1] {
		b, _ := v.([]byte)
		out = append(out, b)
	}
	return out
}

func (r *memRows) Scan(dest ...any) error { return scanInto(r.rows[r.i-1], dest) }

// scanInto assigns a row's values to Scan's destinations, as pgx would
// for the columns' types.
func scanInto(row []any, dest []any) error {
	if len(dest) != len(row) {
		return fmt.Errorf("%d destinations for %d values", len(dest), len(row))
	}
	for k, d := range dest {
		switch d := d.(type) {
		case *int64:
			*d = row[k].(int64)
		case *uint32:
			*d = row[k].(uint32)
		case *int32:
			*d = row[k].(int32)
		case *string:
			*d = row[k].(string)
		case *[]byte:
			*d = append((*d)[:0], row[k].([]byte)...)
		default:
			return fmt.Errorf("cannot scan into %T", d)
		}
	}
	return nil
}

type memRow struct {
	vals []any
	err  error
}

func (r memRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return scanInto(r.vals, dest)
}

// memDB answers the store's queries of one mailbox from rows in memory.
type memDB struct {
	msgs    [][]any             // id, uid, exact_size, storage_size, chunks, unique_id
	chunks  map[[2]int64][]byte // (message id, seq) → data
	removed [][]int64
}

func (db *memDB) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if strings.HasPrefix(sql, "DELETE FROM messages") {
		db.removed = append(db.removed, args[1].([]int64))
	}
	return pgconn.NewCommandTag("DELETE 0"), nil
}

func (db *memDB) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	switch {
	case strings.Contains(sql, "FROM messages"):
		return &memRows{rows: db.msgs}, nil
	case strings.Contains(sql, "FROM message_chunks"):
		data, ok := db.chunks[[2]int64{args[0].(int64), int64(args[1].(int32))}]
		if !ok {
			return &memRows{}, nil
		}
		return &memRows{rows: [][]any{{data}}}, nil
	}
	return nil, errors.New("memDB: unknown query")
}

func (db *memDB) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	if strings.Contains(sql, "FROM mailboxes") {
		return memRow{vals: []any{int64(1), uint32(1764100000)}}
	}
	return memRow{err: errors.New("memDB: unknown query")}
}

// rowsLogin is a Handler whose every login gets the mailbox of db.
type rowsLogin struct {
	sessionmodel.Accept
	box *box
}

func (h rowsLogin) Pass(_, _ []byte) (pop3.Maildrop, error) { return h.box, nil }

// FuzzMailboxRows: the rows of a mailbox and of its messages' chunks, as a
// damaged or hostile database could hold them (unique-ids of any octets
// and length, sizes negative or wrong, chunk counts that do not match the
// chunks, UIDs repeated or zero), are decoded and served to a session
// (STAT, LIST, UIDL, TOP and RETR of each, DELE of some, QUIT). Oracles:
// no panic; every reply line at most 512 octets and ending in CRLF, every
// status +OK or -ERR; a UIDL line's unique-id 1 to 70 characters from
// 0x21 to 0x7E (RFC 1939 §7), or the command refused; RETR's body as many
// octets as the chunks hold in CRLF form, or an -ERR before any of it;
// only the messages marked are removed.
func FuzzMailboxRows(f *testing.F) {
	f.Add([]byte("\x03\x01\x00\x00\x00\x05hello\x00\x00\x00\x02a1\x02\x00\x00\x00\x06.world\x00\x00\x00\x00"), uint8(5))
	f.Add([]byte("\x02\x01\x00\x00\x00\x03a b\x00\x00\x00\x05u i d\x01\x00\x00\x00\x00\x00\x00\x00\x48"), uint8(0xff))
	fuzzbound.Fuzz(f, func(t *testing.T, data []byte, marks uint8) {
		c := fuzz.NewConsumer(data)
		n, _ := c.GetByte()
		db := &memDB{chunks: map[[2]int64][]byte{}}
		bodies := map[int64][]byte{}
		for i := range int(n % 8) {
			id := int64(i + 1)
			uidb, _ := c.GetByte()
			body, _ := c.GetBytes()
			uniq, _ := c.GetString()
			var sizes [2]int64
			for k := range sizes {
				v, _ := c.GetInt()
				sizes[k] = int64(v)
			}
			chunkb, _ := c.GetByte()
			chunks := int32(chunkb%4) - 1 // -1 … 2
			// The body in up to two chunks; chunks may say otherwise.
			half := len(body) / 2
			db.chunks[[2]int64{id, 0}] = body[:half]
			db.chunks[[2]int64{id, 1}] = body[half:]
			bodies[id] = body
			db.msgs = append(db.msgs, []any{id, uint32(uidb % 6), sizes[0], sizes[1], chunks, uniq})
		}
		st := &Store{log: slog.New(slog.DiscardHandler), QueryTimeout: time.Second, LockWait: time.Second}
		b := &box{s: st, via: db, dovecot: marks&0x40 != 0, exact: marks&0x80 != 0}
		if err := b.open(context.Background(), db, "f", false); err != nil {
			t.Fatalf("open: %v", err)
		}
		v, _ := pop3gen.Profile(pop3gen.ProfileNames[int(marks)%len(pop3gen.ProfileNames)])
		var out bytes.Buffer
		s := pop3.NewSession(rowsLogin{box: b}, pop3.NewWriter(&out), &v)
		s.SetMode(pop3.ModeSecure)
		feed := func(line string) []byte {
			out.Reset()
			s.Feed([]byte(line + "\r\n"))
			checkRowsReply(t, line, out.Bytes())
			return out.Bytes()
		}
		feed("USER f")
		if r := feed("PASS x"); !bytes.HasPrefix(r, []byte("+OK")) {
			t.Fatalf("PASS: %q", r)
		}
		feed("STAT")
		feed("LIST")
		uidl := feed("UIDL")
		if bytes.HasPrefix(uidl, []byte("+OK")) {
			for _, l := range bytes.Split(uidl, []byte("\r\n"))[1:] {
				if len(l) == 0 || bytes.Equal(l, []byte(".")) {
					continue
				}
				_, id, _ := bytes.Cut(l, []byte(" "))
				if len(id) < 1 || len(id) > 70 || bytes.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
					t.Fatalf("UIDL line %q: a unique-id RFC 1939 §7 does not allow", l)
				}
			}
		}
		var marked []int64
		for i := range b.Len() {
			feed(fmt.Sprintf("TOP %d 1", i+1))
			r := feed(fmt.Sprintf("RETR %d", i+1))
			if bytes.HasPrefix(r, []byte("+OK")) {
				want := crlfForm(bodies[b.msgs[i].id], b.msgs[i].chunks)
				if got := retrBody(r); !bytes.Equal(got, want) {
					t.Fatalf("RETR %d: %q, the chunks hold %q", i+1, got, want)
				}
			}
			if marks>>(i%6)&1 != 0 {
				if r := feed(fmt.Sprintf("DELE %d", i+1)); bytes.HasPrefix(r, []byte("+OK")) {
					marked = append(marked, b.msgs[i].id)
				}
			}
		}
		feed("QUIT")
		_ = s.Close()
		var removed []int64
		for _, r := range db.removed {
			removed = append(removed, r...)
		}
		if fmt.Sprint(removed) != fmt.Sprint(marked) && !(len(removed) == 0 && len(marked) == 0) {
			t.Fatalf("removed %v, marked %v", removed, marked)
		}
	})
}

// checkRowsReply: every line at most 512 octets and ending in CRLF, the
// status +OK or -ERR.
func checkRowsReply(t *testing.T, line string, out []byte) {
	t.Helper()
	if len(out) == 0 {
		return
	}
	if !bytes.HasPrefix(out, []byte("+OK")) && !bytes.HasPrefix(out, []byte("-ERR")) {
		t.Fatalf("%q: reply %q", line, out)
	}
	for _, l := range bytes.SplitAfter(out, []byte("\r\n")) {
		if len(l) > pop3.MaxReplyOctets || len(l) > 0 && !bytes.HasSuffix(l, []byte("\r\n")) {
			t.Fatalf("%q: reply line %q", line, l)
		}
	}
}

// crlfForm is what RETR sends of a message stored as body in two chunks
// of which the row says there are chunks: the CRLF form of the chunks it
// reads, dot-stuffed.
func crlfForm(body []byte, chunks int32) []byte {
	half := len(body) / 2
	var read []byte
	for seq := range max(chunks, 0) {
		if seq == 0 {
			read = append(read, body[:half]...)
		} else {
			read = append(read, body[half:]...)
		}
	}
	var w bytes.Buffer
	d := pop3.NewDotWriter(&w)
	_, _ = d.Write(read)
	_ = d.Close()
	return w.Bytes()
}

// retrBody is what follows RETR's status line.
func retrBody(r []byte) []byte {
	i := bytes.Index(r, []byte("\r\n"))
	return r[i+2:]
}

var _ io.Reader = (*reader)(nil)

// TestMailboxRepair: a mailbox whose rows a damaged database or a careless
// import left unservable — an imported unique-id with a space, one too
// long, two messages with one unique-id, a negative size, a negative chunk
// count — still opens (the runtime would refuse every login of its
// owner): a unique-id that cannot be served falls back to the UID's, each
// row on its own (two rows with one unique-id stay as they were served);
// sizes are measured from the chunks.
func TestMailboxRepair(t *testing.T) {
	db := &memDB{chunks: map[[2]int64][]byte{
		{1, 0}: []byte("a\nb\n"), {2, 0}: []byte("x"), {3, 0}: []byte("y"), {4, 0}: []byte("z"), {5, 0}: []byte("w"), {6, 0}: []byte("v"),
	}}
	db.msgs = [][]any{
		{int64(1), uint32(1), int64(-1), int64(-5), int32(1), "with space"},
		{int64(2), uint32(2), int64(1), int64(1), int32(1), "3"},
		{int64(3), uint32(3), int64(1), int64(1), int32(1), ""},
		{int64(4), uint32(4), int64(1), int64(1), int32(1), "same"},
		{int64(5), uint32(5), int64(1), int64(1), int32(-3), "same"},
		{int64(6), uint32(6), int64(1), int64(1), int32(1), strings.Repeat("x", 71)},
	}
	var logs bytes.Buffer
	st := &Store{log: slog.New(slog.NewTextHandler(&logs, nil)), QueryTimeout: time.Second, LockWait: time.Second}
	b := &box{s: st, via: db}
	if err := b.open(context.Background(), db, "f", false); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range b.Len() {
		ids = append(ids, b.UniqueID(i))
	}
	if want := []string{"1", "3", "3", "same", "same", "6"}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("unique-ids %q, want %q", ids, want)
	}
	if b.msgs[0].exact != 6 || b.msgs[0].storage != 4 {
		t.Errorf("measured %d/%d, want 6/4", b.msgs[0].exact, b.msgs[0].storage)
	}
	if b.msgs[4].chunks != 0 {
		t.Errorf("chunks %d", b.msgs[4].chunks)
	}
	for _, want := range []string{"size is negative", "cannot be served", "chunk count is negative"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs.String())
		}
	}
}
