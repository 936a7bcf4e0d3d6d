// Package pop3test is the one POP3 client of pop3kit's tests: the server
// tests, the properties, the fuzz targets and the examples all speak POP3
// through it. It reads replies with the core's own reply parser
// (pop3gen.ReplyReader), so that every test checks what a client relies
// on: CRLF line ends, status lines of at most 512 octets (RFC 1939 §3,
// MS-STANXPOP3 C0001), "+OK"/"-ERR"/"+ " status indicators, dot-stuffed
// multi-line replies that end with ".".
//
// The helpers build on each other, as go-smtp's and go-imap's tests do:
// Dial gives a greeted connection, LoggedIn (or Login on a greeted one) a
// logged-in one; Cmd sends a line and returns the status line; Multi reads
// the lines of a multi-line reply. Each comes in two forms. The short names (Line, Cmd, Multi, Data, Send)
// fail the test on a transport or protocol error, with a message that says
// what was sent and what came back (the last lines of the transcript); the
// Read…/Exchange forms return the error instead, for property checks and
// fuzz targets that decide themselves what a failure is.
package pop3test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/spec"
)

// Timeout is the deadline Dial sets on a connection: long enough for a
// loaded CI machine, short enough that a hung server fails the test.
const Timeout = 30 * time.Second

// transcriptLines is how many of the last lines a failure quotes.
const transcriptLines = 12

// Conn is a test's POP3 connection. C and R may be replaced (after STLS,
// say): every method reads through R and writes to C as they are at the
// time of the call.
type Conn struct {
	// T fails the test in Line, Cmd, Multi and the other short-named
	// helpers; it may be nil when only the Read…/Exchange forms are used.
	T testing.TB
	// C is the connection.
	C net.Conn
	// R buffers C; the reply parser reads from it, and so may a test. Its
	// buffer must hold a 512-octet line (bufio.NewReader's does), or the
	// parser would wrap it in another and lose what it had buffered.
	R *bufio.Reader
	// Greeting is the greeting line without its CRLF, once read.
	Greeting string

	rr   pop3.ReplyReader
	log  []string // the last lines sent (C:) and received (S:)
	last string   // the last line sent
}

// New returns a Conn on c, which has sent nothing yet; t may be nil. It
// reads nothing: call Greet.
func New(t testing.TB, c net.Conn) *Conn {
	return &Conn{T: t, C: c, R: bufio.NewReader(c)}
}

// Dial connects to addr, closes the connection when the test ends, sets
// a deadline of Timeout and reads the greeting, which must be "+OK".
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return Greeted(t, nc)
}

// Greeted wraps a connection that was just opened (a pipe, a TLS
// connection) as Dial does: cleanup, deadline, greeting.
func Greeted(t testing.TB, nc net.Conn) *Conn {
	t.Helper()
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(Timeout))
	c := New(t, nc)
	c.Greet()
	return c
}

// Open connects to addr and reads a "+OK" greeting, returning errors
// instead of failing a test.
func Open(addr string, timeout time.Duration) (*Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	c := New(nil, nc)
	g, err := c.ReadStatus()
	if err == nil && !strings.HasPrefix(g, "+OK") {
		err = fmt.Errorf("greeting %q", g)
	}
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c.Greeting = g
	return c, nil
}

// reader returns the reply parser on R, following a replaced R.
func (c *Conn) reader() *pop3.ReplyReader {
	if c.rr.Reader() != c.R {
		c.rr.Reset(c.R)
	}
	return &c.rr
}

func (c *Conn) record(dir, line string) {
	if len(line) > 200 {
		line = line[:200] + fmt.Sprintf("… (%d octets)", len(line))
	}
	if len(c.log) == transcriptLines {
		copy(c.log, c.log[1:])
		c.log = c.log[:transcriptLines-1]
	}
	c.log = append(c.log, fmt.Sprintf("%s: %q", dir, line))
}

// Transcript returns the last lines sent and received, one per line.
func (c *Conn) Transcript() string { return strings.Join(c.log, "\n") }

