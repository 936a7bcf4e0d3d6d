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

// OnGSSAPIRefusal makes f hear why each GSSAPI exchange is refused, until
// the returned function restores the previous hook. Set it before the
// server starts.
func OnGSSAPIRefusal(f func(why string)) (restore func()) {
	old := gssRefused
	gssRefused = f
	return func() { gssRefused = old }
}
