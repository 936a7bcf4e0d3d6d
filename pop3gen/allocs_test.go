//go:build !race

package pop3gen

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/sessionmodel"
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

// TestSessionStepAllocs proves that a state step — parse, check, dispatch,
// reply — allocates nothing for TRANSACTION commands and errors, the
// core's answers from the Maildrop (the library's memdrop) included.
func TestSessionStepAllocs(t *testing.T) {
	s := pop3.NewSession(sessionmodel.Accept{}, pop3.NewWriter(io.Discard), dialect(RFC1939()))
	s.Feed([]byte("USER a\r\n"))
	s.Feed([]byte("PASS b\r\n"))
	if !assert.Equal(t, pop3.StateTransaction, s.State()) {
		return
	}
	for _, line := range []string{"STAT\r\n", "LIST 1\r\n", "UIDL 2\r\n", "DELE 1\r\n", "NOOP\r\n", "BOGUS\r\n", "RETR 0\r\n", "LIST 2\r\n", "UIDL 9\r\n", "RSET\r\n"} {
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
	unknown := pop3test.Err("UnknownCommand")
	n = testing.AllocsPerRun(100, func() { w.Error(unknown); w.OK("fine"); w.Stat(1, 2) })
	assert.Zero(t, n)
}
