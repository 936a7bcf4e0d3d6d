package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"syscall"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/store"
)

// Open opens user's maildrop for a session as opts say (OpenDrop). An
// entry that is no Maildir of its own, or one pop3d may not read, fails
// with store.ErrNoMaildrop: trying again will not help.
func (m *MailRoot) Open(ctx context.Context, user string, o store.OpenOptions) (pop3.Maildrop, error) {
	d, err := m.OpenDrop(user, o)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, ErrNotMaildir) {
		return nil, fmt.Errorf("%w: %w", store.ErrNoMaildrop, err)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func decimalUID(uid uint32) string { return strconv.FormatUint(uint64(uid), 10) }

// UniqueID returns message i's unique-id: its UID in decimal, or in
// Dovecot's format where the drop keeps dovecot-uidlist.
func (d *Drop) UniqueID(i int) string {
	if d.dovecot {
		return store.DovecotUID(d.UID(i), d.Validity)
	}
	return decimalUID(d.UID(i))
}
