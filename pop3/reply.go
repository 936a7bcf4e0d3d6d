package pop3

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// This file is the client side of the core: it reads what a POP3 server
// sends. A client, a proxy and a test all read replies through it, so that
// there is one reading of the reply grammar:
//
//	reply        = status-line / continue-req
//	status-line  = ("+OK" / "-ERR") [SP [resp-code SP] text] CRLF   ; RFC 1939 §3, RFC 2449 §8
//	resp-code    = "[" resp-level *("/" resp-level) "]"              ; RFC 2449 §8
//	resp-level   = 1*rchar
//	rchar        = %x21-2E / %x30-5C / %x5E-7F                       ; printable, not "/" or "]"
//	continue-req = "+" SP [base64] CRLF                              ; RFC 5034 §4
//	multi-line   = status-line *(["."] line CRLF) "." CRLF           ; RFC 1939 §3
//
// Nothing here allocates on a well-formed reply: every slice returned
// aliases the caller's line or the bufio.Reader's buffer, and the comment
// of each function says until when it stays valid. Only a malformed reply
// allocates, to build the error that quotes it.

// ReplyStatus is the kind of a reply line.
type ReplyStatus uint8

// The reply kinds.
const (
	// StatusOK is "+OK": the command succeeded.
	StatusOK ReplyStatus = iota + 1
	// StatusErr is "-ERR": the command failed.
	StatusErr
	// StatusContinue is "+ ": a SASL challenge; the client must answer
	// with one line (RFC 5034 §4).
	StatusContinue
)

// String returns the status indicator as it is on the wire.
func (s ReplyStatus) String() string {
	switch s {
	case StatusOK:
		return "+OK"
	case StatusErr:
		return "-ERR"
	case StatusContinue:
		return "+"
	}
	return "ReplyStatus(" + strconv.Itoa(int(s)) + ")"
}

// Reply is one parsed status line or SASL continuation. Code and Text
// alias the line that was parsed: they are valid as long as it is (for
// ReplyReader.ReadReply, until the next read from the ReplyReader). Copy
// them, or use Err, to keep them longer.
type Reply struct {
	Status ReplyStatus
	// Code is the extended response code without its brackets, such as
	// "SYS/TEMP", "IN-USE" or "LOGIN-DELAY" (RFC 2449 §8, RFC 3206), or
	// nil when the line has none. It is never set on a continuation.
	Code []byte
	// Text is what follows the status and the code, without the SP in
	// front and without the CRLF. For a continuation it is the base64
	// challenge, possibly empty.
	Text []byte
}

// OK reports whether the reply is "+OK".
func (r *Reply) OK() bool { return r.Status == StatusOK }

// HasCode reports whether the reply carries the response code code (one
// of the Code… constants, or any other) or one below it in the hierarchy:
// HasCode("SYS") is true for [SYS/TEMP] and [SYS/PERM], as RFC 2449 §8
// asks a client to treat an unknown code as its known parent. Codes
// compare case-sensitively, as they are sent.
func (r *Reply) HasCode(code string) bool {
	c := r.Code
	if len(c) < len(code) || string(c[:len(code)]) != code {
		return false
	}
	return len(c) == len(code) || c[len(code)] == '/'
}

// Err returns nil for "+OK" and a continuation, and for "-ERR" an *Error
// holding copies of the code and the text, so that it outlives the line
// and a proxy can pass it on with Writer.Error.
func (r *Reply) Err() error {
	if r.Status != StatusErr {
		return nil
	}
	return &Error{Code: string(r.Code), Text: string(r.Text)}
}

// ProtocolError is a reply that does not follow the grammar: a line that
// is not a status line, one that is too long or does not end in CRLF, a
// listing that cannot be read. Line quotes the start of the offending
// line.
type ProtocolError struct {
	Reason string
	Line   string
}

// Error returns "pop3: reason: \"line\"".
func (e *ProtocolError) Error() string {
	if e.Line == "" {
		return "pop3: " + e.Reason
	}
	return "pop3: " + e.Reason + ": " + strconv.Quote(e.Line)
}

// quoteMax is how much of a bad line a ProtocolError keeps: enough to
// recognise it, never a whole body.
const quoteMax = 80

func protocolError(reason string, line []byte) *ProtocolError {
	return &ProtocolError{Reason: reason, Line: string(line[:min(len(line), quoteMax)])}
}

// errTruncated is returned when the input ends inside a multi-line reply,
// before its terminating "." line: the message or listing is incomplete
// and must not be used. errors.Is(errTruncated, io.ErrUnexpectedEOF) holds.
var errTruncated error = truncatedError{}

type truncatedError struct{}

func (truncatedError) Error() string {
	return "pop3: the connection ended inside a multi-line reply, before its terminating \".\" line"
}

func (truncatedError) Is(target error) bool { return target == io.ErrUnexpectedEOF }

