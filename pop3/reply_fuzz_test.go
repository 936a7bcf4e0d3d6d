package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/textproto"
	"regexp"
	"runtime"
	"testing"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/internal/testenv"
)

// FuzzReplyParser attacks the runtime's client side (ReplyReader,
// ParseReply, ParseCapaLine, DotReader) from two ends.
//
// As a server's output: any bytes, read as a client reads them — status
// lines, listing lines and bodies in an order the ops bytes choose — never
// panic, never return a status or listing line longer than 512 octets (a
// SASL challenge longer than the buffer), never loop,
// and allocate a bounded amount: a fixed cost for the reader plus one
// small error per bad line, never a copy of a line or a body.
//
// As a body: wire holds a message; the core's DotWriter sends it after a
// "+OK" and before another reply, the ReplyReader must read back its CRLF
// form exactly, without allocating, and leave the next reply intact; and
// net/textproto's DotReader must agree on bodies without CR (it takes a
// bare LF as a line end, which the core does not).
func FuzzReplyParser(f *testing.F) {
	for _, s := range []struct{ wire, ops string }{
		{"+OK pop3kit ready <1.2@host>\r\n", "\x00"},
		{"-ERR [SYS/TEMP] later\r\n-ERR [IN-USE]\r\n-ERR [AUTH] no\r\n", "\x00\x00\x00"},
		{"+OK\r\nSASL PLAIN LOGIN\r\nLOGIN-DELAY 900\r\n..x\r\n.\r\n", "\x00\x01"},
		{"+OK 52 octets\r\nSubject: x\r\n\r\n..dot\r\n.\r\n+OK\r\n", "\x00\x02\x00"},
		{"+ dGVzdA==\r\n+\r\n", "\x00\x00"},
		{"+OK\r\nbody cut", "\x00\x02"},
		{"+OK bare LF\n", "\x00"},
		{"From: a\n\n.\n..\n.\r\n", "\x02"},
	} {
		f.Add([]byte(s.wire), []byte(s.ops))
	}
	fuzzbound.Fuzz(f, func(t *testing.T, wire, ops []byte) {
		for _, line := range bytes.Split(wire, []byte("\r\n")) {
			agreesWithGrammar(t, line)
		}
		// Allocation is measured on a quarter of the inputs, chosen by
		// length so that a failure replays: measuring stops the world
		// and would slow the fuzzer several times over.
		measure := len(wire)%4 == 0
		readAsServerOutput(t, wire, ops, measure)
		roundTrip(t, wire, measure)
	})
}

// replyGrammar is a slow reading of the reply grammar of RFC 1939 §3,
// RFC 2449 §8 and RFC 5034 §4, written from the RFCs rather than from the
// parser: a status, then optionally SP, a response code in brackets
// followed by SP or the end, and text; or "+" and optionally SP and a
// challenge.
var (
	statusGrammar   = regexp.MustCompile(`(?s)^(\+OK|-ERR)(?: (?:\[((?:[\x21-\x2e\x30-\x5c\x5e-\x7f]+)(?:/[\x21-\x2e\x30-\x5c\x5e-\x7f]+)*)\](?: |$))?(.*))?$`)
	continueGrammar = regexp.MustCompile(`(?s)^\+(?: (.*))?$`)
)

// agreesWithGrammar checks ParseReply against replyGrammar on one line.
func agreesWithGrammar(t *testing.T, line []byte) {
	r, err := ParseReply(line)
	if m := statusGrammar.FindSubmatch(line); m != nil {
		want := StatusOK
		if m[1][0] == '-' {
			want = StatusErr
		}
		if err != nil || r.Status != want || string(r.Code) != string(m[2]) || string(r.Text) != string(m[3]) {
			t.Fatalf("%q: parsed %v code %q text %q (%v), the grammar reads %s code %q text %q", line, r.Status, r.Code, r.Text, err, m[1], m[2], m[3])
		}
		return
	}
	if m := continueGrammar.FindSubmatch(line); m != nil && !bytes.HasPrefix(line, []byte("+OK")) {
		if err != nil || r.Status != StatusContinue || string(r.Text) != string(m[1]) || r.Code != nil {
			t.Fatalf("%q: parsed %v code %q text %q (%v), the grammar reads a continuation %q", line, r.Status, r.Code, r.Text, err, m[1])
		}
		return
	}
	if err == nil {
		t.Fatalf("%q: parsed as %v code %q text %q, which the grammar refuses", line, r.Status, r.Code, r.Text)
	}
}

// readAsServerOutput reads wire as replies in the order ops gives, and
// checks what that allocates. The allocation is counted over the whole
// process, so a goroutine of the fuzzing engine can add to it: the
// smaller of two runs is what the reading cost.
func readAsServerOutput(t *testing.T, wire, ops []byte, measure bool) {
	if !measure {
		readReplies(t, wire, ops)
		return
	}
	var got uint64
	var bad int
	for run := range 2 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		bad = readReplies(t, wire, ops)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; run == 0 || n < got {
			got = n
		}
	}
	// The reader's buffer (4 KiB) and its struct, then per bad line the
	// error and its quote (under 300 octets).
	if limit := uint64(8<<10 + 300*(bad+1)); got > limit {
		t.Fatalf("reading %d octets allocated %d octets (limit %d for %d bad lines)", len(wire), got, limit, bad)
	}
}

