// Package faultinject holds the hooks by which tests make the Maildir
// store's own file opens fail with a chosen error, to try every errno
// where it would hurt. Nothing but tests sets them.
package faultinject

import "sync/atomic"

var open atomic.Pointer[func(dir, name string) error]

// SetOpen sets the hook asked before the Maildir store opens one of a
// maildrop's own files — the UID list, its lock and temporary file,
// dovecot-uidlist, the session lock — with the maildrop's directory and
// the file's name; nil takes it away.
func SetOpen(f func(dir, name string) error) {
	if f == nil {
		open.Store(nil)
		return
	}
	open.Store(&f)
}

// Open returns the hook's error for dir and name, nil without a hook.
func Open(dir, name string) error {
	if f := open.Load(); f != nil {
		return (*f)(dir, name)
	}
	return nil
}
