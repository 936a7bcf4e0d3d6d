package pop3gen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/pop3"
)

// memDrop is a Maildrop of values that records what the core asks of it.
// It is safe for concurrent use, so that a test can look at it while a
// Server's goroutine serves it.
type memDrop struct {
	mu     sync.Mutex
	bodies []string
	// broken are the messages whose reading fails after their first
	// line (a disk error midway).
	broken map[int]bool
	// seek makes Open return an io.Seeker, which TOP can measure.
	seek bool
	// openErr, removeErr are what Open and Remove return.
	openErr, removeErr error
	// open, when set, replaces Open.
	open func(i int) (io.ReadCloser, error)

	opened  []int // the indexes Open was asked for
	removed []int // the indexes Remove was given, in order
	removes int   // calls of Remove
	readers int   // readers Open returned and that were not closed
	closed  int   // calls of Close
}

func (d *memDrop) Len() int { return len(d.bodies) }
func (d *memDrop) Size(i int) int64 {
	return int64(len(d.bodies[i]) + strings.Count(d.bodies[i], "\n"))
}
func (d *memDrop) UniqueID(i int) string { return "uid-" + string(rune('a'+i)) }
func (d *memDrop) Open(i int) (io.ReadCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opened = append(d.opened, i)
	if d.open != nil {
		return d.open(i)
	}
	if d.openErr != nil {
		return nil, d.openErr
	}
	var r io.Reader = strings.NewReader(d.bodies[i])
	if d.broken[i] {
		first, _, _ := strings.Cut(d.bodies[i], "\n")
		r = io.MultiReader(strings.NewReader(first+"\n"), errReader{})
	}
	d.readers++
	if d.seek {
		return &dropReader{d: d, Reader: r}, nil
	}
	return &plainReader{dropReader{d: d, Reader: r}}, nil
}
func (d *memDrop) Remove(idx []int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removes++
	if d.removeErr != nil {
		return d.removeErr
	}
	d.removed = append(d.removed, idx...)
	return nil
}
func (d *memDrop) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed++
	return nil
}

// state returns what the drop recorded, under its lock.
func (d *memDrop) state() (opened, removed []int, removes, readers, closed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.opened...), append([]int(nil), d.removed...), d.removes, d.readers, d.closed
}

// dropReader is a message as memDrop opens it: closing it is recorded;
// it seeks (to the start only, which is all TOP needs) by reopening.
type dropReader struct {
	d *memDrop
	io.Reader
	i      int
	closed bool
}

func (r *dropReader) Seek(off int64, whence int) (int64, error) {
	if off != 0 || whence != io.SeekStart {
		return 0, errors.New("dropReader seeks to the start only")
	}
	if s, ok := r.Reader.(*strings.Reader); ok {
		return s.Seek(0, io.SeekStart)
	}
	return 0, errors.New("cannot rewind a broken message")
}

func (r *dropReader) Close() error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.d.readers--
	}
	return nil
}

// plainReader is a dropReader that is no io.Seeker.
type plainReader struct{ r dropReader }

func (p *plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }
func (p *plainReader) Close() error               { return p.r.Close() }

// exactDrop is a memDrop that knows exact sizes (ExactSizer) even where
// Size states the storage size.
type exactDrop struct{ *memDrop }

func (d exactDrop) Size(i int) int64      { return int64(len(d.bodies[i])) } // the storage size, LF ends
func (d exactDrop) ExactSize(i int) int64 { return d.memDrop.Size(i) }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk error") }

// dropSession is a Handler that logs anyone in to its maildrop and
// implements nothing optional: the TRANSACTION commands are the core's.
type dropSession struct {
	drop pop3.Maildrop
}

func (s *dropSession) User(w *pop3.Writer, arg []byte) error { return nil }
func (s *dropSession) Pass(user, secret []byte) (pop3.Maildrop, error) {
	return s.drop, nil
}

// dropHarness is a session on a dropSession whose replies land in out.
type dropHarness struct {
	s   *pop3.Session
	out bytes.Buffer
}

