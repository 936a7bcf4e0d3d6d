package static

// This file stands in for the declarations that the generator derives from
// the spec table, so that this package compiles and tests on its own. The
// generator does not copy it; it checks instead that the table declares
// every name used here (gen: checkStubNames).

// MaxReplyOctets is the longest reply line, CRLF included.
const MaxReplyOctets = 512

// The lexical errors the scanners return.
var (
	ErrEmptyLine      = &Error{Text: "empty command line"}
	ErrLineTooLong    = &Error{Text: "command line too long"}
	ErrArgTooLong     = &Error{Text: "argument too long"}
	ErrBareCR         = &Error{Text: "CR not followed by LF in command line"}
	ErrBadByte        = &Error{Text: "control character or 8-bit byte in command line"}
	ErrUnknownCommand = &Error{Text: "unknown command"}
	ErrBadSeparator   = &Error{Text: "separate keyword and arguments by a single space"}
	ErrMissingArg     = &Error{Text: "missing argument"}
	ErrExtraArgs      = &Error{Text: "too many arguments"}
	ErrBadMsgNum      = &Error{Text: "message number must be a decimal number from 1"}
	ErrBadCount       = &Error{Text: "line count must be a non-negative decimal number"}
	ErrNumberTooLarge = &Error{Text: "number too large"}
	ErrBadDigest      = &Error{Text: "APOP digest must be 32 hexadecimal digits"}
	ErrBadBase64      = &Error{Text: "invalid base64 in SASL response"}
	ErrSASLTooLong    = &Error{Text: "SASL response too long"}
)

// ErrBadMechanism stands in for the table's error of that name.
var ErrBadMechanism = &Error{Text: "SASL mechanism name must be 1 to 20 letters, digits, - or _"}
