package maildir

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Deliver adds message r to user's Maildir as maildir(5) says and as
// Dovecot's LDA does: the message is written to tmp/ under a name no
// other delivery can have, synced, linked into new/ (never over an
// existing name), its tmp/ name removed, and new/ synced. The message is
// stored as r gives it, with its line ends as they are; the name carries
// ,S= (octets stored) and ,W= (octets in CRLF form), so that a login need
// not read it to learn its sizes.
//
// Everything is reached through the mail root's os.Root, and the user's
// directory must be a directory of its own, as at a login (Open): a
// symbolic link is refused with ErrNotMaildir. A user who has no Maildir
// yet gets one (cur, new, tmp; mode 0700).
//
// Deliver bounds nothing itself: the caller bounds r (LMTP's
// max_message_size). When r fails, or ctx ends before the message is in
// new/, the tmp/ file is removed and the error returned wraps r's: a
// delivery is whole in new/ or absent.
func (m *MailRoot) Deliver(ctx context.Context, user string, r io.Reader) error {
	if !validFileName(user) || user[0] == '.' {
		return fmt.Errorf("%.80q: %w", user, ErrNotMaildir)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := m.openUserDir(user)
	if err != nil {
		return err
	}
	defer dir.Close()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := dir.Mkdir(sub, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	base, f, err := createTmp(dir)
	if err != nil {
		return err
	}
	tmp := "tmp/" + base
	stored, exact, err := copyCounting(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = dir.Remove(tmp)
		return err
	}
	// The drop's helpers (the link-then-unlink move, the directory sync)
	// need only the directory and a log.
	d := &Drop{dir: dir, log: slog.New(slog.DiscardHandler)}
	defer d.closeDirs()
	sizes := ",S=" + strconv.FormatInt(stored, 10) + ",W=" + strconv.FormatInt(exact, 10)
	name := "new/" + base + sizes
	for try := 0; ; try++ {
		err = d.moveNoReplace(tmp, name)
		if !errors.Is(err, fs.ErrExist) || try == 8 {
			break
		}
		// Another delivery (of another host with our name, or a clock
		// set back) has the name: take a fresh one, as tmp/ already is.
		name = "new/" + uniqueName(time.Now()) + sizes
	}
	if err != nil {
		_ = dir.Remove(tmp)
		return err
	}
	// The link is durable only once new/ is synced. If it cannot be, the
	// message is taken back and the delivery fails: the sender tries
	// again later (at worst the message comes twice; it is never lost).
	if err := syncDir(dir, "new"); err != nil {
		_ = dir.Remove(name)
		return fmt.Errorf("syncing new/: %w", err)
	}
	return nil
}

// createTmp creates a file of its own in tmp/ (O_EXCL: never one that
// exists, never through a link) and returns its name.
func createTmp(dir *os.Root) (string, *os.File, error) {
	for try := 0; ; try++ {
		base := uniqueName(time.Now())
		f, err := dir.OpenFile("tmp/"+base, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err == nil {
			return base, f, nil
		}
		if !errors.Is(err, fs.ErrExist) || try == 8 {
			return "", nil, err
		}
	}
}

// syncDir syncs the directory sub of dir, so that the names just linked
// into it survive a crash.
func syncDir(dir *os.Root, sub string) error {
	f, err := dir.Open(sub)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// uniqueName returns a Maildir base name for a delivery at t:
// <seconds>.M<microseconds>P<pid>R<random>.<host>, the fields of
// maildir(5)'s modern unique names (and of Dovecot's, with R for the
// random part): with 64 random bits no two deliveries of this or another
// process, on this host or another sharing the mail root, get one name.
func uniqueName(t time.Time) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, t.Unix(), 10)
	b = append(b, ".M"...)
	b = strconv.AppendInt(b, int64(t.Nanosecond()/1000), 10)
	b = append(b, 'P')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, 'R')
	b = hex.AppendEncode(b, rnd[:])
	b = append(b, '.')
	b = append(b, maildirHost()...)
	return string(b)
}

// maildirHost is the host name as a Maildir name carries it: "/" and ":"
// written as \057 and \072 (maildir(5)), and "," as \054 as Dovecot does,
// since a comma starts the ,S= and ,W= fields.
var maildirHost = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "localhost"
	}
	if len(h) > 64 {
		h = h[:64]
	}
	return strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`).Replace(h)
})

// copyCounting copies r to w and returns the octets copied and the octets
// of the CRLF form (every LF not preceded by CR counts two), as measure
// counts them. An error of r is returned as it is, wrapped.
func copyCounting(w io.Writer, r io.Reader) (stored, exact int64, err error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	var bare int64
	prevCR := false
	for {
		m, rerr := r.Read(*bp)
		if m > 0 {
			b := (*bp)[:m]
			if _, werr := w.Write(b); werr != nil {
				return 0, 0, werr
			}
			stored += int64(m)
			for len(b) > 0 {
				i := bytes.IndexByte(b, '\n')
				if i < 0 {
					prevCR = b[len(b)-1] == '\r'
					break
				}
				if !(i > 0 && b[i-1] == '\r' || i == 0 && prevCR) {
					bare++
				}
				prevCR = false
				b = b[i+1:]
			}
		}
		if rerr == io.EOF {
			return stored, stored + bare, nil
		}
		if rerr != nil {
			return 0, 0, fmt.Errorf("reading the message: %w", rerr)
		}
	}
}