// readReplies reads wire as replies in the order ops gives and returns
// the number of reads that failed.
func readReplies(t *testing.T, wire, ops []byte) int {
	rr := NewReplyReader(bytes.NewReader(wire))
	buf := make([]byte, 256)
	bad := 0
	for i := 0; i < 4*len(wire)+4; i++ {
		var op byte
		if len(ops) > 0 {
			op = ops[i%len(ops)]
		}
		var err error
		switch op % 3 {
		case 0:
			var r Reply
			r, err = rr.ReadReply()
			if err == nil {
				if r.Status < StatusOK || r.Status > StatusContinue {
					t.Fatalf("status %v", r.Status)
				}
				// A status line is held to 512 octets; a SASL challenge
				// only to the reader's buffer (RFC 5034 §4).
				limit := MaxReplyOctets
				if r.Status == StatusContinue {
					limit = rr.Reader().Size()
				}
				if len(r.Code)+len(r.Text)+2 > limit {
					t.Fatalf("a %v reply of %d octets passed the limit", r.Status, len(r.Code)+len(r.Text))
				}
				_ = r.HasCode("SYS")
				_ = timestamp(r.Text)
			}
		case 1:
			for {
				var l []byte
				if l, err = rr.ReadListLine(); err != nil {
					break
				}
				if len(l)+2 > MaxReplyOctets {
					t.Fatalf("a listing line of %d octets passed the limit", len(l))
				}
				c := parseCapaLine(l)
				for j := range c.NArgs() {
					if c.Arg(j) == nil {
						t.Fatalf("%q: argument %d of %d is missing", l, j, c.NArgs())
					}
				}
			}
		case 2:
			body := rr.Body(1000)
			for err == nil {
				_, err = body.Read(buf)
			}
		}
		if errors.Is(err, io.EOF) && rr.Buffered() == 0 && op%3 == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			bad++
			var pe *ProtocolError
			if !errors.As(err, &pe) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error %T %v", err, err)
			}
			if pe != nil && len(pe.Line) > 80 {
				t.Fatalf("the error quotes %d octets", len(pe.Line))
			}
		}
	}
	return bad
}

// roundTrip sends msg as a body between two replies and reads it back.
func roundTrip(t *testing.T, msg []byte, measure bool) {
	var out bytes.Buffer
	out.WriteString("+OK message follows\r\n")
	d := NewDotWriter(&out)
	if _, err := d.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	out.WriteString("-ERR [SYS/PERM] next\r\n")
	wire := out.Bytes()
	// Converted into a writer's buffer (the session's way), small or
	// large, the body is the same.
	for _, size := range []int{16, 100, 4096} {
		var again bytes.Buffer
		bw := bufio.NewWriterSize(&again, size)
		bw.WriteString("+OK message follows\r\n")
		d := NewDotWriter(bw)
		if _, err := d.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		bw.WriteString("-ERR [SYS/PERM] next\r\n")
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), wire) {
			t.Fatalf("%q: through a %d-octet buffer %q, directly %q", msg, size, again.Bytes(), wire)
		}
	}

	src := bytes.NewReader(wire)
	rr := NewReplyReader(bufio.NewReaderSize(src, 4096))
	got := make([]byte, 0, len(msg)*2+16)
	read := func() {
		got = got[:0]
		src.Reset(wire)
		rr.Reset(rr.Reader())
		if r, err := rr.ReadReply(); err != nil || !r.OK() {
			t.Fatalf("%q: status %v %v", msg, r.Status, err)
		}
		body := rr.Body(0)
		for {
			if len(got) == cap(got) {
				t.Fatalf("%q: the body goes on past %d octets", msg, cap(got))
			}
			n, err := body.Read(got[len(got):cap(got)])
			got = got[:len(got)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%q: reading the body: %v", msg, err)
			}
		}
		r, err := rr.ReadReply()
		if err != nil || r.Status != StatusErr || !r.HasCode("SYS") || string(r.Text) != "next" {
			t.Fatalf("%q: the reply after the body: %v %q %q %v", msg, r.Status, r.Code, r.Text, err)
		}
	}
	if !measure {
		read()
	} else if n := testing.AllocsPerRun(2, read); n > 0 {
		t.Fatalf("%q: reading the body allocated %v times", msg, n)
	}
	if want := testenv.CRLFForm(msg); !bytes.Equal(got, want) {
		t.Fatalf("%q: read back %q, want %q", msg, got, want)
	}
	if bytes.IndexByte(msg, '\r') < 0 {
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(wire)))
		if _, err := tp.ReadLine(); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tp.DotReader())
		if err != nil {
			t.Fatalf("%q: net/textproto: %v", msg, err)
		}
		if want := bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n")); !bytes.Equal(b, want) {
			t.Fatalf("%q: net/textproto reads %q, the core %q", msg, b, got)
		}
	}
}

// TestReplyGrammarRandom runs agreesWithGrammar on 100,000 lines built
// from the octets the grammar turns on, with a fixed seed, so that the
// corners (codes at the end, brackets that are not codes, "+" alone) are
// reached in every plain test run and not only while fuzzing.
func TestReplyGrammarRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(2449, 8))
	alphabet := []byte("+-OKER[]/ A\x7f\x80\x20\x21.:")
	prefixes := []string{"+OK", "-ERR", "+", "+OK [", "-ERR [", ""}
	line := make([]byte, 0, 32)
	for range 100000 {
		line = append(line[:0], prefixes[rng.IntN(len(prefixes))]...)
		for range rng.IntN(12) {
			line = append(line, alphabet[rng.IntN(len(alphabet))])
		}
		agreesWithGrammar(t, line)
	}
}
