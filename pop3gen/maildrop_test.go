package pop3gen

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memDrop is a Maildrop of values.
type memDrop struct {
	bodies  []string
	removed []int
	broken  int // the message whose reading fails midway (-1: none)
	closed  bool
}

func (d *memDrop) Len() int { return len(d.bodies) }
func (d *memDrop) Size(i int) int64 {
	return int64(len(d.bodies[i]) + strings.Count(d.bodies[i], "\n"))
}
func (d *memDrop) UniqueID(i int) string { return "uid-" + string(rune('a'+i)) }
func (d *memDrop) Open(i int) (io.ReadCloser, error) {
	if i == d.broken {
		return io.NopCloser(io.MultiReader(strings.NewReader("Subject: x\n\npart"), errReader{})), nil
	}
	return io.NopCloser(strings.NewReader(d.bodies[i])), nil
}
func (d *memDrop) Remove(idx []int) error { d.removed = append(d.removed, idx...); return nil }
func (d *memDrop) Close() error           { d.closed = true; return nil }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk error") }

// dropSession is a Handler that logs anyone in to its memDrop: the
// TRANSACTION commands are MaildropHandler's.
type dropSession struct {
	MaildropHandler
	drop *memDrop
}

func (s *dropSession) User(w *Writer, arg []byte) error    { return nil }
func (s *dropSession) Pass(w *Writer, secret []byte) error { return s.Open(w, s.drop) }
func (s *dropSession) Auth(string) (SASLServer, error)     { return nil, ErrNotSupported }
func (s *dropSession) Mechanisms() []string                { return nil }
func (s *dropSession) Authenticated(w *Writer) error       { return nil }
func (s *dropSession) STLS(w *Writer) error                { return ErrNotSupported }
func (s *dropSession) Capa(w *Writer) error {
	v := RFC1939()
	WriteCapa(w, &v, &CapaInfo{})
	return nil
}

// TestMaildropHandler: a backend that returns values gets STAT, LIST,
// UIDL, RETR (dot-stuffed, CRLF), TOP, DELE, RSET and UPDATE from the core,
// which removes exactly the marked messages (RFC1939-6-UPDATE, V0006) and
// closes the connection, rather than write -ERR into a body, when a
// message fails midway (RFC1939-3-MULTILINE).
func TestMaildropHandler(t *testing.T) {
	clause.Covers(t, "RFC1939-5-STAT", "RFC1939-5-LIST", "RFC1939-5-RETR", "RFC1939-7-TOP", "RFC1939-7-UIDL", "RFC1939-5-DELE", "RFC1939-5-RSET", "RFC1939-6-UPDATE", "V0006", "RFC1939-3-MULTILINE")
	d := &memDrop{bodies: []string{"Subject: a\n\n.dot\nbody\n", "Subject: b\n\nline 1\nline 2\n", "Subject: c\n\nc\n"}, broken: -1}
	var out bytes.Buffer
	s := NewSession(&dropSession{drop: d}, NewWriter(&out), RFC1939())
	send := func(line string) string {
		out.Reset()
		s.Feed([]byte(line + "\r\n"))
		return out.String()
	}
	send("USER x")
	assert.Equal(t, "+OK maildrop has 3 messages (73 octets)\r\n", send("PASS y"))
	assert.Equal(t, "+OK 3 73\r\n", send("STAT"))
	assert.Equal(t, "+OK 3 messages (73 octets)\r\n1 26\r\n2 30\r\n3 17\r\n.\r\n", send("LIST"))
	assert.Equal(t, "+OK 2 uid-b\r\n", send("UIDL 2"))
	assert.Equal(t, "+OK message follows\r\nSubject: a\r\n\r\n..dot\r\nbody\r\n.\r\n", send("RETR 1"))
	assert.Equal(t, "+OK top of message follows\r\nSubject: b\r\n\r\nline 1\r\n.\r\n", send("TOP 2 1"))
	assert.Equal(t, "+OK message 2 deleted\r\n", send("DELE 2"))
	assert.Equal(t, "-ERR message is marked deleted\r\n", send("RETR 2"))
	assert.Equal(t, "+OK 2 43\r\n", send("STAT"))
	send("RSET")
	send("DELE 3")
	assert.Equal(t, "+OK signing off (1 messages removed)\r\n", send("QUIT"))
	assert.Equal(t, []int{2}, d.removed, "exactly the marked message")

	// A session that ends without QUIT removes nothing.
	d = &memDrop{bodies: []string{"a\n"}, broken: -1}
	h := &dropSession{drop: d}
	s = NewSession(h, NewWriter(&out), RFC1939())
	send("USER x")
	send("PASS y")
	send("DELE 1")
	require.NoError(t, h.Close())
	assert.Empty(t, d.removed)
	assert.True(t, d.closed)

	// A message that fails midway: the connection closes, no -ERR.
	d = &memDrop{bodies: []string{"x\n"}, broken: 0}
	s = NewSession(&dropSession{drop: d}, NewWriter(&out), RFC1939())
	send("USER x")
	send("PASS y")
	out.Reset()
	a := s.Feed([]byte("RETR 1\r\n"))
	assert.Equal(t, ActionClose, a)
	assert.NotContains(t, out.String(), "-ERR")
}
