package pop3

// For the external tests that declare clauses: the runtime's own
// functions and replies they hold to the clauses.
var (
	CutLine     = cutLine
	ValidBase64 = validBase64

	ErrBadMsgNum      = errBadMsgNum
	ErrLineTooLong    = errLineTooLong
	ErrNumberTooLarge = errNumberTooLarge
)
