package static

// The scanners below read one command line. They return sub-slices of the
// line they are given and never copy or allocate: the slices are valid
// only as long as the caller's line buffer is.

// LexOptions are the variations the scanners honour.
type LexOptions struct {
	// Lenient accepts runs of SPACE and TAB as separators and ignores
	// them around the arguments (MS-STANXPOP3 §2.1.1); otherwise exactly
	// one SPACE separates (RFC 1939 §3).
	Lenient bool
	// MaxArg is the longest argument in octets; 0 leaves arguments
	// unchecked (MS-STANXPOP3 §2.1.2).
	MaxArg int
	// EightBit accepts octets from 0x80 up in the arguments that may
	// carry UTF-8 (RFC 6856: USER, PASS, APOP).
	EightBit bool
}

// CutLine strips the line end from line and checks its length and bytes.
// The line may end in CRLF or a bare LF (accepted, as nearly every server
// does, for clients typed by hand), or in nothing when the input ended.
// max counts the line with its CRLF; a line without one is counted as if
// it had it. The check of the length comes first, so a line of any size
// costs the same to refuse.
func CutLine(line []byte, max int, tooLong *Error) ([]byte, *Error) {
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
	for _, c := range line {
		switch {
		case c == '\r':
			return nil, ErrBareCR
		case c == '\t' || c >= 0x20 && c != 0x7f:
		default: // NUL, LF inside the line, other controls, DEL
			return nil, ErrBadByte
		}
	}
	return line, nil
}

// isSep reports whether c separates arguments under o.
func (o *LexOptions) isSep(c byte) bool { return c == ' ' || o.Lenient && c == '\t' }

// SplitKeyword returns the keyword at the start of line and the rest of
// the line after it, separator included. Under Lenient, leading SPACE and
// TAB are skipped.
func SplitKeyword(line []byte, o *LexOptions) (kw, rest []byte, err *Error) {
	if o.Lenient {
		for len(line) > 0 && o.isSep(line[0]) {
			line = line[1:]
		}
	}
	if len(line) == 0 {
		return nil, nil, ErrEmptyLine
	}
	i := 0
	for i < len(line) && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	return line[:i], line[i:], nil
}

// Fields splits rest (as SplitKeyword left it) into at most len(dst)
// arguments and returns how many it found. More arguments than that give
// ErrExtraArgs. Strictly, each argument follows exactly one SPACE and a
// doubled, leading or trailing separator or a TAB is ErrBadSeparator;
// under Lenient any run of SPACE and TAB separates and trailing ones are
// ignored. Every argument is checked against MaxArg and for octets
// outside printable ASCII (8-bit octets pass only when eightBit).
func (o *LexOptions) Fields(rest []byte, dst [][]byte, eightBit bool) (int, *Error) {
	n := 0
	for len(rest) > 0 {
		// rest starts with a separator.
		if !o.Lenient {
			if rest[0] != ' ' {
				return 0, ErrBadSeparator
			}
			rest = rest[1:]
			if len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' {
				return 0, ErrBadSeparator
			}
		} else {
			for len(rest) > 0 && o.isSep(rest[0]) {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				break
			}
		}
		i := 0
		for i < len(rest) && rest[i] != ' ' && rest[i] != '\t' {
			i++
		}
		if n == len(dst) {
			return 0, ErrExtraArgs
		}
		if err := o.checkArg(rest[:i], eightBit); err != nil {
			return 0, err
		}
		dst[n] = rest[:i]
		n++
		rest = rest[i:]
	}
	return n, nil
}

// checkArg checks the length and the octets of one argument.
func (o *LexOptions) checkArg(arg []byte, eightBit bool) *Error {
	if o.MaxArg > 0 && len(arg) > o.MaxArg {
		return ErrArgTooLong
	}
	for _, c := range arg {
		if c < 0x21 || c == 0x7f || c >= 0x80 && !eightBit {
			return ErrBadByte
		}
	}
	return nil
}

