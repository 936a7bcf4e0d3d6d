package pop3gen

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

func lines(s string) []string { return strings.SplitAfter(s, "\r\n") }

// TestWriterLineLimit: C0001, RFC1939-3-RESP512 — no status or listing
// line exceeds 512 octets with its CRLF, and text cannot forge a line.
func TestWriterLineLimit(t *testing.T) {
	clause.Covers(t, "C0001", "RFC1939-3-RESP512")
	var out bytes.Buffer
	w := pop3.NewWriter(&out)
	long := strings.Repeat("x", 2000)
	w.OK(long)
	w.OKBytes([]byte(long))
	w.Error(&pop3.Error{Code: pop3.CodeSysTemp, Text: long})
	w.Line(long)
	w.Words("SASL", long, long)
	w.Words("IMPLEMENTATION", "pop3kit\r\n+OK forged")
	w.OK("two\r\nlines")
	// A cut never splits a UTF-8 sequence: "x" and "é" (2 octets each) leave half a rune at the limit.
	w.OK("x" + strings.Repeat("é", 300))
	require.NoError(t, w.Err())
	for _, l := range lines(out.String()) {
		if l == "" {
			continue
		}
		assert.LessOrEqual(t, len(l), pop3.MaxReplyOctets, "line %.40q…", l)
		assert.True(t, strings.HasSuffix(l, "\r\n"))
		assert.Equal(t, 1, strings.Count(l, "\n"))
	}
	ls := lines(out.String())
	assert.Equal(t, pop3.MaxReplyOctets, len(ls[0]))
	assert.Equal(t, "IMPLEMENTATION pop3kit  +OK forged\r\n", ls[5])
	assert.Equal(t, "+OK two  lines\r\n", ls[6])
	last := strings.TrimSuffix(ls[7], "\r\n")
	assert.True(t, strings.HasSuffix(last, "é"), "cut at a rune boundary")
	assert.Len(t, ls[7], 511, "the half rune at octet 511 is dropped")
}

// TestWriterReplies: RFC1939-5-STAT with V0004, RFC1939-5-LIST with V0005,
// RFC2449-8-RESP-CODE, RFC1939-7-UIDL character set and length.
func TestWriterReplies(t *testing.T) {
	clause.Covers(t,
		"RFC1939-5-LIST", "RFC1939-5-STAT", "RFC1939-7-UIDL", "RFC2449-8-RESP-CODE", "V0004",
		"V0005")
	var out bytes.Buffer
	w := pop3.NewWriter(&out)
	w.Stat(2, 320)
	w.ScanListing(false, 1, 120)
	w.Begin("2 messages (320 octets)")
	w.ScanListing(true, 1, 120)
	w.ScanListing(true, 2, 200)
	w.End()
	w.Error(&pop3.Error{Code: pop3.CodeInUse, Text: "maildrop is locked"})
	require.NoError(t, w.UniqueID(false, 1, "4711"))
	require.NoError(t, w.UniqueID(true, 2, strings.Repeat("~", 70)))
	assert.Error(t, w.UniqueID(true, 3, strings.Repeat("a", 71)))
	assert.Error(t, w.UniqueID(true, 3, "has space"))
	assert.Error(t, w.UniqueID(true, 3, ""))
	assert.Equal(t, "+OK 2 320\r\n+OK 1 120\r\n+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"+
		"-ERR [IN-USE] maildrop is locked\r\n+OK 1 4711\r\n2 "+strings.Repeat("~", 70)+"\r\n", out.String())
}

// TestWriterChallenge: RFC5034-4-AUTH challenges are "+ " and base64, of
// any length.
func TestWriterChallenge(t *testing.T) {
	clause.Covers(t, "RFC5034-4-AUTH")
	var out bytes.Buffer
	w := pop3.NewWriter(&out)
	w.Challenge(nil)
	long := bytes.Repeat([]byte("QUFB"), 300)
	w.Challenge(long)
	assert.Equal(t, "+ \r\n+ "+string(long)+"\r\n", out.String())
}

// TestDotWriter: RFC1939-3-MULTILINE — LF becomes CRLF, lines starting
// with "." are stuffed, the body ends with CRLF "." CRLF; the result reads
// back through net/textproto's dot reader as the CRLF form of the input.
func TestDotWriter(t *testing.T) {
	clause.Covers(t, "RFC1939-3-MULTILINE")
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ".\r\n"},
		{"plain", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"crlf kept", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"no final newline", "a\nb", "a\r\nb\r\n.\r\n"},
		{"dot lines", ".\n..\n.a\nb.\n", "..\r\n...\r\n..a\r\nb.\r\n.\r\n"},
		{"lone dot", "x\n.\ny\n", "x\r\n..\r\ny\r\n.\r\n"},
		{"leading dot", ".x", "..x\r\n.\r\n"},
		{"bare CR passes", "a\rb\n", "a\rb\r\n.\r\n"},
		{"8-bit", "\xff\xfe\n", "\xff\xfe\r\n.\r\n"},
		{"blank lines", "\n\n", "\r\n\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Byte by byte and whole must agree: the state crosses writes.
			// So must a plain writer and buffered ones (the body then
			// converted into the buffer), small and large.
			for _, chunk := range []int{1, 2, 3, len(tc.in) + 1} {
				for _, size := range []int{0, 16, 64 << 10} {
					var out bytes.Buffer
					var w io.Writer = &out
					bw := bufio.NewWriterSize(&out, size)
					if size > 0 {
						w = bw
					}
					d := pop3.NewDotWriter(w)
					for i := 0; i < len(tc.in); i += chunk {
						n, err := d.Write([]byte(tc.in[i:min(i+chunk, len(tc.in))]))
						require.NoError(t, err)
						require.Equal(t, min(chunk, len(tc.in)-i), n)
					}
					require.NoError(t, d.Close())
					require.NoError(t, bw.Flush())
					assert.Equal(t, tc.want, out.String(), "chunk %d, buffer %d", chunk, size)
					assert.Equal(t, int64(len(tc.want)), d.Written())
				}
			}
			if strings.Contains(tc.in, "\r") {
				return // textproto's reader reads a bare CR differently
			}
			r := textproto.NewReader(bufio.NewReader(strings.NewReader(tc.want)))
			back, err := io.ReadAll(r.DotReader())
			require.NoError(t, err)
			want := strings.ReplaceAll(tc.in, "\n", "\r\n")
			if want != "" && !strings.HasSuffix(want, "\r\n") {
				want += "\r\n"
			}
			// textproto's DotReader turns CRLF into LF.
			assert.Equal(t, strings.ReplaceAll(want, "\r\n", "\n"), string(back))
		})
	}
}

