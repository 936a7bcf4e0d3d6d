// Package store holds the interfaces between pop3d's sessions and the
// stores that keep maildrops — the Maildir store (package server's
// MailRoot) and PostgreSQL (server/pgstore) — and the errors a store
// returns that a session turns into replies. It has no dependencies but
// the standard library, so a store imports it and nothing of the server.
package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"
)

// Store is where maildrops live: pop3d opens one at each login, and the
// core serves the session from it. Maildir (MailRoot) is one store;
// PostgreSQL (package server/pgstore) another. A Store is safe for
// concurrent use.
type Store interface {
	// Open opens user's maildrop as opts say: locked against every other
	// session (Exclusive, RFC 1939's exclusive-access lock, ErrInUse while
	// another holds it) or as a snapshot (Exchange, MS-STANXPOP3 §2.1.3).
	// It fails with ErrBusy when it could not get in in time, with
	// ErrNoMaildrop when the maildrop cannot be opened and trying again
	// will not help (RFC 3206 [SYS/PERM]), with other errors otherwise.
	Open(ctx context.Context, user string, opts OpenOptions) (Mailbox, error)
}

// OpenOptions say how a Store opens a maildrop.
type OpenOptions struct {
	// Exclusive takes the exclusive-access lock; without it the session
	// works on a snapshot.
	Exclusive bool
	// DovecotUIDs asks for unique-ids in Dovecot's format (%08x%08x of
	// the UID and UIDVALIDITY, UIDLFormat=dovecot), kept in step with
	// Dovecot where the store is shared with it (Maildir's dovecot-uidlist).
	DovecotUIDs bool
	// Log receives what the store skipped or repaired; nil discards it.
	Log *slog.Logger
}

// Mailbox is one open maildrop: a list of messages fixed at Open (the
// session's snapshot), numbered 0 to Len-1.
type Mailbox interface {
	Len() int
	// Exact is message i's size in its CRLF form, what RETR sends before
	// dot-stuffing; Storage is what it takes in the store (STAT and LIST
	// state one or the other, as the ExactSizes variation says).
	Exact(i int) int64
	Storage(i int) int64
	// UniqueID is message i's unique-id (RFC 1939 §7): stable across
	// sessions, never given to another message.
	UniqueID(i int) string
	// Open returns message i from its first octet, with LF or CRLF line
	// ends. It fails with ErrGone when another session removed it since
	// Open (snapshot semantics). A reader that also implements io.Seeker
	// (Seek(0, io.SeekStart)) lets TOP state the octets it sends.
	Open(i int) (io.ReadCloser, error)
	// Remove removes the messages at the indexes given, and no other (RFC
	// 1939 §6); failed counts those that could not be (MS-STANXPOP3
	// V0006), err says why.
	Remove(indexes []int) (failed int, err error)
	// Close releases the maildrop (its lock, where it holds one). It
	// removes nothing.
	Close() error
}

// Deliverer is a Store that takes new mail (LMTP delivery, import).
type Deliverer interface {
	// Deliver adds message r to user's maildrop. The message is whole in
	// the store when Deliver returns nil, and absent when it returns an
	// error: a delivery is never half done.
	Deliver(ctx context.Context, user string, r io.Reader) error
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