// ParseReply parses a status line ("+OK", "-ERR") or a SASL continuation
// ("+ base64"). A trailing CRLF, if present, is ignored. The status
// indicators are matched in upper case only, as RFC 1939 §3 makes servers
// send them; "+" alone is read as an empty continuation, which some
// servers send for "+ ". A bracketed word that is not a valid response
// code stays part of Text. Code and Text alias line.
func ParseReply(line []byte) (Reply, error) {
	line = trimCRLF(line)
	var r Reply
	var rest []byte
	switch {
	case hasStatus(line, "+OK"):
		r.Status, rest = StatusOK, line[3:]
	case hasStatus(line, "-ERR"):
		r.Status, rest = StatusErr, line[4:]
	case len(line) >= 1 && line[0] == '+' && (len(line) == 1 || line[1] == ' '):
		r.Status = StatusContinue
		if len(line) > 1 {
			r.Text = line[2:]
		}
		return r, nil
	default:
		return Reply{}, protocolError("not a status line", line)
	}
	if len(rest) == 0 {
		return r, nil
	}
	rest = rest[1:] // the SP, checked by hasStatus
	r.Code, r.Text = cutRespCode(rest)
	return r, nil
}

// hasStatus reports whether line is status alone or status followed by SP.
func hasStatus(line []byte, status string) bool {
	return len(line) >= len(status) && string(line[:len(status)]) == status &&
		(len(line) == len(status) || line[len(status)] == ' ')
}

// cutRespCode splits "[CODE] text" into the code and the text; text
// without a valid code in front is returned whole.
func cutRespCode(text []byte) (code, rest []byte) {
	if len(text) < 3 || text[0] != '[' {
		return nil, text
	}
	end := bytes.IndexByte(text, ']')
	if end < 0 || !validRespCode(text[1:end]) {
		return nil, text
	}
	switch {
	case end+1 == len(text):
		return text[1:end], text[end+1:]
	case text[end+1] == ' ':
		return text[1:end], text[end+2:]
	}
	return nil, text
}

// validRespCode checks resp-level *("/" resp-level): levels of one or more
// rchar, separated by single "/".
func validRespCode(c []byte) bool {
	if len(c) == 0 || c[0] == '/' || c[len(c)-1] == '/' {
		return false
	}
	for i, b := range c {
		switch {
		case b == '/':
			if c[i-1] == '/' {
				return false
			}
		case b < 0x21 || b > 0x7f || b == ']':
			return false
		}
	}
	return true
}

// trimCRLF removes one trailing CRLF.
func trimCRLF(line []byte) []byte {
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		return line[:n-2]
	}
	return line
}

// timestamp returns the APOP timestamp of a greeting's text: the last
// "<…>" holding an "@" (RFC 1939 §7: "<process-ID.clock@hostname>"), with
// its brackets, as the digest covers them; nil when there is none. It
// aliases text. It is exported for clients and proxies that read the
// greeting with ReplyReader or ParseReply rather than through Client, and
// must compute an APOP digest from it.
func timestamp(text []byte) []byte {
	end := bytes.LastIndexByte(text, '>')
	if end < 0 {
		return nil
	}
	start := bytes.LastIndexByte(text[:end], '<')
	if start < 0 || bytes.IndexByte(text[start:end], '@') < 0 {
		return nil
	}
	for _, c := range text[start+1 : end] {
		if c <= ' ' || c >= 0x7f || c == '<' {
			return nil
		}
	}
	return text[start : end+1]
}

// capaLine is one line of a CAPA reply (RFC 2449 §5): a capability name
// and its arguments, such as "SASL PLAIN SCRAM-SHA-256", "LOGIN-DELAY
// 900", "EXPIRE NEVER" or "IMPLEMENTATION pop3kit 1.0". Name and Args
// alias the parsed line.
type capaLine struct {
	// Name is the capability tag, as sent; compare it with Is.
	Name []byte
	// Args is the rest of the line after the name and its separating
	// spaces, or empty.
	Args []byte
}

// parseCapaLine splits a CAPA listing line (already dot-unstuffed, without
// CRLF) into the name and the arguments. Runs of spaces separate.
func parseCapaLine(line []byte) capaLine {
	line = trimSpaces(trimCRLF(line))
	name, args := nextWord(line)
	return capaLine{Name: name, Args: args}
}

// Is reports whether the capability is name; capability tags are
// case-insensitive (RFC 2449 §5).
func (c capaLine) Is(name string) bool { return equalFold(c.Name, name) }

// Arg returns the argument at index i (from 0), or nil; it aliases the
// line, as Args does.
func (c capaLine) Arg(i int) []byte {
	rest := c.Args
	for ; ; i-- {
		var w []byte
		w, rest = nextWord(rest)
		if w == nil || i == 0 {
			return w
		}
	}
}

// NArgs returns the number of arguments.
func (c capaLine) NArgs() int {
	n := 0
	for rest := c.Args; ; n++ {
		var w []byte
		if w, rest = nextWord(rest); w == nil {
			return n
		}
	}
}

