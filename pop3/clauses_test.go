package pop3_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pop3kit/pop3kit/internal/clause"
	. "github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// These tests declare clauses (internal/clause imports spec, which asks
// the runtime for its lists), so they are external tests of the runtime.

// TestValidBase64: RFC5034-4-AUTH — only the alphabet, and padding only at
// the end ("=AAA" and "AAA=BBB" are refused, as RFC 5034 §4 says).
func TestValidBase64(t *testing.T) {
	clause.Covers(t, "RFC5034-4-AUTH")
	for in, want := range map[string]bool{
		"": true, "AAAA": true, "AGFsaWNlAHNlY3JldA==": true, "QQ==": true, "QUE=": true, "QUFB": true,
		"=AAA": false, "AAA=BBB": false, "AA===": false, "A A": false, "QQ=": false, "QUF": false, "QUFBQ": false, "Q\x00==": false, "****": false,
	} {
		assert.Equal(t, want, ValidBase64([]byte(in)), "%q", in)
	}
}

// TestCutLine: RFC1939-3-KEYWORD line ends — CRLF, bare LF, none; the
// length counts the CRLF (RFC2449-4-CMD255).
func TestCutLine(t *testing.T) {
	clause.Covers(t, "RFC1939-3-KEYWORD", "RFC2449-4-CMD255")
	for in, want := range map[string]string{"STAT\r\n": "STAT", "STAT\n": "STAT", "STAT": "STAT", "STAT\r": "STAT\r", "\r\n": ""} {
		got, err := CutLine([]byte(in), 255, ErrLineTooLong)
		assert.Nil(t, err, "%q", in)
		assert.Equal(t, want, string(got), "%q", in)
	}
	_, err := CutLine([]byte("12345678\r\n"), 9, ErrLineTooLong)
	assert.Same(t, ErrLineTooLong, err)
	_, err = CutLine([]byte("1234567\r\n"), 9, ErrLineTooLong)
	assert.Nil(t, err)
}

// TestParseMsgNum: RFC1939-5-MSGNUM — a message-number is digits only, from
// 1, at most 2^31-1, as the runtime parses it for a table's row.
func TestParseMsgNum(t *testing.T) {
	clause.Covers(t, "RFC1939-5-MSGNUM")
	v := pop3gen.RFC1939()
	var c Command
	for line, want := range map[string]uint32{"RETR 1\r\n": 1, "RETR 007\r\n": 7, "RETR 2147483647\r\n": 2147483647} {
		assert.Nil(t, c.Parse([]byte(line), &v, 0), line)
		assert.Equal(t, want, c.Msg, line)
	}
	for line, want := range map[string]*Error{"RETR 0\r\n": ErrBadMsgNum, "RETR -1\r\n": ErrBadMsgNum, "RETR 1a\r\n": ErrBadMsgNum,
		"RETR 2147483648\r\n": ErrNumberTooLarge, "RETR 99999999999999999999999\r\n": ErrNumberTooLarge} {
		assert.Same(t, want, c.Parse([]byte(line), &v, 0), line)
	}
}