// Fatalf fails the test with the message and the transcript.
func (c *Conn) Fatalf(format string, args ...any) {
	c.T.Helper()
	c.T.Fatalf("%s\ntranscript (last %d lines):\n%s", fmt.Sprintf(format, args...), transcriptLines, c.Transcript())
}

// WriteLine sends line and CRLF.
func (c *Conn) WriteLine(line string) error {
	c.record("C", line)
	c.last = line
	_, err := c.C.Write([]byte(line + "\r\n"))
	return err
}

// ReadLine reads one line and returns it without its CRLF. It must end in
// CRLF and hold at most 512 octets with it (C0001); it may be a status,
// listing or data line.
func (c *Conn) ReadLine() (string, error) {
	l, err := c.reader().ReadLine()
	if err != nil {
		c.record("S", "<"+err.Error()+">")
		return "", c.after(err)
	}
	s := string(l)
	c.record("S", s)
	return s, nil
}

// ReadStatus reads a status line or continuation: ReadLine, and a line
// that pop3gen.ParseReply reads as "+OK", "-ERR" or "+ ".
func (c *Conn) ReadStatus() (string, error) {
	l, err := c.ReadLine()
	if err != nil {
		return "", err
	}
	if _, err := pop3.ParseReply([]byte(l)); err != nil {
		return l, c.after(err)
	}
	return l, nil
}

// after adds the last line sent to a reading error, so that an error
// returned rather than failed on still says what it answered.
func (c *Conn) after(err error) error {
	if c.last == "" {
		return err
	}
	return fmt.Errorf("%w (reading the reply to %.80q)", err, c.last)
}

// Exchange sends line and reads the status line that answers it.
func (c *Conn) Exchange(line string) (string, error) {
	if err := c.WriteLine(line); err != nil {
		return "", err
	}
	return c.ReadStatus()
}

// ReadRaw reads one line as it came, line end included, without checking
// it: for tests that check lines themselves. At the end of the input the
// partial line is returned with the error.
func (c *Conn) ReadRaw() (string, error) {
	l, err := c.R.ReadString('\n')
	c.record("S", l)
	return l, err
}

// ReadData reads the data of a multi-line reply after its "+OK":
// dot-unstuffed, in CRLF form, with pop3gen's DotReader. A reply cut
// before its "." line is io.ErrUnexpectedEOF.
func (c *Conn) ReadData() ([]byte, error) {
	b, err := io.ReadAll(c.reader().Body(0))
	c.record("S", fmt.Sprintf("(%d octets of data)", len(b)))
	if err != nil {
		err = c.after(err)
	}
	return b, err
}

// ReadLines reads a multi-line reply's data as lines without their CRLF.
// A line holding a LF that no CR precedes is an error: the server must
// end every line with CRLF.
func (c *Conn) ReadLines() ([]string, error) {
	b, err := c.ReadData()
	if err != nil {
		return nil, err
	}
	return SplitCRLF(b)
}

// SplitCRLF splits data in CRLF form into lines; an empty data has no
// lines. A bare LF is an error.
func SplitCRLF(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		return nil, fmt.Errorf("data does not end in CRLF: %.80q", b)
	}
	lines := strings.Split(string(b[:len(b)-2]), "\r\n")
	for _, l := range lines {
		if strings.IndexByte(l, '\n') >= 0 {
			return lines, fmt.Errorf("data line %.80q holds LF without CR", l)
		}
	}
	return lines, nil
}

// CheckStatus checks a raw line (with its line end) as a status line: at
// most 512 octets, CRLF, "+OK", "-ERR" or "+ ".
func CheckStatus(raw string) error {
	if len(raw) > pop3.MaxReplyOctets {
		return fmt.Errorf("status line of %d octets, more than %d (C0001): %.80q", len(raw), pop3.MaxReplyOctets, raw)
	}
	if !strings.HasSuffix(raw, "\r\n") {
		return fmt.Errorf("status line %.80q does not end in CRLF", raw)
	}
	_, err := pop3.ParseReply([]byte(raw))
	return err
}

