//go:build !race

package pop3gen

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

// TestParseAllocs proves that parsing allocates nothing, for every case of
// parseCases (accepted and rejected) under every profile.
func TestParseAllocs(t *testing.T) {
	for name, v := range profiles(t) {
		for _, tc := range parseCases {
			line := []byte(tc.line)
			var c pop3.Command
			n := testing.AllocsPerRun(50, func() { _ = c.Parse(line, &v, 0) })
			assert.Zero(t, n, "%s/%s: %v allocs", name, tc.name, n)
		}
	}
}

// nopHandler logs anyone in to a maildrop of values; its optional
// interfaces answer with the shortest positive reply.
type nopHandler struct{ drop nopDrop }

func (h nopHandler) User(w *pop3.Writer, arg []byte) error           { return nil }
func (h nopHandler) Pass(user, secret []byte) (pop3.Maildrop, error) { return h.drop, nil }
func (h nopHandler) APOP(name, digest []byte) (pop3.Maildrop, error) { return h.drop, nil }
func (nopHandler) Auth(mechanism string) (pop3.SASLServer, error)    { return nopSASL{}, nil }
func (nopHandler) Mechanisms() []string                              { return []string{"PLAIN"} }
func (h nopHandler) Authenticated() (pop3.Maildrop, error)           { return h.drop, nil }
func (nopHandler) UTF8(w *pop3.Writer) error                         { return nil }
func (nopHandler) Lang(w *pop3.Writer, arg []byte) error             { return nil }

// nopSASL accepts any response.
type nopSASL struct{}

func (nopSASL) Next([]byte) ([]byte, bool, error) { return nil, true, nil }

// nopDrop is a maildrop of four messages of 2048 octets whose unique-ids
// are constants: it allocates nothing itself.
type nopDrop struct{}

func (nopDrop) Len() int                          { return 4 }
func (nopDrop) Size(i int) int64                  { return 2048 }
func (nopDrop) UniqueID(i int) string             { return "4711" }
func (nopDrop) Open(i int) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x\n")), nil }
func (nopDrop) Remove(indexes []int) error        { return nil }
func (nopDrop) Close() error                      { return nil }

// TestSessionStepAllocs proves that a state step — parse, check, dispatch,
// reply — allocates nothing for TRANSACTION commands and errors, the
// core's answers from the Maildrop included.
func TestSessionStepAllocs(t *testing.T) {
	s := pop3.NewSession(nopHandler{}, pop3.NewWriter(io.Discard), dialect(RFC1939()))
	s.Feed([]byte("USER a\r\n"))
	s.Feed([]byte("PASS b\r\n"))
	if !assert.Equal(t, pop3.StateTransaction, s.State()) {
		return
	}
	for _, line := range []string{"STAT\r\n", "LIST 1\r\n", "UIDL 3\r\n", "DELE 2\r\n", "NOOP\r\n", "BOGUS\r\n", "RETR 0\r\n", "LIST 2\r\n", "UIDL 9\r\n", "RSET\r\n"} {
		b := []byte(line)
		n := testing.AllocsPerRun(100, func() { s.Feed(b) })
		assert.Zero(t, n, "%q: %v allocs", line, n)
	}
}

// TestDotWriterAllocs proves that dot-stuffing a line allocates nothing.
func TestDotWriterAllocs(t *testing.T) {
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	d := pop3.NewDotWriter(&buf)
	line := []byte(".a line that needs a dot\nand one that does not\n")
	n := testing.AllocsPerRun(100, func() { _, _ = d.Write(line) })
	assert.Zero(t, n)
	w := pop3.NewWriter(io.Discard)
	n = testing.AllocsPerRun(100, func() { w.Error(pop3test.Err("UnknownCommand")); w.OK("fine"); w.Stat(1, 2) })
	assert.Zero(t, n)
}
