// Package store holds the interfaces between pop3d's sessions and the
// stores that keep maildrops — the Maildir store (server/maildir) and
// PostgreSQL (server/pgstore) — and the errors a store returns that a
// session turns into replies. A store's maildrop is the runtime's
// pop3.Maildrop, from the store to the session. It depends on the
// runtime and the standard library only, so a store imports it and
// nothing of the server.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
)

// Store is where maildrops live: pop3d opens one at each login, and the
// core serves the session from it. Maildir (maildir.MailRoot) is one store;
// PostgreSQL (package server/pgstore) another. A Store is safe for
// concurrent use.
type Store interface {
	// Open opens user's maildrop as opts say: locked against every other
	// session (Exclusive, RFC 1939's exclusive-access lock, ErrInUse while
	// another holds it) or as a snapshot (Exchange, MS-STANXPOP3 §2.1.3).
	// It fails with ErrBusy when it could not get in in time, with
	// ErrNoMaildrop when the maildrop cannot be opened and trying again
	// will not help (RFC 3206 [SYS/PERM]), with other errors otherwise.
	//
	// The maildrop's list of messages is fixed at Open (the session's
	// snapshot). Its Size states exact sizes or storage sizes as
	// opts.ExactSizes says, and it is a pop3.ExactSizer, so that RETR
	// states the exact size either way. Its Open fails with ErrGone for a
	// message another session removed since (snapshot semantics); its
	// Remove returns a *RemoveError when some marked messages stay.
	Open(ctx context.Context, user string, opts OpenOptions) (pop3.Maildrop, error)
}

// OpenOptions say how a Store opens a maildrop.
type OpenOptions struct {
	// Exclusive takes the exclusive-access lock; without it the session
	// works on a snapshot.
	Exclusive bool
	// ExactSizes: Size states a message's exact size, octets in CRLF form
	// (MS-STANXPOP3 §2.1.4, §2.1.5); otherwise what it takes in the
	// store.
	ExactSizes bool
	// DovecotUIDs asks for unique-ids in Dovecot's format (%08x%08x of
	// the UID and UIDVALIDITY, UIDLFormat=dovecot), kept in step with
	// Dovecot where the store is shared with it (Maildir's dovecot-uidlist).
	DovecotUIDs bool
	// Log receives what the store skipped or repaired; nil discards it.
	Log *slog.Logger
}

// RemoveError is what a maildrop's Remove returns when some of the
// marked messages could not be removed: the UPDATE state is not atomic
// (MS-STANXPOP3 V0006), but no unmarked message is ever touched.
type RemoveError struct {
	Failed int   // how many of the marked messages are still there
	Err    error // why the first of them could not be removed
}

func (e *RemoveError) Error() string {
	return fmt.Sprintf("%d marked messages not removed: %v", e.Failed, e.Err)
}

func (e *RemoveError) Unwrap() error { return e.Err }

// Deliverer is a Store that takes new mail (LMTP delivery, import).
type Deliverer interface {
	// Deliver adds message r to user's maildrop. The message is whole in
	// the store when Deliver returns nil, and absent when it returns an
	// error: a delivery is never half done.
	Deliver(ctx context.Context, user string, r io.Reader) error
}

// UsageStore is a Store that can say how much a user's maildrop holds
// and remember that a quota warning was sent (LMTP's quotas).
type UsageStore interface {
	// Usage returns the octets (storage size) and messages user's
	// maildrop holds; a user without one holds nothing.
	Usage(ctx context.Context, user string) (octets int64, messages int, err error)
	// Warned reports whether a warning was sent since the maildrop last
	// was below the threshold; SetWarned records it.
	Warned(user string) bool
	SetWarned(user string, warned bool) error
}

// SharedLimits is a Store that counts logins across every front end on
// it (PostgreSQL): LOGIN-DELAY and the per-user session limit then hold
// for the site, not for one process.
type SharedLimits interface {
	// LoginAllowed records a login of user now and reports whether it
	// keeps delay since the last one.
	LoginAllowed(ctx context.Context, user string, delay time.Duration) (bool, error)
	// BeginSession records a session of user unless max (> 0) are open,
	// ErrTooManySessions then; release ends it.
	BeginSession(ctx context.Context, user string, max int) (release func(), err error)
}

// ErrTooManySessions: the user has as many sessions as the limit allows.
var ErrTooManySessions = errors.New("too many sessions for this user")

// ErrNoMaildrop: the user's maildrop cannot be opened, and trying again
// will not help.
var ErrNoMaildrop = errors.New("maildrop cannot be opened")

// Errors of the maildrop that sessions turn into replies.
var (
	// ErrInUse: another session holds the exclusive lock (RFC 1939 §4).
	ErrInUse = errors.New("maildrop is locked by another session")
	// ErrGone: the message was removed after the session's snapshot
	// (MS-STANXPOP3 C0004).
	ErrGone = errors.New("message was removed by another session")
	// ErrBusy: the store stayed locked by another process for longer
	// than the lock wait.
	ErrBusy = errors.New("maildrop is busy: its UID list stayed locked")
)

// DovecotUID is the unique-id Dovecot gives a message with its default
// pop3_uidl_format, %08Xu%08Xv, as Dovecot writes it: the UID and the
// UIDVALIDITY in eight lower-case hex digits each. A store that numbers
// its messages as Dovecot does gives byte for byte the same ids, so that
// clients moving either way keep them.
func DovecotUID(uid, validity uint32) string {
	var b [16]byte
	const hexd = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		b[i], b[8+i] = hexd[uid&0xf], hexd[validity&0xf]
		uid, validity = uid>>4, validity>>4
	}
	return string(b[:])
}
