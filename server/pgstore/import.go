package pgstore

import (
	"context"
	"fmt"

	"github.com/pop3kit/pop3kit/server/maildir"
	"github.com/pop3kit/pop3kit/server/store"
)

// ImportOptions say how a Maildir is imported.
type ImportOptions struct {
	// DovecotUIDs: the maildrop was served with Dovecot's unique-ids (it
	// has a dovecot-uidlist); they are kept as they were. Otherwise the
	// decimal UIDs of pop3kit-uidlist are.
	DovecotUIDs bool
	// Progress, when set, is called after each message, imported or
	// found imported before, with the messages done and the maildrop's.
	Progress func(done, total int)
}

// ImportMaildir copies user's Maildir from root into the store, each
// message in a transaction of its own with the unique-id it had there,
// which it keeps. It is idempotent: a message imported before (even if
// since removed here) is not imported again, so a run that was
// interrupted completes when run again. The mailbox's UID counter is
// raised above the Maildir's UIDs, so that no message delivered here
// later can show a unique-id an imported one had. It returns how many
// messages it imported, and the Maildir's count.
func (s *Store) ImportMaildir(ctx context.Context, root *maildir.MailRoot, user string, o ImportOptions) (imported, total int, err error) {
	d, err := root.OpenDrop(user, store.OpenOptions{DovecotUIDs: o.DovecotUIDs})
	if err != nil {
		return 0, 0, fmt.Errorf("maildir %s: %w", user, err)
	}
	defer d.Close()
	total = d.Len()
	var maxUID uint32
	for i := range total {
		maxUID = max(maxUID, d.UID(i))
	}
	mbox, _, err := mailbox(ctx, s.pool, user, d.Validity)
	if err != nil {
		return 0, total, fmt.Errorf("pgstore: import %s: %w", user, err)
	}
	if _, err := s.pool.Exec(ctx, "UPDATE mailboxes SET uid_next = greatest(uid_next, $2) WHERE id = $1", mbox, int64(maxUID)+1); err != nil {
		return 0, total, fmt.Errorf("pgstore: import %s: %w", user, err)
	}
	done := map[string]bool{}
	rows, err := s.pool.Query(ctx, "SELECT source FROM imported WHERE mailbox_id = $1", mbox)
	if err != nil {
		return 0, total, fmt.Errorf("pgstore: import %s: %w", user, err)
	}
	for rows.Next() {
		var src string
		if err := rows.Scan(&src); err != nil {
			rows.Close()
			return 0, total, err
		}
		done[src] = true
	}
	if rows.Close(); rows.Err() != nil {
		return 0, total, fmt.Errorf("pgstore: import %s: %w", user, rows.Err())
	}
	for i := range total {
		id := d.UniqueID(i)
		if !done[id] {
			f, err := d.Open(i)
			if err != nil {
				return imported, total, fmt.Errorf("maildir %s: uid %d: %w", user, d.UID(i), err)
			}
			ok, err := s.deliver(ctx, user, f, id, d.Validity)
			f.Close()
			if err != nil {
				return imported, total, fmt.Errorf("import %s: uid %d: %w", user, d.UID(i), err)
			}
			if ok {
				imported++
			}
		}
		if o.Progress != nil {
			o.Progress(i+1, total)
		}
	}
	return imported, total, nil
}
