package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/textproto"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseReply: status lines with and without text, response codes of
// RFC 2449 §8, RFC 3206 and RFC 6856, hierarchical codes, brackets that
// are not codes, continuations, and lines that are not replies.
func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		status     ReplyStatus
		code, text string
		err        bool
	}{
		{name: "bare OK", line: "+OK", status: StatusOK},
		{name: "OK CRLF", line: "+OK\r\n", status: StatusOK},
		{name: "OK text", line: "+OK 2 320", status: StatusOK, text: "2 320"},
		{name: "OK SP only", line: "+OK ", status: StatusOK},
		{name: "bare ERR", line: "-ERR", status: StatusErr},
		{name: "ERR text", line: "-ERR no such message", status: StatusErr, text: "no such message"},
		{name: "SYS/TEMP", line: "-ERR [SYS/TEMP] try later", status: StatusErr, code: "SYS/TEMP", text: "try later"},
		{name: "SYS/PERM", line: "-ERR [SYS/PERM] broken", status: StatusErr, code: "SYS/PERM", text: "broken"},
		{name: "IN-USE", line: "-ERR [IN-USE] maildrop locked", status: StatusErr, code: "IN-USE", text: "maildrop locked"},
		{name: "LOGIN-DELAY", line: "-ERR [LOGIN-DELAY] wait", status: StatusErr, code: "LOGIN-DELAY", text: "wait"},
		{name: "AUTH", line: "-ERR [AUTH] bad login", status: StatusErr, code: "AUTH", text: "bad login"},
		{name: "UTF8", line: "-ERR [UTF8] not in UTF-8 mode", status: StatusErr, code: "UTF8", text: "not in UTF-8 mode"},
		{name: "hierarchical", line: "-ERR [SYS/TEMP/DISK] full", status: StatusErr, code: "SYS/TEMP/DISK", text: "full"},
		{name: "code alone", line: "-ERR [IN-USE]", status: StatusErr, code: "IN-USE"},
		{name: "code on OK", line: "+OK [UTF8] now in UTF-8", status: StatusOK, code: "UTF8", text: "now in UTF-8"},
		{name: "empty brackets", line: "-ERR [] x", status: StatusErr, text: "[] x"},
		{name: "space in code", line: "-ERR [SYS TEMP] x", status: StatusErr, text: "[SYS TEMP] x"},
		{name: "double slash", line: "-ERR [SYS//TEMP] x", status: StatusErr, text: "[SYS//TEMP] x"},
		{name: "leading slash", line: "-ERR [/SYS] x", status: StatusErr, text: "[/SYS] x"},
		{name: "unclosed", line: "-ERR [SYS/TEMP x", status: StatusErr, text: "[SYS/TEMP x"},
		{name: "no space after code", line: "-ERR [AUTH]x", status: StatusErr, text: "[AUTH]x"},
		{name: "continuation", line: "+ dGVzdA==", status: StatusContinue, text: "dGVzdA=="},
		{name: "empty continuation", line: "+ ", status: StatusContinue},
		{name: "bare plus", line: "+", status: StatusContinue},
		{name: "lower case", line: "+ok", err: true},
		{name: "OKAY", line: "+OKAY", err: true},
		{name: "ERROR", line: "-ERROR x", err: true},
		{name: "empty", line: "", err: true},
		{name: "data line", line: "1 120", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseReply([]byte(tc.line))
			if tc.err {
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
				assert.Contains(t, err.Error(), "not a status line")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.status, r.Status)
			assert.Equal(t, tc.code, string(r.Code))
			assert.Equal(t, tc.code == "", r.Code == nil, "Code is nil exactly when there is none")
			assert.Equal(t, tc.text, string(r.Text))
		})
	}
}

// TestReplyHasCode: a code matches itself and its parents, never a
// sibling or a longer name.
func TestReplyHasCode(t *testing.T) {
	r := Reply{Status: StatusErr, Code: []byte("SYS/TEMP")}
	assert.True(t, r.HasCode("SYS/TEMP"))
	assert.True(t, r.HasCode("SYS"))
	assert.False(t, r.HasCode("SYS/PERM"))
	assert.False(t, r.HasCode("SY"))
	assert.False(t, r.HasCode("SYS/TEMP/DISK"))
	assert.False(t, (&Reply{Status: StatusErr}).HasCode("AUTH"))
	var e *Error
	require.ErrorAs(t, r.Err(), &e)
	assert.Equal(t, "-ERR [SYS/TEMP]", e.Error()[:15])
	assert.Nil(t, (&Reply{Status: StatusOK}).Err())
	assert.Nil(t, (&Reply{Status: StatusContinue}).Err())
}