func newDropHarness(t *testing.T, md pop3.Maildrop, v Variations) *dropHarness {
	t.Helper()
	h := &dropHarness{}
	h.s = pop3.NewSession(&dropSession{drop: md}, pop3.NewWriter(&h.out), &v)
	h.send("USER x")
	require.True(t, strings.HasPrefix(h.send("PASS y"), "+OK maildrop has "), "login")
	return h
}

func (h *dropHarness) send(line string) string {
	h.out.Reset()
	h.s.Feed([]byte(line + "\r\n"))
	return h.out.String()
}

func (h *dropHarness) feed(line string) (string, pop3.Action) {
	h.out.Reset()
	a := h.s.Feed([]byte(line + "\r\n"))
	return h.out.String(), a
}

// TestSessionMaildrop (formerly MaildropHandler's): a backend that returns
// values gets STAT, LIST, UIDL, RETR (dot-stuffed, CRLF), TOP, DELE, RSET
// and UPDATE from the core, which removes exactly the marked messages
// (RFC1939-6-UPDATE, V0006) and closes the connection, rather than write
// -ERR into a body, when a message fails midway (RFC1939-3-MULTILINE).
func TestSessionMaildrop(t *testing.T) {
	clause.Covers(t, "RFC1939-5-STAT", "RFC1939-5-LIST", "RFC1939-5-RETR", "RFC1939-7-TOP", "RFC1939-7-UIDL", "RFC1939-5-DELE", "RFC1939-5-RSET", "RFC1939-6-UPDATE", "V0006", "RFC1939-3-MULTILINE")
	d := &memDrop{bodies: []string{"Subject: a\n\n.dot\nbody\n", "Subject: b\n\nline 1\nline 2\n", "Subject: c\n\nc\n"}}
	var out bytes.Buffer
	s := pop3.NewSession(&dropSession{drop: d}, pop3.NewWriter(&out), dialect(RFC1939()))
	send := func(line string) string {
		out.Reset()
		s.Feed([]byte(line + "\r\n"))
		return out.String()
	}
	send("USER x")
	assert.Equal(t, "+OK maildrop has 3 messages (73 octets)\r\n", send("PASS y"))
	assert.Equal(t, "+OK 3 73\r\n", send("STAT"))
	assert.Equal(t, "+OK 3 messages (73 octets)\r\n1 26\r\n2 30\r\n3 17\r\n.\r\n", send("LIST"))
	assert.Equal(t, "+OK 2 30\r\n", send("LIST 2"))
	assert.Equal(t, "-ERR no such message\r\n", send("LIST 4"))
	assert.Equal(t, "+OK 2 uid-b\r\n", send("UIDL 2"))
	assert.Equal(t, "+OK unique-id listing follows\r\n1 uid-a\r\n2 uid-b\r\n3 uid-c\r\n.\r\n", send("UIDL"))
	// ExactSizes is on in rfc1939: RETR states the size Size gives.
	assert.Equal(t, "+OK 26 octets\r\nSubject: a\r\n\r\n..dot\r\nbody\r\n.\r\n", send("RETR 1"))
	assert.Equal(t, "+OK top of message follows\r\nSubject: b\r\n\r\nline 1\r\n.\r\n", send("TOP 2 1"))
	assert.Equal(t, "+OK top of message follows\r\nSubject: b\r\n\r\nline 1\r\nline 2\r\n.\r\n", send("TOP 2 99"), "a count beyond the body sends it all")
	assert.Equal(t, "+OK message 2 deleted\r\n", send("DELE 2"))
	assert.Equal(t, "-ERR message is marked deleted\r\n", send("RETR 2"))
	assert.Equal(t, "-ERR message is marked deleted\r\n", send("DELE 2"))
	assert.Equal(t, "-ERR message is marked deleted\r\n", send("UIDL 2"))
	assert.Equal(t, "+OK 2 43\r\n", send("STAT"))
	assert.Equal(t, "+OK 2 messages (43 octets)\r\n1 26\r\n3 17\r\n.\r\n", send("LIST"))
	assert.Equal(t, "+OK unique-id listing follows\r\n1 uid-a\r\n3 uid-c\r\n.\r\n", send("UIDL"))
	assert.Equal(t, "+OK maildrop has 3 messages (73 octets)\r\n", send("RSET"))
	assert.Equal(t, "+OK 3 73\r\n", send("STAT"))
	send("DELE 3")
	assert.Equal(t, "+OK signing off (1 message removed)\r\n", send("QUIT"))
	opened, removed, removes, readers, _ := d.state()
	assert.Equal(t, []int{2}, removed, "exactly the marked message")
	assert.Equal(t, 1, removes)
	assert.Equal(t, []int{0, 1, 1}, opened)
	assert.Zero(t, readers, "every reader Open returned is closed")
	require.NoError(t, s.Close())
	_, _, _, _, closed := d.state()
	assert.Equal(t, 1, closed)

	// A session that ends without QUIT removes nothing; Close releases
	// the maildrop, once.
	d = &memDrop{bodies: []string{"a\n"}}
	s = pop3.NewSession(&dropSession{drop: d}, pop3.NewWriter(&out), dialect(RFC1939()))
	send("USER x")
	send("PASS y")
	send("DELE 1")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	_, removed, removes, _, closed = d.state()
	assert.Empty(t, removed)
	assert.Zero(t, removes)
	assert.Equal(t, 1, closed)

	// A message that fails midway: the connection closes, no -ERR.
	d = &memDrop{bodies: []string{"x\ny\n"}, broken: map[int]bool{0: true}}
	s = pop3.NewSession(&dropSession{drop: d}, pop3.NewWriter(&out), dialect(RFC1939()))
	send("USER x")
	send("PASS y")
	out.Reset()
	a := s.Feed([]byte("RETR 1\r\n"))
	assert.Equal(t, pop3.ActionClose, a)
	assert.Equal(t, "+OK 6 octets\r\nx\r\n", out.String(), "nothing after the partial body")
	assert.NotContains(t, out.String(), "-ERR")
	_, _, _, readers, _ = d.state()
	assert.Zero(t, readers, "the failed reader is closed too")
}

