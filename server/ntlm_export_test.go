package server

import (
	"io"
	"time"
)

// SetNTLMRand makes r the source of NTLM server challenges until the
// returned function restores crypto/rand: a test can then offer one
// AUTHENTICATE_MESSAGE twice to the same challenge, as only a replay
// cache stops.
func SetNTLMRand(r io.Reader) (restore func()) {
	old := ntlmRand
	ntlmRand = r
	return func() { ntlmRand = old }
}

// NTLMNow is the clock the timestamp is checked against.
func NTLMNow() time.Time { return ntlmNow() }
