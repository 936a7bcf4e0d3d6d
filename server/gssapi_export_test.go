package server

import "time"

// SetGSSAPIMaxSkew sets the clock skew the acceptors built from now on
// allow, and returns the previous value: a test of expired tickets and
// stale authenticators need not wait five minutes.
func SetGSSAPIMaxSkew(d time.Duration) time.Duration {
	old := gssapiMaxSkew
	gssapiMaxSkew = d
	return old
}
