package server

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The UID list persists, beside the maildrop, the unique-id of every
// message and its sizes:
//
//	pop3kit-uidlist 1 validity=1764100000 next=43
//	41 1520 1480 1764100000.M1P2.host,S=1480
//	42 880 862 1764100001.M3P4.host
//
// One line a message: uid, exact size (CRLF form), storage size, and the
// file's base name (the name before ":2,"). UIDs increase and are never
// reused: next only grows, and a line goes when its file does
// (MS-STANXPOP3 C0007, C0008, C0009). Every change happens under an
// exclusive flock of the list's lock file, and the new list replaces the
// old by rename, so two pop3d processes on one maildrop stay consistent.
const (
	uidListName    = "pop3kit-uidlist"
	uidLockName    = "pop3kit-uidlist.lock"
	dovecotUIDList = "dovecot-uidlist"
	uidListHeader  = "pop3kit-uidlist 1"
)

// uidEntry is one line of the UID list.
type uidEntry struct {
	uid     uint32
	exact   int64
	storage int64
}

// uidList is the UID list in memory.
type uidList struct {
	validity uint32
	next     uint32
	entries  map[string]uidEntry // by base name
}

// maxUIDListLine bounds a line of a UID list: a uid, two sizes and a
// Maildir file name (at most 255 octets on every common file system).
const maxUIDListLine = 512

// parseUIDList reads our UID list. Errors name the line.
func parseUIDList(r io.Reader) (*uidList, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, maxUIDListLine), maxUIDListLine)
	l := &uidList{entries: map[string]uidEntry{}}
	if !sc.Scan() {
		return nil, fmt.Errorf("line 1: missing header: %v", sc.Err())
	}
	head := strings.Fields(sc.Text())
	if len(head) != 4 || head[0]+" "+head[1] != uidListHeader {
		return nil, fmt.Errorf("line 1: want %q header, got %q", uidListHeader, sc.Text())
	}
	for _, kv := range head[2:] {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("line 1: %s: %v", k, err)
		}
		switch k {
		case "validity":
			l.validity = uint32(n)
		case "next":
			l.next = uint32(n)
		default:
			return nil, fmt.Errorf("line 1: unknown field %q", k)
		}
	}
	for n := 2; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want uid exact storage name", n)
		}
		uid, err1 := strconv.ParseUint(f[0], 10, 32)
		exact, err2 := strconv.ParseInt(f[1], 10, 64)
		storage, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || uid == 0 || exact < 0 || storage < 0 {
			return nil, fmt.Errorf("line %d: bad number", n)
		}
		if uint32(uid) >= l.next {
			return nil, fmt.Errorf("line %d: uid %d is not below next=%d", n, uid, l.next)
		}
		if _, dup := l.entries[f[3]]; dup {
			return nil, fmt.Errorf("line %d: %s listed twice", n, f[3])
		}
		l.entries[f[3]] = uidEntry{uid: uint32(uid), exact: exact, storage: storage}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return l, nil
}

// write writes the list in UID order.
func (l *uidList) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s validity=%d next=%d\n", uidListHeader, l.validity, l.next)
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return l.entries[names[i]].uid < l.entries[names[j]].uid })
	for _, n := range names {
		e := l.entries[n]
		fmt.Fprintf(bw, "%d %d %d %s\n", e.uid, e.exact, e.storage, n)
	}
	return bw.Flush()
}

// parseDovecotUIDList reads a Dovecot dovecot-uidlist (versions 1 and 3)
// into a UID list without sizes (they are measured later): the header
// gives UIDVALIDITY and the next UID, each line "uid [fields] :filename"
// (version 3) or "uid filename" (version 1).
func parseDovecotUIDList(r io.Reader) (*uidList, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	if !sc.Scan() {
		return nil, fmt.Errorf("dovecot-uidlist: empty")
	}
	head := strings.Fields(sc.Text())
	l := &uidList{entries: map[string]uidEntry{}}
	if len(head) < 3 {
		return nil, fmt.Errorf("dovecot-uidlist: line 1: short header")
	}
	switch head[0] {
	case "1":
		v, err1 := strconv.ParseUint(head[1], 10, 32)
		n, err2 := strconv.ParseUint(head[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("dovecot-uidlist: line 1: bad header")
		}
		l.validity, l.next = uint32(v), uint32(n)
	case "3":
		for _, f := range head[1:] {
			if len(f) < 2 {
				continue
			}
			n, err := strconv.ParseUint(f[1:], 10, 32)
			switch f[0] {
			case 'V':
				if err != nil {
					return nil, fmt.Errorf("dovecot-uidlist: line 1: bad V")
				}
				l.validity = uint32(n)
			case 'N':
				if err != nil {
					return nil, fmt.Errorf("dovecot-uidlist: line 1: bad N")
				}
				l.next = uint32(n)
			}
		}
	default:
		return nil, fmt.Errorf("dovecot-uidlist: version %q not understood", head[0])
	}
	for n := 2; sc.Scan(); n++ {
		line := sc.Text()
		var uidText, name string
		if head[0] == "3" {
			left, right, ok := strings.Cut(line, " :")
			if !ok {
				return nil, fmt.Errorf("dovecot-uidlist: line %d: no \" :\" before the file name", n)
			}
			uidText, _, _ = strings.Cut(left, " ")
			name = right
		} else {
			f := strings.Fields(line)
			if len(f) != 2 {
				return nil, fmt.Errorf("dovecot-uidlist: line %d: want uid filename", n)
			}
			uidText, name = f[0], f[1]
		}
		uid, err := strconv.ParseUint(uidText, 10, 32)
		if err != nil || uid == 0 {
			return nil, fmt.Errorf("dovecot-uidlist: line %d: bad uid", n)
		}
		base := baseName(name)
		l.entries[base] = uidEntry{uid: uint32(uid), exact: -1, storage: -1}
		if uint32(uid) >= l.next {
			l.next = uint32(uid) + 1
		}
	}
	return l, sc.Err()
}

// baseName returns a Maildir file name without its info part (":2,FLAGS").
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// withUIDLock runs f holding the exclusive lock of dir's UID list.
func withUIDLock(dir string, f func() error) error {
	lf, err := os.OpenFile(filepath.Join(dir, uidLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// loadUIDList reads dir's UID list, or imports dovecot-uidlist, or starts
// a new one. Call it under withUIDLock.
func loadUIDList(dir string) (*uidList, error) {
	f, err := os.Open(filepath.Join(dir, uidListName))
	if err == nil {
		defer f.Close()
		l, err := parseUIDList(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(dir, uidListName), err)
		}
		return l, nil
	}
	if !os.IsNotExist(err) {
		return nil, err
	}
	if d, err := os.Open(filepath.Join(dir, dovecotUIDList)); err == nil {
		defer d.Close()
		l, err := parseDovecotUIDList(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(dir, dovecotUIDList), err)
		}
		return l, nil
	}
	return &uidList{validity: uint32(time.Now().Unix()), next: 1, entries: map[string]uidEntry{}}, nil
}

// saveUIDList replaces dir's UID list. Call it under withUIDLock.
func saveUIDList(dir string, l *uidList) error {
	tmp, err := os.CreateTemp(dir, uidListName+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := l.write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, uidListName))
}