// Rest returns everything after the first separator (or run of them under
// Lenient), verbatim, for an argument that may hold spaces (PASS under
// MS-STANXPOP3 V0011).
func (o *LexOptions) Rest(rest []byte, eightBit bool) ([]byte, *Error) {
	if len(rest) == 0 {
		return nil, ErrMissingArg
	}
	if !o.isSep(rest[0]) {
		return nil, ErrBadSeparator
	}
	rest = rest[1:]
	if o.Lenient {
		for len(rest) > 0 && o.isSep(rest[0]) {
			rest = rest[1:]
		}
	}
	if len(rest) == 0 {
		return nil, ErrMissingArg
	}
	if o.MaxArg > 0 && len(rest) > o.MaxArg {
		return nil, ErrArgTooLong
	}
	for _, c := range rest {
		if c < 0x20 && c != '\t' || c == 0x7f || c >= 0x80 && !eightBit {
			return nil, ErrBadByte
		}
	}
	return rest, nil
}

// maxNumber is the largest number a message-number or line count may
// have: 2^31-1, so that it fits an int on every platform.
const maxNumber = 1<<31 - 1

// ParseNumber parses a decimal number of 1*DIGIT. Leading zeros are
// allowed; signs are not. bad is returned for anything but digits.
func ParseNumber(b []byte, bad *Error) (uint32, *Error) {
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
			// Keep reading so that "99999999999x" is ErrBadMsgNum,
			// not ErrNumberTooLarge.
			for _, c := range b {
				if c < '0' || c > '9' {
					return 0, bad
				}
			}
			return 0, ErrNumberTooLarge
		}
	}
	return uint32(v), nil
}

// ParseMsgNum parses a message-number: a decimal number from 1
// (RFC 1939 §5).
func ParseMsgNum(b []byte) (uint32, *Error) {
	n, err := ParseNumber(b, ErrBadMsgNum)
	if err == nil && n == 0 {
		return 0, ErrBadMsgNum
	}
	return n, err
}

// ValidDigest reports whether b is an MD5 digest in 32 hexadecimal digits
// (RFC 1939 §7 APOP). Upper-case digits are accepted.
func ValidDigest(b []byte) bool {
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

// ValidMechanism reports whether b is a SASL mechanism name: 1 to 20
// characters of A–Z, 0–9, "-" and "_" (RFC 4422 §3.1), in either case.
func ValidMechanism(b []byte) bool {
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

// ValidBase64 reports whether b is base64 (RFC 4648 §4) as RFC 5034 §4
// demands: only the alphabet, and "=" padding only at the end, at most
// two of it, with a length that is a multiple of 4 when padded. The empty
// string is valid (an empty response).
func ValidBase64(b []byte) bool {
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
	return pad <= 2 && (pad == 0 || len(b)%4 == 0)
}

// None checks that rest holds no argument.
func (o *LexOptions) None(rest []byte) *Error {
	_, err := o.Fields(rest, nil, false)
	return err
}

// One returns the single argument in rest; none is ErrMissingArg.
func (o *LexOptions) One(rest []byte, eightBit bool) ([]byte, *Error) {
	var a [1][]byte
	n, err := o.Fields(rest, a[:], eightBit)
	if err == nil && n == 0 {
		err = ErrMissingArg
	}
	return a[0], err
}

// Opt returns the argument in rest, or nil when there is none.
func (o *LexOptions) Opt(rest []byte) ([]byte, *Error) {
	var a [1][]byte
	_, err := o.Fields(rest, a[:], false)
	return a[0], err
}

// Two returns the two arguments in rest; fewer is ErrMissingArg. When
// optional is true the second may be absent (and is then nil).
func (o *LexOptions) Two(rest []byte, eightBit, optional bool) (a, b []byte, err *Error) {
	var f [2][]byte
	n, err := o.Fields(rest, f[:], eightBit)
	if err == nil && (n == 0 || n == 1 && !optional) {
		err = ErrMissingArg
	}
	return f[0], f[1], err
}

// Fold returns c in lower case if it is an ASCII letter.
func Fold(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
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
	return len(b) == 1 && b[0] == '=' || len(b) > 0 && ValidBase64(b)
}