// TestSessionMaildropRetrStatus: RFC1939-5-RETR — the +OK of RETR states
// the octets where they are known exactly: Size where ExactSizes is on,
// ExactSize where the Maildrop is an ExactSizer, "message follows"
// otherwise; TOP states what it sends where the reader can be rewound
// (RFC1939-7-TOP).
func TestSessionMaildropRetrStatus(t *testing.T) {
	clause.Covers(t, "RFC1939-5-RETR", "RFC1939-7-TOP", "MS-2.1.4")
	bodies := []string{"Subject: a\n\nline 1\nline 2\n"}
	off := RFC1939()
	off.ExactSizes = false

	h := newDropHarness(t, &memDrop{bodies: bodies}, off)
	assert.Equal(t, "+OK message follows\r\nSubject: a\r\n\r\nline 1\r\nline 2\r\n.\r\n", h.send("RETR 1"))
	assert.Equal(t, "+OK top of message follows\r\nSubject: a\r\n\r\nline 1\r\n.\r\n", h.send("TOP 1 1"), "not an io.Seeker: no count")

	h = newDropHarness(t, exactDrop{&memDrop{bodies: bodies}}, off)
	assert.Equal(t, "+OK 1 26\r\n", h.send("LIST 1"), "LIST states the storage size")
	assert.Equal(t, "+OK 30 octets\r\nSubject: a\r\n\r\nline 1\r\nline 2\r\n.\r\n", h.send("RETR 1"), "RETR the exact one")

	h = newDropHarness(t, &memDrop{bodies: bodies}, RFC1939())
	assert.Equal(t, "+OK 30 octets\r\n", strings.SplitAfter(h.send("RETR 1"), "\r\n")[0], "ExactSizes: Size is exact")

	d := &memDrop{bodies: bodies, seek: true}
	h = newDropHarness(t, d, off)
	// "Subject: a\r\n\r\nline 1\r\n" is 22 octets.
	assert.Equal(t, "+OK 22 octets\r\nSubject: a\r\n\r\nline 1\r\n.\r\n", h.send("TOP 1 1"), "measured, then rewound")
	assert.Equal(t, "+OK 30 octets\r\nSubject: a\r\n\r\nline 1\r\nline 2\r\n.\r\n", h.send("TOP 1 5"))
	assert.Equal(t, "+OK 14 octets\r\nSubject: a\r\n\r\n.\r\n", h.send("TOP 1 0"))
	_, _, _, readers, _ := d.state()
	assert.Zero(t, readers)

	// A seekable message that fails while TOP measures it: -ERR, before
	// the reply began, and the session goes on.
	d = &memDrop{bodies: []string{"Subject: a\n\nbody\n"}, seek: true, broken: map[int]bool{0: true}}
	h = newDropHarness(t, d, off)
	got, a := h.feed("TOP 1 1")
	assert.Equal(t, "-ERR [SYS/TEMP] message cannot be read now\r\n", got)
	assert.Equal(t, pop3.ActionContinue, a)
	_, _, _, readers, _ = d.state()
	assert.Zero(t, readers)
}

