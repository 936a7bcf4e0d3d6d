package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"
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
// root, as of now; with dryRun it only counts them.
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
			n, octets, err := m.expireUser(user, cutoff, dryRun, log)
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
func (m *MailRoot) expireUser(user string, cutoff time.Time, dryRun bool, log *slog.Logger) (int, int64, error) {
	d, err := m.Open(user, DropOptions{Exclusive: true, Log: log.With("user", user)})
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	marked := make([]bool, d.Len())
	n, octets := 0, int64(0)
	for i := range d.Len() {
		f, err := d.Open(i)
		if err != nil {
			continue // removed meanwhile, or unreadable: not ours to judge
		}
		fi, err := f.f.Stat()
		f.Close()
		if err == nil && fi.ModTime().Before(cutoff) {
			marked[i] = true
			n++
			octets += d.Storage(i)
		}
	}
	if n == 0 || dryRun {
		return n, octets, nil
	}
	failed, err := d.Remove(marked)
	if err != nil {
		return n - failed, octets, err
	}
	log.Info("expired", "user", user, "removed", n, "octets", octets)
	return n, octets, nil
}