// TestTimestamp: the APOP timestamp is the bracketed msg-id of the
// greeting (RFC 1939 §7).
func TestTimestamp(t *testing.T) {
	for in, want := range map[string]string{
		"POP3 server ready <1896.697170952@dbc.mtview.ca.us>": "<1896.697170952@dbc.mtview.ca.us>",
		"<a@b> trailing text":        "<a@b>",
		"ready":                      "",
		"ready <no-at-sign>":         "",
		"ready <a b@c>":              "",
		"<x@y> then <1.2@host>":      "<1.2@host>",
		"unbalanced > <":             "",
		"<<1.2@host>":                "<1.2@host>",
		"pop3kit ready <1.1@x.test>": "<1.1@x.test>",
	} {
		assert.Equal(t, want, string(timestamp([]byte(in))), "%q", in)
	}
}

// TestParseCapaLine: names and arguments of the capabilities of RFC 2449
// §6, with runs of spaces, and names compared case-insensitively.
func TestParseCapaLine(t *testing.T) {
	for _, tc := range []struct {
		line, name string
		args       []string
	}{
		{line: "TOP", name: "TOP"},
		{line: "SASL PLAIN SCRAM-SHA-256", name: "SASL", args: []string{"PLAIN", "SCRAM-SHA-256"}},
		{line: "LOGIN-DELAY 900", name: "LOGIN-DELAY", args: []string{"900"}},
		{line: "LOGIN-DELAY 900 USER", name: "LOGIN-DELAY", args: []string{"900", "USER"}},
		{line: "EXPIRE NEVER", name: "EXPIRE", args: []string{"NEVER"}},
		{line: "EXPIRE 0 USER", name: "EXPIRE", args: []string{"0", "USER"}},
		{line: "IMPLEMENTATION pop3kit 1.0", name: "IMPLEMENTATION", args: []string{"pop3kit", "1.0"}},
		{line: "  UTF8   USER  \r\n", name: "UTF8", args: []string{"USER"}},
		{line: "", name: ""},
	} {
		c := parseCapaLine([]byte(tc.line))
		assert.Equal(t, tc.name, string(c.Name), "%q", tc.line)
		assert.Equal(t, len(tc.args), c.NArgs(), "%q", tc.line)
		for i, a := range tc.args {
			assert.Equal(t, a, string(c.Arg(i)), "%q arg %d", tc.line, i)
		}
		assert.Nil(t, c.Arg(len(tc.args)), "%q: past the last argument", tc.line)
	}
	assert.True(t, parseCapaLine([]byte("sasl PLAIN")).Is("SASL"))
	assert.False(t, parseCapaLine([]byte("SASLX")).Is("SASL"))
}

// TestReplyReaderLines: CRLF is required, the 512-octet limit holds, a
// too-long line is skipped whole, and a cut line is an unexpected EOF.
func TestReplyReaderLines(t *testing.T) {
	long := "+OK " + strings.Repeat("x", 600)
	in := "+OK a\r\n" + long + "\r\n-ERR [IN-USE] b\r\n+OK bare\n+OK c\r\n" + strings.Repeat("y", 510) + "\r\n+OK cut"
	rr := NewReplyReader(strings.NewReader(in))
	r, err := rr.ReadReply()
	require.NoError(t, err)
	assert.Equal(t, "a", string(r.Text))
	_, err = rr.ReadReply()
	assert.ErrorContains(t, err, "longer than 512 octets")
	r, err = rr.ReadReply()
	require.NoError(t, err, "the long line is skipped whole")
	assert.True(t, r.HasCode("IN-USE"))
	_, err = rr.ReadReply()
	assert.ErrorContains(t, err, "LF without CR")
	r, err = rr.ReadReply()
	require.NoError(t, err)
	assert.Equal(t, "c", string(r.Text))
	l, err := rr.ReadLine()
	require.NoError(t, err, "512 octets with the CRLF is within the limit")
	assert.Len(t, l, 510)
	_, err = rr.ReadLine()
	assert.Equal(t, io.ErrUnexpectedEOF, err)
	_, err = rr.ReadLine()
	assert.Equal(t, io.EOF, err)
}

// TestReplyReaderLongChallenge: a SASL challenge is not held to the
// 512-octet limit (RFC 5034 §4; the core's Writer does not cut one), a
// status line is, and a challenge longer than the buffer is refused whole.
func TestReplyReaderLongChallenge(t *testing.T) {
	challenge := strings.Repeat("QUFB", 250)
	in := "+ " + challenge + "\r\n+OK " + strings.Repeat("x", 998) + "\r\n+ " + strings.Repeat("B", 5000) + "\r\n+OK\r\n"
	rr := NewReplyReader(strings.NewReader(in))
	r, err := rr.ReadReply()
	require.NoError(t, err)
	assert.Equal(t, StatusContinue, r.Status)
	assert.Equal(t, challenge, string(r.Text))
	_, err = rr.ReadReply()
	assert.ErrorContains(t, err, "longer than 512 octets")
	_, err = rr.ReadReply()
	assert.ErrorContains(t, err, "longer than 4096 octets")
	r, err = rr.ReadReply()
	require.NoError(t, err)
	assert.True(t, r.OK())
}

