package pop3

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseNumber: digits only, at most 2^31-1 (RFC 1939 §5 message-numbers;
// TestParseMsgNum in the external tests declares the clause).
func TestParseNumber(t *testing.T) {
	for in, want := range map[string]uint32{"0": 0, "1": 1, "007": 7, "2147483647": 2147483647} {
		n, err := parseNumber([]byte(in), errBadMsgNum)
		assert.Nil(t, err, in)
		assert.Equal(t, want, n, in)
	}
	for in, want := range map[string]*Error{"": errBadMsgNum, "-1": errBadMsgNum, "1a": errBadMsgNum,
		"2147483648": errNumberTooLarge, "99999999999999999999999": errNumberTooLarge} {
		_, err := parseNumber([]byte(in), errBadMsgNum)
		assert.Same(t, want, err, in)
	}
}

// TestParseDuration: Set takes Go durations and bare seconds.
func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"60": time.Minute, "90s": 90 * time.Second, "30m": 30 * time.Minute} {
		d, err := ParseDuration(in)
		assert.NoError(t, err)
		assert.Equal(t, want, d)
	}
	for _, in := range []string{"-5", "soon", "99999999999999"} {
		_, err := ParseDuration(in)
		assert.Error(t, err, in)
	}
}

// TestLineReader: lines come back whole within the limit, cut beyond it,
// and memory does not grow with the line.
func TestLineReader(t *testing.T) {
	long := strings.Repeat("A", 100000)
	in := "STAT\r\nLIST 1\n" + long + "\r\nNOOP\r\n" + strings.Repeat("B", 30) + "\r\nlast"
	r := newLineReader(strings.NewReader(in), 16)
	var got []string
	for {
		l, err := r.ReadLine(40)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, string(l))
	}
	require.Len(t, got, 6)
	assert.Equal(t, "STAT\r\n", got[0])
	assert.Equal(t, "LIST 1\n", got[1])
	assert.Equal(t, strings.Repeat("A", 42), got[2], "cut to max+2 without a line end")
	assert.Equal(t, "NOOP\r\n", got[3])
	assert.Equal(t, strings.Repeat("B", 30)+"\r\n", got[4], "longer than the buffer, within the limit: whole")
	assert.Equal(t, "last", got[5])
	assert.LessOrEqual(t, cap(r.long), 64, "the copy is bounded by the limit, not the line")
}

// TestInRange checks the word-at-a-time range check against a plain loop
// for every octet in every lane.
func TestInRange(t *testing.T) {
	slow := func(b []byte, lo, hi byte) bool {
		for _, c := range b {
			if c < lo || c > hi {
				return false
			}
		}
		return true
	}
	for _, r := range [][2]byte{{0x21, 0x7e}, {0x20, 0x7e}} {
		for lane := 0; lane < 11; lane++ {
			for c := 0; c < 256; c++ {
				b := []byte("abcdefghijk")
				b[lane] = byte(c)
				assert.Equal(t, slow(b, r[0], r[1]), inRange(b, r[0], r[1]), "lane %d octet %#x range %v", lane, c, r)
			}
		}
	}
}
