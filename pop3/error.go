package pop3

// Error is a negative reply: "-ERR [Code] Text". Errors that the core sends
// are package-level values, so reporting one never allocates.
type Error struct {
	// Code is an extended response code (RFC 2449 §8) without brackets,
	// or empty.
	Code string
	// Text is informative text for the client (MS-STANXPOP3 V0001).
	Text string
}

// Error returns the reply line without its CRLF.
func (e *Error) Error() string {
	if e.Code == "" {
		return "-ERR " + e.Text
	}
	return "-ERR [" + e.Code + "] " + e.Text
}

// NewError returns an Error with the given response code and text.
func NewError(code, text string) *Error { return &Error{Code: code, Text: text} }