// TestWriteCapa: RFC2449-5-CAPA and the capabilities of RFC 2449 §6,
// RFC2595-4-STLS, RFC5034-3-SASL, RFC3206-6-AUTH-RESP-CODE,
// RFC6856-2-UTF8, RFC6856-3-LANG, built from the table and the variations.
func TestWriteCapa(t *testing.T) {
	clause.Covers(t,
		"RFC2449-5-CAPA", "RFC2449-6.1-TOP", "RFC2449-6.2-USER", "RFC2449-6.3-SASL",
		"RFC2449-6.4-RESP-CODES", "RFC2449-6.5-LOGIN-DELAY", "RFC2449-6.6-PIPELINING",
		"RFC2449-6.7-EXPIRE", "RFC2449-6.8-UIDL", "RFC2449-6.9-IMPLEMENTATION", "RFC2595-4-STLS",
		"RFC3206-6-AUTH-RESP-CODE", "RFC5034-3-SASL", "RFC6856-2-UTF8", "RFC6856-3-LANG", "V0007",
		"V0010")
	got := writeCapa(t, RFC1939(), pop3.CapaInfo{Plaintext: true, SASL: []string{"PLAIN", "SCRAM-SHA-256"}, LoginDelay: 900,
		Expire: "NEVER", Implementation: "pop3kit", STLS: true})
	assert.Equal(t, "+OK Capability list follows\r\n"+
		"TOP\r\n"+ // RFC2449-6.1-TOP, V0007
		"USER\r\n"+ // RFC2449-6.2-USER
		"SASL PLAIN SCRAM-SHA-256\r\n"+ // RFC2449-6.3-SASL
		"RESP-CODES\r\n"+ // RFC2449-6.4-RESP-CODES
		"AUTH-RESP-CODE\r\n"+
		"LOGIN-DELAY 900\r\n"+ // RFC2449-6.5-LOGIN-DELAY
		"PIPELINING\r\n"+ // RFC2449-6.6-PIPELINING
		"EXPIRE NEVER\r\n"+ // RFC2449-6.7-EXPIRE
		"UIDL\r\n"+ // RFC2449-6.8-UIDL
		"IMPLEMENTATION pop3kit\r\n"+ // RFC2449-6.9-IMPLEMENTATION
		"STLS\r\n"+
		"UTF8 USER\r\n"+
		"LANG\r\n"+
		".\r\n", got)

	got = writeCapa(t, Exchange2010(), pop3.CapaInfo{})
	assert.Equal(t, "+OK Capability list follows\r\nTOP\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUIDL\r\n.\r\n", got,
		"V0010: no USER where plaintext is refused; no UTF8 or LANG under Exchange")
}

// TestErrors: RFC2449-8.1.1-LOGIN-DELAY, RFC2449-8.1.2-IN-USE,
// RFC3206-5-AUTH, RFC6856-5-UTF8 — the codes as on the wire.
func TestErrors(t *testing.T) {
	clause.Covers(t,
		"RFC2449-8.1.1-LOGIN-DELAY", "RFC2449-8.1.2-IN-USE", "RFC3206-5-AUTH", "RFC6856-5-UTF8")
	for code, want := range map[string]string{pop3.CodeLoginDelay: "LOGIN-DELAY", pop3.CodeInUse: "IN-USE", pop3.CodeAuth: "AUTH",
		pop3.CodeSysTemp: "SYS/TEMP", pop3.CodeSysPerm: "SYS/PERM", pop3.CodeUTF8: "UTF8"} {
		assert.Equal(t, want, code)
	}
	assert.Equal(t, "-ERR [AUTH] bad", pop3.NewError(pop3.CodeAuth, "bad").Error())
	assert.Equal(t, "-ERR unknown command", pop3test.Err("UnknownCommand").Error())
}

// writeCapa returns the CAPA reply of a session under v whose CapaHandler
// says info.
func writeCapa(t *testing.T, v Variations, info pop3.CapaInfo) string {
	h := newHarness(t, v)
	h.r.capa = func(c *pop3.CapaInfo) { *c = info }
	return h.expect("CAPA", "+OK")
}
