package pop3

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// Writer writes POP3 replies to an io.Writer. Status lines and listing
// lines never exceed 512 octets with their CRLF: longer text is cut at a
// UTF-8 boundary, and CR, LF and other control characters in text are
// replaced by spaces so that text can never forge a line. Message bodies
// written through Message are not cut; they are dot-stuffed.
//
// The first write error is kept and every later write is skipped; Err
// reports it. A Writer does not buffer: wrap the connection in a
// bufio.Writer and flush after each batch of replies.
type Writer struct {
	w     io.Writer
	err   error
	n     int // lines written since Reset
	cont  bool
	terse bool
	buf   [MaxReplyOctets]byte
	dot   DotWriter
	// trace, when set, gets every reply's status line (Conn.SetTrace).
	trace func(line []byte)
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Reset directs the Writer to w and clears its error and counters.
func (w *Writer) Reset(dst io.Writer) {
	w.w, w.err, w.n, w.cont = dst, nil, 0, false
}

// SetTerse makes Err omit the informative text (InformativeErrors off).
func (w *Writer) SetTerse(terse bool) { w.terse = terse }

// Err returns the first error of the underlying writer.
func (w *Writer) Err() error { return w.err }

// lines returns the number of lines written since the last markCommand:
// the session's bookkeeping (has the reply begun?), not the server's.
func (w *Writer) lines() int { return w.n }

// continued reports whether a SASL challenge was written since the last
// markCommand.
func (w *Writer) continued() bool { return w.cont }

// markCommand starts the count of lines for a new command.
func (w *Writer) markCommand() { w.n, w.cont = 0, false }

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	w.n++
	_, w.err = w.w.Write(b)
}

