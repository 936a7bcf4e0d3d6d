package maildir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Usage adds up the storage sizes of the messages in user's Maildir (cur
// and new), from ,S= in their names or their files' sizes.
func (m *MailRoot) Usage(ctx context.Context, user string) (int64, int, error) {
	if !validFileName(user) || user[0] == '.' {
		return 0, 0, ErrNotMaildir
	}
	dir, err := m.openUserDir(user)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer dir.Close()
	var total int64
	n := 0
	for _, sub := range []string{"cur", "new"} {
		f, err := dir.Open(sub)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		for {
			ents, err := f.ReadDir(1024)
			for _, e := range ents {
				if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
					continue
				}
				n++
				if sz, ok := nameSize(e.Name(), ",S="); ok {
					total += sz
				} else if fi, err := e.Info(); err == nil {
					total += fi.Size()
				}
			}
			if err == io.EOF || len(ents) == 0 {
				break
			}
			if err != nil {
				f.Close()
				return 0, 0, err
			}
			if ctx.Err() != nil {
				f.Close()
				return 0, 0, ctx.Err()
			}
		}
		f.Close()
	}
	return total, n, nil
}

// nameSize reads the size a Maildir name carries after key (",S=").
func nameSize(name, key string) (int64, bool) {
	i := strings.Index(name, key)
	if i < 0 {
		return 0, false
	}
	v := name[i+len(key):]
	if j := strings.IndexAny(v, ",:"); j >= 0 {
		v = v[:j]
	}
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// quotaWarned is the marker file that records a sent quota warning.
const quotaWarned = "pop3kit-quota-warned"

func (m *MailRoot) Warned(user string) bool {
	dir, err := m.openUserDir(user)
	if err != nil {
		return false
	}
	defer dir.Close()
	fi, err := dir.Lstat(quotaWarned)
	return err == nil && fi.Mode().IsRegular()
}

func (m *MailRoot) SetWarned(user string, warned bool) error {
	dir, err := m.openUserDir(user)
	if err != nil {
		return err
	}
	defer dir.Close()
	if !warned {
		err := dir.Remove(quotaWarned)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	f, err := dir.OpenFile(quotaWarned, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