// TestSessionMaildropFailures: RFC1939-3-MULTILINE, RFC3206-4-SYS — a
// message that cannot be opened answers -ERR (an *Error as it is, any
// other error as [SYS/TEMP] without its text) and the session goes on; a
// read error after the reply began closes the connection, for TOP as for
// RETR.
func TestSessionMaildropFailures(t *testing.T) {
	clause.Covers(t, "RFC1939-3-MULTILINE", "RFC3206-4-SYS")
	bodies := []string{"Subject: a\n\nbody\n"}
	d := &memDrop{bodies: bodies, openErr: errors.New("open /var/mail/secret: permission denied")}
	h := newDropHarness(t, d, RFC1939())
	for _, line := range []string{"RETR 1", "TOP 1 0"} {
		got, a := h.feed(line)
		assert.Equal(t, "-ERR [SYS/TEMP] message cannot be read now\r\n", got, line)
		assert.Equal(t, pop3.ActionContinue, a, line)
	}
	d.openErr = pop3.NewError(pop3.CodeSysPerm, "message is gone")
	got, a := h.feed("RETR 1")
	assert.Equal(t, "-ERR [SYS/PERM] message is gone\r\n", got, "an *Error as it is")
	assert.Equal(t, pop3.ActionContinue, a)
	assert.Equal(t, "+OK 1 ", h.send("LIST 1")[:6], "the session goes on")

	d = &memDrop{bodies: bodies, broken: map[int]bool{0: true}}
	h = newDropHarness(t, d, RFC1939())
	got, a = h.feed("TOP 1 3")
	assert.Equal(t, "+OK top of message follows\r\nSubject: a\r\n", got, "nothing after the partial body")
	assert.Equal(t, pop3.ActionClose, a)
}

// TestSessionUpdateErrors: V0006 — when Remove fails, QUIT answers -ERR
// (an *Error as it is, any other as [SYS/TEMP]) and still closes;
// nothing marked, Remove is not called.
func TestSessionUpdateErrors(t *testing.T) {
	clause.Covers(t, "V0006", "RFC1939-6-UPDATE")
	bodies := []string{"a\n", "b\n"}
	d := &memDrop{bodies: bodies, removeErr: errors.New("unlink: read-only file system")}
	h := newDropHarness(t, d, RFC1939())
	h.send("DELE 2")
	got, a := h.feed("QUIT")
	assert.Equal(t, "-ERR [SYS/TEMP] some messages marked deleted could not be removed\r\n", got)
	assert.Equal(t, pop3.ActionClose, a)
	assert.Equal(t, pop3.StateUpdate, h.s.State())

	d = &memDrop{bodies: bodies, removeErr: pop3.NewError(pop3.CodeSysTemp, "maildrop is locked")}
	h = newDropHarness(t, d, RFC1939())
	h.send("DELE 1")
	got, a = h.feed("QUIT")
	assert.Equal(t, "-ERR [SYS/TEMP] maildrop is locked\r\n", got)
	assert.Equal(t, pop3.ActionClose, a)

	d = &memDrop{bodies: bodies, removeErr: errors.New("never called")}
	h = newDropHarness(t, d, RFC1939())
	h.send("DELE 1")
	h.send("RSET")
	got, a = h.feed("QUIT")
	assert.Equal(t, "+OK signing off (0 messages removed)\r\n", got)
	assert.Equal(t, pop3.ActionClose, a)
	_, _, removes, _, _ := d.state()
	assert.Zero(t, removes, "nothing marked: Remove is not called")
}