// appendText appends text to b, replacing control characters by spaces and
// stopping so that len(b)+len(text)+2 stays within MaxReplyOctets, on a UTF-8
// boundary.
func appendText[T string | []byte](b []byte, text T) []byte {
	room := max(MaxReplyOctets-2-len(b), 0)
	if len(text) > room {
		text = text[:room]
		// Step back to the start of a rune so a cut never leaves a
		// partial UTF-8 sequence.
		for i := len(text) - 1; i >= 0 && i >= len(text)-utf8.UTFMax; i-- {
			if c := text[i]; utf8.RuneStart(c) {
				if i+runeLen(c) > len(text) {
					text = text[:i]
				}
				break
			}
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func (w *Writer) status(b []byte) {
	if w.trace != nil && w.n == 0 {
		w.trace(b)
	}
	b = append(b, '\r', '\n')
	w.write(b)
}

// OK writes "+OK text" (or "+OK" when text is empty).
func (w *Writer) OK(text string) { okLine(w, text) }

// OKBytes is OK for a byte slice.
func (w *Writer) OKBytes(text []byte) { okLine(w, text) }

func okLine[T string | []byte](w *Writer, text T) {
	b := append(w.buf[:0], "+OK"...)
	if len(text) > 0 {
		b = appendText(append(b, ' '), text)
	}
	w.status(b)
}

// Error writes "-ERR [code] text". With SetTerse(true) the text is left
// out; the code stays.
func (w *Writer) Error(e *Error) {
	b := append(w.buf[:0], "-ERR"...)
	if e.Code != "" {
		b = append(b, " ["...)
		b = appendText(b, e.Code)
		b = append(b, ']')
	}
	if !w.terse && e.Text != "" {
		b = appendText(append(b, ' '), e.Text)
	}
	w.status(b)
}

// Stat writes the STAT reply "+OK count octets" with nothing after the
// size (MS-STANXPOP3 V0004).
func (w *Writer) Stat(count int, octets int64) {
	b := append(w.buf[:0], "+OK "...)
	b = strconv.AppendInt(b, int64(count), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, octets, 10)
	w.status(b)
}

// totals writes "+OK maildrop has n messages (octets octets)" ("1
// message"), the reply of a login and of RSET, without allocating.
func (w *Writer) totals(count int, octets int64) {
	b := append(w.buf[:0], "+OK maildrop has "...)
	b = strconv.AppendInt(b, int64(count), 10)
	b = append(b, messages(count)...)
	b = append(b, " ("...)
	b = strconv.AppendInt(b, octets, 10)
	b = append(b, " octets)"...)
	w.status(b)
}

// messages returns " message" after 1 and " messages" after any other
// count, so that replies read right.
func messages(n int) string {
	if n == 1 {
		return " message"
	}
	return " messages"
}

// ScanListing writes "+OK n octets" for LIST n, or the line "n octets" of a
// multi-line LIST when inList is true, with nothing after the size
// (MS-STANXPOP3 V0005).
func (w *Writer) ScanListing(inList bool, n int, octets int64) {
	b := w.buf[:0]
	if !inList {
		b = append(b, "+OK "...)
	}
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, octets, 10)
	w.status(b)
}

// ValidUID reports whether uid is a valid unique-id: 1 to MaxUIDOctets characters
// in the range 0x21 to 0x7E (RFC 1939 §7).
func ValidUID[T string | []byte](uid T) bool {
	if len(uid) == 0 || len(uid) > MaxUIDOctets {
		return false
	}
	for i := 0; i < len(uid); i++ {
		if uid[i] < 0x21 || uid[i] > 0x7e {
			return false
		}
	}
	return true
}

// errBadUID is returned by UniqueID for an id that RFC 1939 §7 forbids.
var errBadUID = &Error{Code: CodeSysPerm, Text: "message has an invalid unique-id"}

// UniqueID writes "+OK n uid" for UIDL n, or the line "n uid" of a
// multi-line UIDL when inList is true. It writes nothing and returns an
// error when uid is not a valid unique-id.
func (w *Writer) UniqueID(inList bool, n int, uid string) error {
	if !ValidUID(uid) {
		return errBadUID
	}
	b := w.buf[:0]
	if !inList {
		b = append(b, "+OK "...)
	}
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, ' ')
	b = append(b, uid...)
	w.status(b)
	return nil
}

// Begin writes the "+OK text" line that opens a multi-line reply.
func (w *Writer) Begin(text string) { w.OK(text) }

// Line writes one line of a multi-line listing (CAPA, LANG, AUTH
// mechanisms): cut to 512 octets, control characters replaced, and
// dot-stuffed.
func (w *Writer) Line(text string) {
	b := w.buf[:0]
	if len(text) > 0 && text[0] == '.' {
		b = append(b, '.')
	}
	w.status(appendText(b, text))
}

// Words writes a listing line of a tag followed by words separated by
// single spaces (a CAPA line such as "SASL PLAIN SCRAM-SHA-256"), cut to
// 512 octets.
func (w *Writer) Words(tag string, words ...string) {
	b := appendText(w.buf[:0], tag)
	for _, word := range words {
		if len(b) >= MaxReplyOctets-3 {
			break
		}
		b = appendText(append(b, ' '), word)
	}
	w.status(b)
}

// End writes the ".\r\n" that closes a multi-line reply.
func (w *Writer) End() {
	if w.err != nil {
		return
	}
	w.n++
	_, w.err = io.WriteString(w.w, ".\r\n")
}

// Message starts a message body after Begin: write the stored message to
// the returned DotWriter and Close it to end the reply. The DotWriter is
// owned by w and valid until the next call to Message.
func (w *Writer) Message() *DotWriter {
	w.n++
	w.dot.Reset(w.w)
	return &w.dot
}

// Challenge writes a SASL continuation "+ " followed by the base64 text
// (RFC 5034 §4). Challenges are not cut: RFC 5034 lets them be of any
// length. The session stays in the SASL exchange.
func (w *Writer) Challenge(base64 []byte) {
	if w.err != nil {
		return
	}
	w.n++
	w.cont = true
	if w.trace != nil {
		w.trace([]byte("+ (challenge)"))
	}
	b := append(w.buf[:0], '+', ' ')
	if len(base64)+4 <= MaxReplyOctets {
		b = append(b, base64...)
		b = append(b, '\r', '\n')
		_, w.err = w.w.Write(b)
		return
	}
	if _, w.err = w.w.Write(b); w.err == nil {
		if _, w.err = w.w.Write(base64); w.err == nil {
			_, w.err = io.WriteString(w.w, "\r\n")
		}
	}
}

// runeLen returns the length of the UTF-8 sequence that c starts.
func runeLen(c byte) int {
	switch {
	case c >= 0xf0:
		return 4
	case c >= 0xe0:
		return 3
	case c >= 0xc0:
		return 2
	}
	return 1
}
