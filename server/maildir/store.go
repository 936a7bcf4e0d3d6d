package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"syscall"

	"github.com/pop3kit/pop3kit/server/store"
)

// maildirStore is a MailRoot as a store.Store.
type maildirStore struct{ *MailRoot }

// MaildirStore returns the Store of the Maildirs under m.
func MaildirStore(m *MailRoot) store.Store { return maildirStore{m} }

func (s maildirStore) Open(ctx context.Context, user string, o store.OpenOptions) (store.Mailbox, error) {
	d, err := s.MailRoot.Open(user, DropOptions{Exclusive: o.Exclusive, DovecotUIDs: o.DovecotUIDs, Log: o.Log})
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, ErrNotMaildir) {
		return nil, fmt.Errorf("%w: %w", store.ErrNoMaildrop, err)
	}
	if err != nil {
		return nil, err
	}
	return maildirBox{d, o.DovecotUIDs}, nil
}

// dovecotUID is Dovecot's pop3_uidl_format %08Xu%08Xv as Dovecot writes
// it, in lower case: byte for byte, so clients moving either way keep
// their ids.
func dovecotUID(uid, validity uint32) string {
	var b [16]byte
	const hexd = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		b[i], b[8+i] = hexd[uid&0xf], hexd[validity&0xf]
		uid, validity = uid>>4, validity>>4
	}
	return string(b[:])
}

func decimalUID(uid uint32) string { return strconv.FormatUint(uint64(uid), 10) }

// maildirBox is a Drop as a Mailbox.
type maildirBox struct {
	*Drop
	dovecot bool
}

func (b maildirBox) UniqueID(i int) string {
	if b.dovecot {
		return dovecotUID(b.UID(i), b.Validity)
	}
	return decimalUID(b.UID(i))
}

func (b maildirBox) Open(i int) (io.ReadCloser, error) {
	f, err := b.Drop.Open(i)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (b maildirBox) Remove(indexes []int) (int, error) {
	marked := make([]bool, b.Len())
	for _, i := range indexes {
		if i >= 0 && i < len(marked) {
			marked[i] = true
		}
	}
	return b.Drop.Remove(marked)
}

func (b maildirBox) Close() error {
	b.Drop.Close()
	return nil
}
