package pop3

import "encoding/binary"

// The scanners below read one command line. They return sub-slices of the
// line they are given and never copy or allocate: the slices are valid
// only as long as the caller's line buffer is.

// lexOptions are the variations the scanners honour.
type lexOptions struct {
	// Lenient accepts runs of SPACE and TAB as separators and ignores
	// them around the arguments (MS-STANXPOP3 §2.1.1); otherwise exactly
	// one SPACE separates (RFC 1939 §3).
	Lenient bool
	// Runs accepts a run of SPACEs where one separates, and SPACEs at the
	// end of the line, but no TAB (SpaceRuns, RFC 1122 §1.2.2).
	Runs bool
	// IgnoreExtra checks the arguments of a command that takes none for
	// separators and octets, then drops them instead of refusing them
	// (IgnoreExtraArgs); the generated lexer sets it per command.
	IgnoreExtra bool
	// MaxArg is the longest argument in octets; 0 leaves arguments
	// unchecked (MS-STANXPOP3 §2.1.2).
	MaxArg int
	// EightBit accepts octets from 0x80 up in the arguments that may
	// carry UTF-8 (RFC 6856: USER, PASS, APOP).
	EightBit bool
}

// cutLine strips the line end from line and checks its length. The line
// may end in CRLF or a bare LF (accepted, as nearly every server does, for
// clients typed by hand), or in nothing when the input ended. max counts
// the line with its CRLF; a line without one is counted as if it had it.
// cutLine looks at no more than the last two octets, so a line of any size
// costs the same to refuse. The octets are checked as the arguments are
// read (or by unknownLine), so that each is looked at once.
func cutLine(line []byte, max int, tooLong *Error) ([]byte, *Error) {
	n := len(line)
	switch {
	case n >= 2 && line[n-2] == '\r' && line[n-1] == '\n':
		line = line[:n-2]
	case n >= 1 && line[n-1] == '\n':
		line = line[:n-1]
	}
	if len(line)+2 > max {
		return nil, tooLong
	}
	return line, nil
}

// startsWithKeyword reports whether line starts with keyword (given in
// lower case) in any case, after any SPACE or TAB, and a SPACE, a TAB or
// the end of the line follows it: the line is that command's, whatever
// its arguments. It never allocates.
func startsWithKeyword(line []byte, keyword string) bool {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if len(line)-i < len(keyword) {
		return false
	}
	for j := 0; j < len(keyword); j++ {
		if line[i+j]|0x20 != keyword[j] {
			return false
		}
	}
	rest := line[i+len(keyword):]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t'
}

// badOctet returns the error for an octet that may not appear where it
// does: errBareCR for CR (a line's CR must be followed by LF), else
// errBadByte.
func badOctet(c byte) *Error {
	if c == '\r' {
		return errBareCR
	}
	return errBadByte
}

// unknownLine returns the error for a line whose keyword matched no command:
// the octet error if the line holds a control character, LF, CR or DEL,
// else errUnknownCommand.
func unknownLine(line []byte) *Error {
	for _, c := range line {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return badOctet(c)
		}
	}
	return errUnknownCommand
}

// TrimLeft skips the SPACE and TAB before the keyword under Lenient.
func (o *lexOptions) TrimLeft(line []byte) []byte {
	if o.Lenient {
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			line = line[1:]
		}
	}
	return line
}

// packKeyword returns the keyword at the start of line packed into a word, one
// octet per byte, with every octet ORed with 0x20 (which lower-cases
// letters), and its length, 3 or 4; or 0, 0 when the line does not start
// with a word of 3 or 4 octets. A folded key matches a keyword's key only
// for that keyword's letters in either case; octets that are not letters
// (the 8 of UTF8) must still be compared exactly.
func packKeyword(line []byte) (key uint32, n int) {
	if len(line) >= 4 && !isSep[line[3]] && (len(line) == 4 || isSep[line[4]]) {
		return binary.BigEndian.Uint32(line) | 0x20202020, 4
	}
	if len(line) >= 3 && (len(line) == 3 || isSep[line[3]]) {
		return (uint32(line[0])<<16 | uint32(line[1])<<8 | uint32(line[2])) | 0x202020, 3
	}
	return 0, 0
}

