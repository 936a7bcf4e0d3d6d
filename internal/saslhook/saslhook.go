// Package saslhook holds the hooks by which tests fix what the SASL
// mechanisms (server/saslmech) take from the world — where NTLM's server
// challenges come from, the clock skew a GSSAPI acceptor allows — and
// hear why each GSSAPI exchange was refused. The tests that set them run
// a whole pop3d (package server's), which saslmech's own test files could
// not reach; internal/faultinject does the same for the Maildir store.
// Nothing but tests sets them.
package saslhook

import (
	"io"
	"sync/atomic"
	"time"
)

var (
	ntlmRand   atomic.Pointer[io.Reader]
	gssSkew    atomic.Pointer[time.Duration]
	gssRefused atomic.Pointer[func(why string)]
)

// restorer returns the function that puts old back into p.
func restorer[T any](p *atomic.Pointer[T], old *T) func() {
	return func() { p.Store(old) }
}

// hooked is the value a test set in p, else def.
func hooked[T any](p *atomic.Pointer[T], def T) T {
	if v := p.Load(); v != nil {
		return *v
	}
	return def
}

// SetNTLMRand makes r the source of NTLM server challenges until the
// returned function restores crypto/rand: a test can then offer one
// AUTHENTICATE_MESSAGE twice to the same challenge, as only a replay
// cache stops.
func SetNTLMRand(r io.Reader) (restore func()) {
	return restorer(&ntlmRand, ntlmRand.Swap(&r))
}

// NTLMRand is the source a test set, else def.
func NTLMRand(def io.Reader) io.Reader { return hooked(&ntlmRand, def) }

// SetGSSAPIMaxSkew sets the clock skew the acceptors built from now on
// allow, until the returned function restores the default: a test of
// expired tickets and stale authenticators need not wait five minutes.
func SetGSSAPIMaxSkew(d time.Duration) (restore func()) {
	return restorer(&gssSkew, gssSkew.Swap(&d))
}

// GSSAPIMaxSkew is the skew a test set, else def.
func GSSAPIMaxSkew(def time.Duration) time.Duration { return hooked(&gssSkew, def) }

// OnGSSAPIRefusal makes f hear why each GSSAPI exchange is refused, until
// the returned function restores the previous hook. Set it before the
// server starts.
func OnGSSAPIRefusal(f func(why string)) (restore func()) {
	return restorer(&gssRefused, gssRefused.Swap(&f))
}

// GSSAPIRefused tells the hook, if a test set one, why an exchange was
// refused.
func GSSAPIRefused(why string) {
	if f := hooked(&gssRefused, nil); f != nil {
		f(why)
	}
}
