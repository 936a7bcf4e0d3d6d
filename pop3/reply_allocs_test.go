//go:build !race

package pop3

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

// replyWire is a session's worth of server output: a greeting, status
// lines with and without codes, a CAPA listing, a body and a challenge.
const replyWire = "+OK pop3kit ready <1.2@host>\r\n" +
	"-ERR [SYS/TEMP] try later\r\n" +
	"+OK Capability list follows\r\nTOP\r\nSASL PLAIN LOGIN\r\nLOGIN-DELAY 900\r\n.\r\n" +
	"+OK 52 octets\r\nSubject: x\r\n\r\n..dot\r\nbody\r\n.\r\n" +
	"+ dGVzdA==\r\n"

// readSession reads replyWire as a client would.
func readSession(rr *ReplyReader, buf []byte) int {
	n := 0
	r, _ := rr.ReadReply()
	n += len(timestamp(r.Text))
	r, _ = rr.ReadReply()
	if r.HasCode("SYS") {
		n++
	}
	_, _ = rr.ReadReply()
	for {
		l, err := rr.ReadListLine()
		if err != nil {
			break
		}
		c := parseCapaLine(l)
		n += c.NArgs() + len(c.Arg(0))
	}
	_, _ = rr.ReadReply()
	body := rr.Body(0)
	for {
		k, err := body.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	r, _ = rr.ReadReply()
	return n + len(r.Text)
}

// TestReplyReaderAllocs proves that reading well-formed replies — status
// lines, codes, a CAPA listing parsed line by line, a body — allocates
// nothing once the reader exists.
func TestReplyReaderAllocs(t *testing.T) {
	wire := []byte(replyWire)
	src := bytes.NewReader(wire)
	rr := NewReplyReader(src)
	buf := make([]byte, 64)
	want := readSession(rr, buf)
	assert.Positive(t, want)
	n := testing.AllocsPerRun(200, func() {
		src.Reset(wire)
		rr.Reset(rr.Reader())
		if got := readSession(rr, buf); got != want {
			t.Fatalf("read %d, want %d", got, want)
		}
	})
	assert.Zero(t, n, "%v allocs per session", n)
}

// BenchmarkReadReplies measures reading replyWire.
func BenchmarkReadReplies(b *testing.B) {
	wire := []byte(replyWire)
	src := bytes.NewReader(wire)
	rr := NewReplyReader(src)
	buf := make([]byte, 64)
	want := readSession(rr, buf)
	b.ReportAllocs()
	b.SetBytes(int64(len(replyWire)))
	for b.Loop() {
		src.Reset(wire)
		rr.Reset(rr.Reader())
		if readSession(rr, buf) != want {
			b.Fatal("wrong read")
		}
	}
}
