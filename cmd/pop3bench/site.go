package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// site is the mail every server under test serves: the same Maildir and
// passwd-file for pop3d and Dovecot, and the same bytes, read into
// memory, for the floor.
type site struct {
	dir    string
	mail   string // the mail root: one Maildir per user
	passwd string // Dovecot's passwd-file format, {PLAIN} passwords
	uid    int    // the account the servers serve mail as
	gid    int
	users  []string // the session mix's users
	idle   []string // the idle sessions' users (one session each: the lock profile)
	msgs   [][]byte // the session mix's messages, as stored (LF)
}

// The users of the single-user figures.
const (
	bigUser  = "big"  // one message of opts.bigMB
	manyUser = "many" // opts.many small messages
	password = "benchpw"
)

// msgBytes returns a message of about size octets, as an MTA would store
// it: a header, a blank line and lines of text, LF line ends, some lines
// starting with a dot (RETR stuffs them).
func msgBytes(r *rand.Rand, n, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <sender%d@example.org>\nFrom: Sender <sender%d@example.org>\nTo: user@example.net\n", n, n)
	fmt.Fprintf(&b, "Subject: benchmark message %d\nMessage-ID: <%d.bench@example.org>\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n\n", n, n)
	const words = "the quick brown fox jumps over a lazy dog while the mail server answers every client in turn"
	w := strings.Fields(words)
	for b.Len() < size {
		line := make([]string, 0, 12)
		for range 8 + r.IntN(6) {
			line = append(line, w[r.IntN(len(w))])
		}
		if r.IntN(40) == 0 {
			b.WriteString(".")
		}
		b.WriteString(strings.Join(line, " "))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// newSite writes the site under dir: users for the session mix, each
// with msgs messages of msgSize octets (hard links to one set of files,
// so that thousands of maildrops cost little disk), idle users with the
// same maildrop, the big user and the many user.
func newSite(dir string, o options) (*site, error) {
	s := &site{dir: dir, mail: filepath.Join(dir, "mail"), passwd: filepath.Join(dir, "passwd"), uid: os.Getuid(), gid: os.Getgid()}
	if os.Getuid() == 0 {
		// Neither pop3d nor Dovecot serves mail as root.
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the account nobody: %v", err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
	}
	r := rand.New(rand.NewPCG(1, 2))
	pool := filepath.Join(dir, "pool")
	if err := os.MkdirAll(pool, 0o755); err != nil {
		return nil, err
	}
	var pooled []string
	for i := range o.msgs {
		m := msgBytes(r, i, o.msgSize)
		s.msgs = append(s.msgs, m)
		p := filepath.Join(pool, fmt.Sprintf("%d.M%dP1.bench,S=%d", 1764000000+i, i, len(m)))
		if err := os.WriteFile(p, m, 0o600); err != nil {
			return nil, err
		}
		pooled = append(pooled, p)
	}
	var pw strings.Builder
	add := func(u string) error {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s:%d:%d::%s::nodelay=yes\n", u, password, s.uid, s.gid, filepath.Join(s.mail, u))
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(s.mail, u, sub), 0o700); err != nil {
				return err
			}
		}
		return nil
	}
	// linked adds n users named prefix0, prefix1 …, each with the pooled
	// messages.
	linked := func(prefix string, n int) ([]string, error) {
		var names []string
		for i := range n {
			u := prefix + strconv.Itoa(i)
			names = append(names, u)
			if err := add(u); err != nil {
				return nil, err
			}
			for _, p := range pooled {
				if err := os.Link(p, filepath.Join(s.mail, u, "new", filepath.Base(p))); err != nil {
					return nil, err
				}
			}
		}
		return names, nil
	}
	var err error
	if s.users, err = linked("u", o.users); err != nil {
		return nil, err
	}
	if s.idle, err = linked("i", o.idle); err != nil {
		return nil, err
	}
	if o.bigMB > 0 {
		if err := add(bigUser); err != nil {
			return nil, err
		}
		m := msgBytes(r, 0, o.bigMB<<20)
		if err := os.WriteFile(filepath.Join(s.mail, bigUser, "new", "1764000000.M0P1.big"), m, 0o600); err != nil {
			return nil, err
		}
	}
	if o.many > 0 {
		if err := add(manyUser); err != nil {
			return nil, err
		}
		m := msgBytes(r, 0, 200)
		for i := range o.many {
			if err := os.WriteFile(filepath.Join(s.mail, manyUser, "new", fmt.Sprintf("%d.M%dP1.many", 1764000000+i, i)), m, 0o600); err != nil {
				return nil, err
			}
		}
	}
	if err := os.WriteFile(s.passwd, []byte(pw.String()), 0o644); err != nil {
		return nil, err
	}
	if os.Getuid() == 0 {
		if err := chownTree(s.mail, s.uid, s.gid); err != nil {
			return nil, err
		}
		// The servers reach the site as that account.
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
				if err := os.Chmod(d, fi.Mode().Perm()|0o005); err != nil {
					return nil, err
				}
			}
		}
	}
	return s, nil
}

func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