// TestSessionMessage: Message maps a message-number to an index, and
// refuses one that does not exist or is marked deleted (RFC1939-5-DELE).
func TestSessionMessage(t *testing.T) {
	clause.Covers(t, "RFC1939-5-DELE")
	h := newDropHarness(t, &memDrop{bodies: []string{"a\n", "b\n", "c\n"}}, RFC1939())
	i, err := h.s.Message(3)
	require.NoError(t, err)
	assert.Equal(t, 2, i)
	_, err = h.s.Message(0)
	assert.EqualError(t, err, "-ERR no such message")
	_, err = h.s.Message(4)
	assert.EqualError(t, err, "-ERR no such message")
	h.send("DELE 2")
	_, err = h.s.Message(2)
	assert.EqualError(t, err, "-ERR message is marked deleted")
	h.send("RSET")
	i, err = h.s.Message(2)
	require.NoError(t, err)
	assert.Equal(t, 1, i)
}

// topDrop is a Maildrop that opens tops itself (TopOpener), as a proxy
// asks its backend for TOP.
type topDrop struct {
	*memDrop
	tops []string
}

func (d *topDrop) OpenTop(i int, lines uint32) (io.ReadCloser, error) {
	d.tops = append(d.tops, fmt.Sprint(i, lines))
	// More than the top: the core cuts it at the same line.
	return io.NopCloser(strings.NewReader("Subject: t\n\nfirst\nsecond\n")), nil
}

// TestSessionTopOpener: RFC1939-7-TOP from a Maildrop that opens the top
// itself; Open is not asked, and what it returns is cut at the count.
func TestSessionTopOpener(t *testing.T) {
	clause.Covers(t, "RFC1939-7-TOP")
	d := &topDrop{memDrop: &memDrop{bodies: []string{"Subject: a\n\nbody\n"}}}
	h := newDropHarness(t, d, RFC1939())
	assert.Equal(t, "+OK top of message follows\r\nSubject: t\r\n\r\nfirst\r\n.\r\n", h.send("TOP 1 1"))
	assert.Equal(t, []string{"0 1"}, d.tops)
	opened, _, _, _, _ := d.state()
	assert.Empty(t, opened)
}

// TestUpdateReleasesBeforeReply: UPDATE closes the maildrop (its lock)
// before its +OK goes out, so a client that reconnects as soon as it reads
// the reply finds the maildrop free; the runtime's Close later does not
// close it twice.
func TestUpdateReleasesBeforeReply(t *testing.T) {
	clause.Covers(t, "RFC1939-6-UPDATE")
	d := &memDrop{bodies: []string{"Subject: a\n\na\n"}}
	h := newDropHarness(t, d, RFC1939())
	h.send("DELE 1")
	out, a := h.feed("QUIT")
	assert.Equal(t, pop3.ActionClose, a)
	assert.Equal(t, "+OK signing off (1 message removed)\r\n", out)
	_, _, _, _, closed := d.state()
	assert.Equal(t, 1, closed, "closed by UPDATE, before the reply is flushed")
	require.NoError(t, h.s.Close())
	_, _, _, _, closed = d.state()
	assert.Equal(t, 1, closed, "not twice")
}
