//go:build !race

package pop3gen

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestParseAllocs proves that parsing allocates nothing, for every case of
// parseCases (accepted and rejected) under every profile.
func TestParseAllocs(t *testing.T) {
	for name, v := range profiles(t) {
		for _, tc := range parseCases {
			line := []byte(tc.line)
			var c Command
			n := testing.AllocsPerRun(50, func() { _ = c.Parse(line, &v, 0) })
			assert.Zero(t, n, "%s/%s: %v allocs", name, tc.name, n)
		}
	}
}

// nopHandler answers every command with the shortest positive reply.
type nopHandler struct{}

func (nopHandler) User(w *Writer, arg []byte) error          { return nil }
func (nopHandler) Pass(w *Writer, secret []byte) error       { return nil }
func (nopHandler) APOP(w *Writer, name, digest []byte) error { return nil }
func (nopHandler) Auth(mechanism string) (SASLServer, error) { return nopSASL{}, nil }
func (nopHandler) Mechanisms() []string                      { return []string{"PLAIN"} }
func (nopHandler) Authenticated(w *Writer) error             { return nil }

// nopSASL accepts any response.
type nopSASL struct{}

func (nopSASL) Next([]byte) ([]byte, bool, error)         { return nil, true, nil }
func (nopHandler) STLS(w *Writer) error                   { return nil }
func (nopHandler) Capa(w *Writer) error                   { return nil }
func (nopHandler) UTF8(w *Writer) error                   { return nil }
func (nopHandler) Lang(w *Writer, arg []byte) error       { return nil }
func (nopHandler) Quit(w *Writer) error                   { return nil }
func (nopHandler) Update(w *Writer) error                 { return nil }
func (nopHandler) Stat(w *Writer) error                   { w.Stat(2, 4096); return nil }
func (nopHandler) List(w *Writer, msg uint32) error       { w.ScanListing(false, int(msg), 2048); return nil }
func (nopHandler) Retr(w *Writer, msg uint32) error       { return nil }
func (nopHandler) Dele(w *Writer, msg uint32) error       { return nil }
func (nopHandler) Noop(w *Writer) error                   { return nil }
func (nopHandler) Rset(w *Writer) error                   { return nil }
func (nopHandler) Top(w *Writer, msg, lines uint32) error { return nil }
func (nopHandler) UIDL(w *Writer, msg uint32) error       { return w.UniqueID(false, int(msg), "4711") }

// TestSessionStepAllocs proves that a state step — parse, check, dispatch,
// reply — allocates nothing for TRANSACTION commands and errors.
func TestSessionStepAllocs(t *testing.T) {
	s := NewSession(nopHandler{}, NewWriter(io.Discard), RFC1939())
	s.Feed([]byte("USER a\r\n"))
	s.Feed([]byte("PASS b\r\n"))
	for _, line := range []string{"STAT\r\n", "LIST 1\r\n", "UIDL 3\r\n", "DELE 2\r\n", "NOOP\r\n", "RSET\r\n", "BOGUS\r\n", "RETR 0\r\n"} {
		b := []byte(line)
		n := testing.AllocsPerRun(100, func() { s.Feed(b) })
		assert.Zero(t, n, "%q: %v allocs", line, n)
	}
}

// TestDotWriterAllocs proves that dot-stuffing a line allocates nothing.
func TestDotWriterAllocs(t *testing.T) {
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	d := NewDotWriter(&buf)
	line := []byte(".a line that needs a dot\nand one that does not\n")
	n := testing.AllocsPerRun(100, func() { _, _ = d.Write(line) })
	assert.Zero(t, n)
	w := NewWriter(io.Discard)
	n = testing.AllocsPerRun(100, func() { w.Error(ErrUnknownCommand); w.OK("fine"); w.Stat(1, 2) })
	assert.Zero(t, n)
}