// TestReadListLine: a listing is unstuffed and ends at "."; the end of the
// input before it is errTruncated.
func TestReadListLine(t *testing.T) {
	rr := NewReplyReader(strings.NewReader("1 120\r\n..hidden\r\n.\r\n2 5\r\n"))
	var got []string
	for {
		l, err := rr.ReadListLine()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, string(l))
	}
	assert.Equal(t, []string{"1 120", ".hidden"}, got)
	l, err := rr.ReadListLine()
	require.NoError(t, err)
	assert.Equal(t, "2 5", string(l))
	_, err = rr.ReadListLine()
	assert.ErrorIs(t, err, errTruncated)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// TestDotReaderTruncated: a body cut before its "." line is an error that
// says so, never a short message read as whole.
func TestDotReaderTruncated(t *testing.T) {
	for _, in := range []string{"", "Subject: x\r\n", "Subject: x\r\n\r\nbody", ".\r", "..\r\n"} {
		_, err := io.ReadAll(NewDotReader(bufio.NewReader(strings.NewReader(in))))
		assert.ErrorIs(t, err, errTruncated, "%q", in)
		assert.Contains(t, err.Error(), "terminating")
	}
}

// TestDotReaderMaxLine: a data line over MaxLine is refused, across
// buffer-sized pieces; lines within it pass.
func TestDotReaderMaxLine(t *testing.T) {
	ok := strings.Repeat("a", 98) + "\r\n"
	in := ok + strings.Repeat("b", 99) + "\r\n.\r\n"
	d := NewDotReader(bufio.NewReaderSize(strings.NewReader(in), 16))
	d.MaxLine = 100
	b, err := io.ReadAll(d)
	assert.ErrorContains(t, err, "longer than 100 octets")
	assert.True(t, strings.HasPrefix(string(b), ok), "the lines before are read")
	assert.LessOrEqual(t, len(b), len(ok)+100, "no more of the long line than the limit")

	d = NewDotReader(bufio.NewReaderSize(strings.NewReader(ok+"."+ok+".\r\n"), 16))
	d.MaxLine = 100
	b, err = io.ReadAll(d)
	require.NoError(t, err, "the stuffed dot does not count")
	assert.Equal(t, ok+ok, string(b))
}

// TestDotReaderClose: Close drops the rest of the body, so the next reply
// is read from its first octet.
func TestDotReaderClose(t *testing.T) {
	rr := NewReplyReader(strings.NewReader("line 1\r\n" + strings.Repeat("z", 9000) + "\r\n.\r\n+OK next\r\n"))
	body := rr.Body(0)
	buf := make([]byte, 3)
	_, err := body.Read(buf)
	require.NoError(t, err)
	require.NoError(t, body.Close())
	assert.True(t, body.Done())
	r, err := rr.ReadReply()
	require.NoError(t, err)
	assert.Equal(t, "next", string(r.Text))
}

// TestDotReaderAgreesWithTextproto: on random bodies written by
// DotWriter, DotReader returns the CRLF form of the body, and
// net/textproto's DotReader returns the same with LF line ends, for bodies
// without CR (textproto reads CRLF and LF alike, so a CR changes its
// answer). The seed is fixed so a failure replays.
func TestDotReaderAgreesWithTextproto(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 1939))
	alphabet := []byte(".\n\r.a \n..")
	for i := range 2000 {
		body := make([]byte, rng.IntN(64))
		for j := range body {
			body[j] = alphabet[rng.IntN(len(alphabet))]
		}
		var wire bytes.Buffer
		w := NewDotWriter(&wire)
		_, _ = w.Write(body)
		require.NoError(t, w.Close())
		got, err := io.ReadAll(NewReplyReader(bytes.NewReader(wire.Bytes())).Body(0))
		require.NoError(t, err, "case %d: %q", i, body)
		require.Equal(t, string(crlfForm(body)), string(got), "case %d: %q", i, body)
		if bytes.IndexByte(body, '\r') < 0 {
			tp, err := io.ReadAll(textproto.NewReader(bufio.NewReader(bytes.NewReader(wire.Bytes()))).DotReader())
			require.NoError(t, err)
			require.Equal(t, strings.ReplaceAll(string(got), "\r\n", "\n"), string(tp), "case %d: %q", i, body)
		}
	}
}

// crlfForm is what DotWriter makes of a body: every LF not after CR gets
// a CR, and a body that does not end in a line end gets CRLF.
func crlfForm(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

// TestProtocolErrorQuotesLittle: the error quotes the start of a bad line,
// not all of it.
func TestProtocolErrorQuotesLittle(t *testing.T) {
	_, err := ParseReply([]byte(strings.Repeat("q", 10000)))
	var pe *ProtocolError
	require.True(t, errors.As(err, &pe))
	assert.Len(t, pe.Line, quoteMax)
}