// isSep marks the octets that may end a keyword: SPACE and TAB (TAB is
// refused later where separators are strict). A table indexed by a byte
// needs no bounds check, which keeps packKeyword small enough to inline.
var isSep = [256]bool{' ': true, '\t': true}

// isSep reports whether c separates arguments under o.
func (o *lexOptions) isSep(c byte) bool { return c == ' ' || o.Lenient && c == '\t' }

// Fields splits rest (what follows the keyword) into at most len(dst)
// arguments and returns how many it found. More arguments than that give
// errExtraArgs, unless IgnoreExtra drops them. Strictly, each argument
// follows exactly one SPACE and a doubled, leading or trailing separator
// or a TAB is errBadSeparator; under Runs any run of SPACE separates and
// trailing SPACEs are ignored; under Lenient the same holds for runs of
// SPACE and TAB. Every argument is checked against MaxArg and for octets
// outside printable ASCII (8-bit octets pass only when eightBit).
func (o *lexOptions) Fields(rest []byte, dst [][]byte, eightBit bool) (int, *Error) {
	n, i := 0, 0
	for i < len(rest) {
		// rest[i] starts a separator.
		if o.Lenient {
			for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
				i++
			}
			if i == len(rest) {
				break
			}
		} else if o.Runs {
			if rest[i] != ' ' {
				return 0, errBadSeparator
			}
			for i < len(rest) && rest[i] == ' ' {
				i++
			}
			if i == len(rest) {
				break
			}
			if rest[i] == '\t' {
				return 0, errBadSeparator
			}
		} else {
			if rest[i] != ' ' {
				return 0, errBadSeparator
			}
			i++
			if i == len(rest) || rest[i] == ' ' || rest[i] == '\t' {
				return 0, errBadSeparator
			}
		}
		start := i
		for i < len(rest) {
			c := rest[i]
			if c-0x21 < 0x5e { // VCHAR, %x21-7E: the common case first
				i++
				continue
			}
			if c == ' ' || c == '\t' {
				break
			}
			if c < 0x80 || !eightBit {
				return 0, badOctet(c)
			}
			i++
		}
		if n == len(dst) && !o.IgnoreExtra {
			return 0, errExtraArgs
		}
		if o.MaxArg > 0 && i-start > o.MaxArg {
			return 0, errArgTooLong
		}
		if n < len(dst) {
			dst[n] = rest[start:i]
			n++
		}
	}
	return n, nil
}

// Rest returns everything after the first separator (or run of them under
// Lenient), verbatim, for an argument that may hold spaces (PASS under
// MS-STANXPOP3 V0011).
func (o *lexOptions) Rest(rest []byte, eightBit bool) ([]byte, *Error) {
	// The common case: one SPACE, then printable ASCII.
	if len(rest) >= 2 && rest[0] == ' ' && !isSep[rest[1]] && (o.MaxArg == 0 || len(rest)-1 <= o.MaxArg) && inRange(rest[1:], 0x20, 0x7e) {
		return rest[1:], nil
	}
	return o.rest(rest, eightBit)
}

func (o *lexOptions) rest(rest []byte, eightBit bool) ([]byte, *Error) {
	if len(rest) == 0 {
		return nil, errMissingArg
	}
	if !o.isSep(rest[0]) {
		return nil, errBadSeparator
	}
	rest = rest[1:]
	if o.Lenient {
		for len(rest) > 0 && o.isSep(rest[0]) {
			rest = rest[1:]
		}
	}
	if len(rest) == 0 {
		return nil, errMissingArg
	}
	if o.MaxArg > 0 && len(rest) > o.MaxArg {
		return nil, errArgTooLong
	}
	if inRange(rest, 0x20, 0x7e) {
		return rest, nil
	}
	for _, c := range rest {
		if c < 0x20 && c != '\t' || c == 0x7f || c >= 0x80 && !eightBit {
			return nil, badOctet(c)
		}
	}
	return rest, nil
}

// maxNumber is the largest number a message-number or line count may
// have: 2^31-1, so that it fits an int on every platform.
const maxNumber = 1<<31 - 1