// nextWord returns the first space-separated word of b and what follows
// it, spaces skipped; nil when b holds no word.
func nextWord(b []byte) (word, rest []byte) {
	b = trimSpaces(b)
	if len(b) == 0 {
		return nil, nil
	}
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return b, b[len(b):]
	}
	return b[:i], trimSpaces(b[i:])
}

func trimSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ReplyReader reads replies from a server: status lines, continuations,
// and the lines or the data of multi-line replies. Lines are read in
// place from the bufio.Reader, so a well-formed reply costs no allocation.
// A status or listing line may hold at most MaxLine octets with its CRLF;
// a longer one, or one not ended by CRLF, is a ProtocolError, and the rest
// of it is read and dropped so that the next read starts on a line.
type ReplyReader struct {
	br *bufio.Reader
	// MaxLine is the longest status or listing line, CRLF included: 0
	// means MaxReplyOctets, the limit RFC 1939 §3 and RFC 2449 §4 set.
	// It is capped at the bufio.Reader's size.
	MaxLine int
	body    DotReader
}

// NewReplyReader returns a ReplyReader on r. A *bufio.Reader of at least
// MaxReplyOctets is read directly, so that its owner may read from it
// too; anything else is wrapped in a new one.
func NewReplyReader(r io.Reader) *ReplyReader {
	rr := &ReplyReader{}
	rr.Reset(r)
	return rr
}

// Reset makes rr read from r as NewReplyReader does, keeping MaxLine.
func (rr *ReplyReader) Reset(r io.Reader) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < MaxReplyOctets {
		br = bufio.NewReader(r)
	}
	rr.br = br
	rr.body.Reset(br)
}

// Reader returns the bufio.Reader that rr reads from.
func (rr *ReplyReader) Reader() *bufio.Reader { return rr.br }

// Buffered returns the number of octets received and not yet read. After
// the "+OK" to STLS it must be 0: anything there was sent before TLS and
// must not be trusted (RFC 2595 §4, CVE-2011-0411).
func (rr *ReplyReader) Buffered() int { return rr.br.Buffered() }

func (rr *ReplyReader) maxLine() int {
	m := rr.MaxLine
	if m <= 0 {
		m = MaxReplyOctets
	}
	return min(m, rr.br.Size())
}

// ReadLine returns the next line without its CRLF, checked for length and
// for the CRLF; it does not look at the content. The slice is valid until
// the next read from rr. At the end of the input it returns io.EOF, or
// io.ErrUnexpectedEOF when the input ends inside a line.
func (rr *ReplyReader) ReadLine() ([]byte, error) { return rr.readLine(rr.maxLine()) }

// readLine is ReadLine with the limit max, at most the buffer's size.
func (rr *ReplyReader) readLine(max int) ([]byte, error) {
	line, err := rr.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull || err == nil && len(line) > max:
		pe := protocolError("reply line longer than "+strconv.Itoa(max)+" octets", line)
		for err == bufio.ErrBufferFull {
			_, err = rr.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, pe
	case err == io.EOF && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return nil, protocolError("reply line ends in LF without CR", line)
	}
	return line[:n-2], nil
}

// ReadReply reads a status line or a continuation. Code and Text are valid
// until the next read from rr. A "-ERR" is returned as a Reply with a nil
// error: Reply.Err turns it into one. A status line may hold MaxLine
// octets; a SASL challenge may be as long as the bufio.Reader's buffer
// (4096 octets unless the caller gave a larger one), since RFC 5034 §4
// sets no limit on it and the core's Writer does not cut it.
func (rr *ReplyReader) ReadReply() (Reply, error) {
	line, err := rr.readLine(rr.br.Size())
	if err != nil {
		return Reply{}, err
	}
	r, err := ParseReply(line)
	if max := rr.maxLine(); len(line)+2 > max && (err != nil || r.Status != StatusContinue) {
		return Reply{}, protocolError("reply line longer than "+strconv.Itoa(max)+" octets", line)
	}
	return r, err
}

// ReadListLine reads one line of a multi-line listing (LIST, UIDL, CAPA,
// AUTH, LANG) after its "+OK" line: dot-unstuffed, without CRLF, valid
// until the next read from rr. It returns io.EOF after the terminating
// "." line, and errTruncated when the input ends before it.
func (rr *ReplyReader) ReadListLine() ([]byte, error) {
	line, err := rr.ReadLine()
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, errTruncated
	}
	if err != nil {
		return nil, err
	}
	if len(line) > 0 && line[0] == '.' {
		if len(line) == 1 {
			return nil, io.EOF
		}
		line = line[1:]
	}
	return line, nil
}

// Body returns a reader of the data of a multi-line reply (RETR, TOP)
// after its "+OK" line: dot-unstuffed, CRLF kept, ending with io.EOF after
// the terminating line (see DotReader). It is owned by rr and valid until
// the next call to Body; read it to the end (or Close it) before reading
// the next reply. Body lines may be of any length unless maxLine > 0
// limits them (CRLF included).
func (rr *ReplyReader) Body(maxLine int) *DotReader {
	rr.body.Reset(rr.br)
	rr.body.MaxLine = maxLine
	return &rr.body
}
