package pop3

// CutLine is cutLine, for the external tests that declare clauses.
var CutLine = cutLine