// IsTimeout reports whether err is a deadline that expired.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// The helpers below fail the test (T) instead of returning errors.

// Greet reads the greeting, which must be "+OK", into Greeting.
func (c *Conn) Greet() string {
	c.T.Helper()
	g := c.Line()
	if !strings.HasPrefix(g, "+OK") {
		c.Fatalf("greeting %q is not +OK", g)
	}
	c.Greeting = g
	return g
}

// Send sends line and CRLF.
func (c *Conn) Send(line string) {
	c.T.Helper()
	if err := c.WriteLine(line); err != nil {
		c.Fatalf("sending %q: %v", line, err)
	}
}

// Line reads a line as ReadLine does.
func (c *Conn) Line() string {
	c.T.Helper()
	l, err := c.ReadLine()
	if err != nil {
		c.Fatalf("reading a reply: %v", err)
	}
	return l
}

// Status reads a status line as ReadStatus does.
func (c *Conn) Status() string {
	c.T.Helper()
	l, err := c.ReadStatus()
	if err != nil {
		c.Fatalf("reading a status line: %v", err)
	}
	return l
}

// Cmd sends line and returns the status line that answers it.
func (c *Conn) Cmd(line string) string {
	c.T.Helper()
	c.Send(line)
	return c.Status()
}

// OK sends line and returns the status line, which must be "+OK".
func (c *Conn) OK(line string) string {
	c.T.Helper()
	r := c.Cmd(line)
	if !strings.HasPrefix(r, "+OK") {
		c.Fatalf("%q got %q, want +OK", line, r)
	}
	return r
}

// Login sends USER and PASS, each of which must get "+OK".
func (c *Conn) Login(user, password string) *Conn {
	c.T.Helper()
	c.OK("USER " + user)
	c.OK("PASS " + password)
	return c
}

// LoggedIn dials addr and logs in with USER and PASS: a connection in
// TRANSACTION.
func LoggedIn(t testing.TB, addr, user, password string) *Conn {
	t.Helper()
	return Dial(t, addr).Login(user, password)
}

// Data reads a multi-line reply's data as ReadData does.
func (c *Conn) Data() []byte {
	c.T.Helper()
	b, err := c.ReadData()
	if err != nil {
		c.Fatalf("reading multi-line data: %v", err)
	}
	return b
}

// Multi reads the lines of a multi-line reply, dot-unstuffed, without the
// terminator, as ReadLines does.
func (c *Conn) Multi() []string {
	c.T.Helper()
	l, err := c.ReadLines()
	if err != nil {
		c.Fatalf("reading a multi-line reply: %v", err)
	}
	return l
}

// Closed reports whether the server closed the connection (or sent
// nothing more) within 5 seconds.
func (c *Conn) Closed() bool {
	_ = c.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.R.ReadByte()
	return err != nil
}

// Rest reads what the server sends, as it comes and unchecked, until it
// closes the connection or nothing more comes for a moment (300 ms): what
// a client would have kept of a reply that went wrong.
func (c *Conn) Rest() string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		_ = c.C.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.R.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// Missing skips tb for want of err (a program, a service the test drives),
// except under CI=true, where every test must run: it fails instead.
func Missing(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and %v", err)
	}
	tb.Skip(err)
}

// Err is the reply the runtime sends for the error row name of the
// standard table (spec.POP3.Errors: "BareCR", "NeedAuth"), built from
// the table's code and text. The runtime exports only the errors a
// Handler returns or an observer tells apart, so a test compares the
// others by value (assert.Equal, or their Error text), never by identity.
func Err(name string) *pop3.Error {
	for _, e := range spec.POP3.Errors {
		if e.Name == name {
			code := ""
			for _, r := range spec.POP3.RespCodes {
				if r.Name == e.Code || r.Code == e.Code {
					code = r.Code
				}
			}
			return pop3.NewError(code, e.Text)
		}
	}
	panic("pop3test.Err: the standard table has no error " + name)
}