// parseNumber parses a decimal number of 1*DIGIT. Leading zeros are
// allowed; signs are not. bad is returned for anything but digits.
func parseNumber(b []byte, bad *Error) (uint32, *Error) {
	if len(b) == 0 {
		return 0, bad
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, bad
		}
		v = v*10 + uint64(c-'0')
		if v > maxNumber {
			// Keep reading so that "99999999999x" is errBadMsgNum,
			// not errNumberTooLarge.
			for _, c := range b {
				if c < '0' || c > '9' {
					return 0, bad
				}
			}
			return 0, errNumberTooLarge
		}
	}
	return uint32(v), nil
}

// maxCount is where a line count saturates: the largest Command.Count.
const maxCount = 1<<32 - 1

// parseCount parses TOP's line count: 1*DIGIT of any length (the command
// line bounds it), leading zeros allowed. A count above maxCount saturates
// there: RFC 1939 §7 sends the entire message for a count beyond the body,
// and only a body of more than 2^32-1 lines (8 GiB of empty lines) could
// tell the saturated count from the one sent.
func parseCount(b []byte) (uint32, *Error) {
	if len(b) == 0 {
		return 0, errBadCount
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errBadCount
		}
		if v = v*10 + uint64(c-'0'); v > maxCount {
			v = maxCount + 1 // stays above maxCount, never overflows
		}
	}
	return uint32(min(v, maxCount)), nil
}

// parseMsgNum parses a message-number: a decimal number from 1
// (RFC 1939 §5).
func parseMsgNum(b []byte) (uint32, *Error) {
	n, err := parseNumber(b, errBadMsgNum)
	if err == nil && n == 0 {
		return 0, errBadMsgNum
	}
	return n, err
}

// validDigest reports whether b is an MD5 digest in 32 hexadecimal digits
// (RFC 1939 §7 APOP). Upper-case digits are accepted.
func validDigest(b []byte) bool {
	if len(b) != 32 {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validMechanism reports whether b is a SASL mechanism name: 1 to 20
// characters of A–Z, 0–9, "-" and "_" (RFC 4422 §3.1), in either case.
func validMechanism(b []byte) bool {
	if len(b) == 0 || len(b) > 20 {
		return false
	}
	for _, c := range b {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validBase64 reports whether b is base64 (RFC 4648 §4) as RFC 5034 §4
// demands: only the alphabet, "=" padding only at the end and at most two
// of it, and a length that is a multiple of 4 (RFC 4648 §3.2: padding is
// required). The empty string is valid (an empty response).
func validBase64(b []byte) bool {
	pad := 0
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
			if pad > 0 {
				return false
			}
		case c == '=':
			if i == 0 {
				return false
			}
			pad++
		default:
			return false
		}
	}
	return pad <= 2 && len(b)%4 == 0
}

// None checks that rest holds no argument.
func (o *lexOptions) None(rest []byte) *Error {
	if len(rest) == 0 {
		return nil
	}
	_, err := o.Fields(rest, nil, false)
	return err
}

// Single is the fast path of One and Opt: rest is one SPACE and one
// argument of printable ASCII, the form nearly every client sends. ok is
// false when rest is anything else, and Fields must decide.
func (o *lexOptions) Single(rest []byte) (arg []byte, ok bool) {
	if len(rest) < 2 || rest[0] != ' ' || o.MaxArg > 0 && len(rest)-1 > o.MaxArg {
		return nil, false
	}
	if arg = rest[1:]; len(arg) >= 8 {
		return arg, inRange(arg, 0x21, 0x7e)
	}
	for _, c := range arg {
		if c-0x21 >= 0x5e {
			return nil, false
		}
	}
	return arg, true
}

// pair is the fast path of Two: one SPACE, an argument, one SPACE, an
// argument, all printable ASCII.
func (o *lexOptions) pair(rest []byte) (a, b []byte, ok bool) {
	if len(rest) < 4 || rest[0] != ' ' {
		return nil, nil, false
	}
	i := 1
	for i < len(rest) && rest[i]-0x21 < 0x5e {
		i++
	}
	if i == 1 || i >= len(rest)-1 || rest[i] != ' ' {
		return nil, nil, false
	}
	j := i + 1
	for j < len(rest) && rest[j]-0x21 < 0x5e {
		j++
	}
	if j != len(rest) {
		return nil, nil, false
	}
	a, b = rest[1:i], rest[i+1:]
	if o.MaxArg > 0 && (len(a) > o.MaxArg || len(b) > o.MaxArg) {
		return nil, nil, false
	}
	return a, b, true
}

// Word-at-a-time range checks ("Bit Twiddling Hacks", hasless and
// hasmore): a byte of x is below n, or above m, exactly when the high bit
// of its lane in the result is set. Valid for n <= 128 and m <= 127.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// inRange reports whether every octet of b is within lo..hi, eight at a
// time.
//
//go:noinline
func inRange(b []byte, lo, hi byte) bool {
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-ones*uint64(lo))&^x&highs != 0 || (x+ones*uint64(127-hi)|x)&highs != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < lo || c > hi {
			return false
		}
	}
	return true
}

