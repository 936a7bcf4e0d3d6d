package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/pop3kit/pop3kit/server/store"
)

// Retention by age (MS-STANXPOP3 E0005; RFC 1939 §8: "a site might
// delete unread messages from the server after 60 days"): an opt-in
// sweep, run by the administrator or a timer (pop3d expire), that
// removes from every Maildir the messages delivered longer ago than the
// retention. A maildrop a session holds locked is left for the next
// sweep; a message is aged by its file's modification time, which a
// Maildir delivery sets and a move to cur/ keeps.

// ExpireReport is what a sweep did.
type ExpireReport struct {
	Users, Removed, Skipped int // maildrops swept, messages removed, maildrops left (locked or unreadable)
	Octets                  int64
}

// Expire removes the messages older than age from every Maildir under
// root, as of now; with dryRun it only counts them, and changes no file
// and no directory of the tree.
func (m *MailRoot) Expire(ctx context.Context, age time.Duration, now time.Time, dryRun bool, log *slog.Logger) (ExpireReport, error) {
	var rep ExpireReport
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if age <= 0 {
		return rep, errors.New("expire: the age must be positive")
	}
	top, err := m.root.Open(".")
	if err != nil {
		return rep, err
	}
	defer top.Close()
	cutoff := now.Add(-age)
	for {
		ents, err := top.ReadDir(256)
		for _, e := range ents {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			user := e.Name()
			if !e.IsDir() || !validFileName(user) || user[0] == '.' {
				continue
			}
			count := m.expireUser
			if dryRun {
				count = m.countOld
			}
			n, octets, err := count(user, cutoff, log)
			if err != nil {
				rep.Skipped++
				log.Warn("expire: maildrop left for the next sweep", "user", user, "err", err)
				continue
			}
			rep.Users++
			rep.Removed += n
			rep.Octets += octets
		}
		if err == io.EOF || len(ents) == 0 {
			return rep, nil
		}
		if err != nil {
			return rep, err
		}
	}
}

// expireUser removes user's messages delivered before cutoff, holding
// the maildrop's exclusive lock (ErrInUse while a session has it).
func (m *MailRoot) expireUser(user string, cutoff time.Time, log *slog.Logger) (int, int64, error) {
	d, err := m.OpenDrop(user, store.OpenOptions{Exclusive: true, Log: log.With("user", user)})
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	var marked []int
	n, octets := 0, int64(0)
	for i := range d.Len() {
		f, err := d.openFile(i)
		if err != nil {
			continue // removed meanwhile, or unreadable: not ours to judge
		}
		mtime := f.mtime
		f.Close()
		if mtime.Before(cutoff) {
			marked = append(marked, i)
			n++
			octets += d.Storage(i)
		}
	}
	if n == 0 {
		return n, octets, nil
	}
	if err := d.Remove(marked); err != nil {
		failed := n
		if re, ok := errors.AsType[*store.RemoveError](err); ok {
			failed = re.Failed
		}
		return n - failed, octets, err
	}
	log.Info("expired", "user", user, "removed", n, "octets", octets)
	return n, octets, nil
}

// countOld counts user's messages delivered before cutoff, and their
// storage octets (the ,S= of the name, else the file's size), for a dry
// run: it creates no lock, reads and writes no UID list and moves nothing
// from new/ to cur/, so the tree is left as it was found. A maildrop a
// session holds is ErrInUse, as the real run would find it: the session
// lock, if there is one, is tried with a shared flock, let go at once.
func (m *MailRoot) countOld(user string, cutoff time.Time, log *slog.Logger) (int, int64, error) {
	fi, err := m.root.Lstat(user)
	if err != nil {
		return 0, 0, err
	}
	if !fi.IsDir() {
		return 0, 0, fmt.Errorf("%.80q is not a directory: %w", user, ErrNotMaildir)
	}
	dir, err := m.root.OpenRoot(user)
	if err != nil {
		return 0, 0, err
	}
	defer dir.Close()
	if err := heldBySession(dir); err != nil {
		return 0, 0, err
	}
	d := &Drop{dir: dir, log: log.With("user", user)}
	n, octets := 0, int64(0)
	for _, sub := range []string{"cur", "new"} {
		ents, _, err := d.list(sub, nil)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, octets, err
		}
		for _, e := range ents {
			st, err := dir.Lstat(sub + "/" + e.name)
			if err != nil || !st.Mode().IsRegular() || !st.ModTime().Before(cutoff) {
				continue
			}
			n++
			if size := sizeField(e.base, "S"); size >= 0 {
				octets += size
			} else {
				octets += st.Size()
			}
		}
	}
	return n, octets, nil
}

// heldBySession returns ErrInUse when a session holds the maildrop's
// exclusive lock, without creating the lock file.
func heldBySession(dir *os.Root) error {
	f, _, err := openRegular(dir, lockName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return store.ErrInUse
	case err != nil:
		return err
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
