// Package maildir is pop3d's Maildir store: the maildrops under a mail
// root, each reached through an os.Root so that nothing in the tree steers
// where a file is opened; the exclusive-access lock or the snapshot of a
// session; unique-ids kept in a UID list of pop3kit's own
// (pop3kit-uidlist) and in step with Dovecot's dovecot-uidlist where the
// Maildir is shared with it; sizes from the names Dovecot writes (,S= and
// ,W=) or measured once; delivery (tmp, then new) and expiry; storage
// usage for quotas. A *MailRoot is a store.Store, and a session's *Drop
// is the runtime's pop3.Maildrop.
//
// It imports the store interfaces (server/store), the runtime (pop3) and
// the standard library only.
package maildir
