package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Errors of the maildrop that sessions turn into replies.
var (
	// ErrInUse: another session holds the exclusive lock (RFC 1939 §4).
	ErrInUse = errors.New("maildrop is locked by another session")
	// ErrGone: the message was removed after the session's snapshot
	// (MS-STANXPOP3 C0004).
	ErrGone = errors.New("message was removed by another session")
)

// Message is one message of a session's listing.
type Message struct {
	UID     uint32
	Base    string // file name without ":2,FLAGS"
	Exact   int64  // octets in CRLF form
	Storage int64  // octets the file occupies (,S= or its size)
	path    string // where it was when listed
}

// Drop is a maildrop opened for one session: ROOT/<user>/{cur,new,tmp}.
// The message list is fixed when it is opened (the snapshot); with an
// exclusive lock no other session can change it meanwhile.
type Drop struct {
	dir      string
	Messages []Message
	Validity uint32 // UIDVALIDITY, for Dovecot-style unique-ids
	lock     *os.File
}

// lockName is the file pop3d flocks for an exclusive session.
const lockName = "pop3kit.lock"

// OpenDrop opens the Maildir at dir, creating it if the user has none yet.
// With exclusive, it takes the session lock first and returns ErrInUse
// when another session (of this or another pop3d process) holds it. New
// messages are moved to cur/ as the Maildir rules say; every message gets
// its UID and sizes from the UID list, which learns the new ones.
func OpenDrop(dir string, exclusive bool) (*Drop, error) {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	d := &Drop{dir: dir}
	if exclusive {
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrInUse
			}
			return nil, err
		}
		d.lock = f
	}
	if err := d.scan(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the session lock. It removes nothing.
func (d *Drop) Close() {
	if d.lock != nil {
		_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
		d.lock.Close()
		d.lock = nil
	}
}

// moveNew moves new/ to cur/, adding the ":2," info part (Maildir: a
// reader that has seen a message moves it to cur). A file another session
// moved first is skipped.
func (d *Drop) moveNew() error {
	names, err := readNames(filepath.Join(d.dir, "new"))
	if err != nil {
		return err
	}
	for _, n := range names {
		err := os.Rename(filepath.Join(d.dir, "new", n), filepath.Join(d.dir, "cur", n+":2,"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// readNames lists a directory's file names, without dot files.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if n != "" && n[0] != '.' {
			out = append(out, n)
		}
	}
	return out, nil
}

// scan takes the snapshot: moves new messages, lists cur/, and gives every
// message its UID and sizes.
func (d *Drop) scan() error {
	if err := d.moveNew(); err != nil {
		return err
	}
	names, err := readNames(filepath.Join(d.dir, "cur"))
	if err != nil {
		return err
	}
	// Assign in delivery order: Maildir names start with the time.
	sort.Strings(names)
	return withUIDLock(d.dir, func() error {
		l, err := loadUIDList(d.dir)
		if err != nil {
			return err
		}
		changed := false
		present := map[string]bool{}
		for _, n := range names {
			base := baseName(n)
			if present[base] {
				continue // the same message under two flag sets: list it once
			}
			present[base] = true
			path := filepath.Join(d.dir, "cur", n)
			e, ok := l.entries[base]
			if !ok || e.exact < 0 || e.storage < 0 {
				ex, st, err := measure(path, base)
				if err != nil {
					if os.IsNotExist(err) {
						continue // removed while we listed
					}
					return err
				}
				if !ok {
					e.uid = l.next
					l.next++
				}
				e.exact, e.storage = ex, st
				l.entries[base] = e
				changed = true
			}
			d.Messages = append(d.Messages, Message{UID: e.uid, Base: base, Exact: e.exact, Storage: e.storage, path: path})
		}
		for base := range l.entries {
			if !present[base] {
				delete(l.entries, base) // its file is gone; its UID is never reused
				changed = true
			}
		}
		d.Validity = l.validity
		sort.Slice(d.Messages, func(i, j int) bool { return d.Messages[i].UID < d.Messages[j].UID })
		if changed {
			return saveUIDList(d.dir, l)
		}
		return nil
	})
}

// sizeField returns the value of a ",S=" or ",W=" field of a Maildir base
// name, or -1.
func sizeField(base, key string) int64 {
	i := strings.Index(base, ","+key+"=")
	if i < 0 {
		return -1
	}
	v := base[i+len(key)+2:]
	if j := strings.IndexByte(v, ','); j >= 0 {
		v = v[:j]
	}
	// Digits only: strconv would also take a sign ("+0"), which no
	// delivery agent writes.
	if v == "" || len(v) > 18 || strings.TrimLeft(v, "0123456789") != "" {
		return -1
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// copyBufs holds the buffers messages are streamed and measured with.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// measure returns a message's exact size (its CRLF form: every LF not
// preceded by CR counts two octets) and its storage size. The ,W= and ,S=
// fields that Dovecot and others write into the name are used when
// present; otherwise the file is read once (and the UID list remembers).
func measure(path, base string) (exact, storage int64, err error) {
	exact, storage = sizeField(base, "W"), sizeField(base, "S")
	if exact >= 0 && storage >= 0 {
		return exact, storage, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	var n, bare int64
	prevCR := false
	for {
		m, rerr := f.Read(*bp)
		b := (*bp)[:m]
		n += int64(m)
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
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, 0, rerr
		}
	}
	if exact < 0 {
		exact = n + bare
	}
	if storage < 0 {
		storage = n
	}
	return exact, storage, nil
}

// Open opens message i (from 0) for reading. When the file moved (another
// session changed its flags) it is found again by its base name; when it
// is gone, Open returns ErrGone.
func (d *Drop) Open(i int) (*os.File, error) {
	m := &d.Messages[i]
	f, err := os.Open(m.path)
	if err == nil || !os.IsNotExist(err) {
		return f, err
	}
	if p, ok := d.find(m.Base); ok {
		m.path = p
		return os.Open(p)
	}
	return nil, ErrGone
}

// find looks for a message's file in cur/ and new/ by its base name.
func (d *Drop) find(base string) (string, bool) {
	for _, sub := range []string{"cur", "new"} {
		names, err := readNames(filepath.Join(d.dir, sub))
		if err != nil {
			continue
		}
		for _, n := range names {
			if baseName(n) == base {
				return filepath.Join(d.dir, sub, n), true
			}
		}
	}
	return "", false
}

// Remove removes the messages whose indexes are marked, one by one, and
// returns how many it could not remove (MS-STANXPOP3 V0006: the UPDATE
// state is not atomic, but nothing unmarked is ever touched). A message
// already gone counts as removed.
func (d *Drop) Remove(marked []bool) (failed int, err error) {
	for i, del := range marked {
		if !del || i >= len(d.Messages) {
			continue
		}
		m := &d.Messages[i]
		rerr := os.Remove(m.path)
		if os.IsNotExist(rerr) {
			if p, ok := d.find(m.Base); ok {
				rerr = os.Remove(p)
			} else {
				rerr = nil
			}
		}
		if rerr != nil && !os.IsNotExist(rerr) {
			failed++
			if err == nil {
				err = fmt.Errorf("remove %s: %w", m.Base, rerr)
			}
		}
	}
	return failed, err
}

// CopyMessage streams the file to w (a DotWriter) through a pooled buffer:
// no message is ever held whole in memory.
func CopyMessage(w io.Writer, f *os.File) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	_, err := io.CopyBuffer(writerOnly{w}, readerOnly{f}, *bp)
	return err
}

// writerOnly and readerOnly hide ReadFrom/WriteTo so that io.CopyBuffer
// uses the pooled buffer instead of allocating its own.
type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// readers holds the buffered readers TOP reads headers with.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16*1024) }}

// CopyTop streams the header of the message, the blank line after it and
// the first lines of its body (RFC 1939 §7 TOP).
func CopyTop(w io.Writer, f *os.File, lines uint32) error {
	br := readers.Get().(*bufio.Reader)
	br.Reset(f)
	defer func() { br.Reset(nil); readers.Put(br) }()
	header, lineStart := true, true
	var n uint32
	for {
		if !header && lineStart && n >= lines {
			return nil
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			blank := complete && (len(chunk) == 1 || len(chunk) == 2 && chunk[0] == '\r')
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			switch {
			case header && lineStart && blank:
				header = false
			case complete && !header:
				n++
			}
			lineStart = complete
		}
		if err == io.EOF {
			return nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
	}
}