// One returns the single argument in rest; none is errMissingArg.
func (o *lexOptions) One(rest []byte, eightBit bool) ([]byte, *Error) {
	if a, ok := o.Single(rest); ok {
		return a, nil
	}
	return o.one(rest, eightBit)
}

func (o *lexOptions) one(rest []byte, eightBit bool) ([]byte, *Error) {
	var a [1][]byte
	n, err := o.Fields(rest, a[:], eightBit)
	if err == nil && n == 0 {
		err = errMissingArg
	}
	return a[0], err
}

// Opt returns the argument in rest, or nil when there is none.
func (o *lexOptions) Opt(rest []byte) ([]byte, *Error) {
	if a, ok := o.Single(rest); ok || len(rest) == 0 {
		return a, nil
	}
	return o.opt(rest)
}

func (o *lexOptions) opt(rest []byte) ([]byte, *Error) {
	var a [1][]byte
	_, err := o.Fields(rest, a[:], false)
	return a[0], err
}

// Two returns the two arguments in rest; fewer is errMissingArg. When
// optional is true the second may be absent (and is then nil).
func (o *lexOptions) Two(rest []byte, eightBit, optional bool) (a, b []byte, err *Error) {
	if a, b, ok := o.pair(rest); ok {
		return a, b, nil
	}
	var f [2][]byte
	n, err := o.Fields(rest, f[:], eightBit)
	if err == nil && (n == 0 || n == 1 && !optional) {
		err = errMissingArg
	}
	return f[0], f[1], err
}

// isBlank reports whether b holds nothing but SPACE and TAB.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// validInitial reports whether b is an AUTH initial response: "=" for an
// empty one, or non-empty base64 (RFC 5034 §4).
func validInitial(b []byte) bool {
	return len(b) == 1 && b[0] == '=' || len(b) > 0 && validBase64(b)
}

// msgNumFast is the fast path of a lone message-number, the form every
// client sends: one SPACE and 1 to 9 digits, not 0 (nine digits cannot
// overflow). ok is false for anything else, which the general path reads.
func msgNumFast(rest []byte) (n uint32, ok bool) {
	if len(rest) < 2 || len(rest) > 10 || rest[0] != ' ' {
		return 0, false
	}
	for _, d := range rest[1:] {
		d -= '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint32(d)
	}
	return n, n != 0
}

// twoNumFast is the fast path of TOP's arguments: " msg count", each 1 to
// 9 digits, msg not 0.
func twoNumFast(rest []byte) (msg, count uint32, ok bool) {
	if len(rest) < 4 || len(rest) > 20 || rest[0] != ' ' {
		return 0, 0, false
	}
	i := 1
	for ; i < len(rest) && rest[i] != ' '; i++ {
		d := rest[i] - '0'
		if d > 9 || i > 9 {
			return 0, 0, false
		}
		msg = msg*10 + uint32(d)
	}
	if msg == 0 || i >= len(rest)-1 || len(rest)-i-1 > 9 {
		return 0, 0, false
	}
	for _, d := range rest[i+1:] {
		d -= '0'
		if d > 9 {
			return 0, 0, false
		}
		count = count*10 + uint32(d)
	}
	return msg, count, true
}
