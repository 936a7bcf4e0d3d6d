package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The UID list persists, beside the maildrop, the unique-id of every
// message, its sizes and its file name:
//
//	pop3kit-uidlist 2 validity=1764100000 next=43
//	41 1520 1480 1764100000.M1P2.host,S=1480:2,
//	42 880 862 1764100001.M3P4.host%20with%20a%20space:2,S
//
// One line a message: uid, exact size (CRLF form), storage size, and the
// file's name in cur/ as last seen, with every octet that is a control
// character, a space, DEL or "%" written as %XX, so that any name a file
// system allows (spaces, newlines, non-UTF-8) round-trips. The message is
// identified by its base name (the name before ":2,"); the flags part may
// change under other readers. UIDs increase and are never reused: next
// only grows, and a line goes when its file does (MS-STANXPOP3 C0007,
// C0008, C0009). Every change happens under an exclusive flock of the
// list's lock file, and the new list replaces the old by rename followed
// by an fsync of the directory, so two pop3d processes on one maildrop
// stay consistent and a crash leaves the old list or the new one.
//
// Version 1 lists (names without flags, unescaped) are read and rewritten
// as version 2.
const (
	uidListName    = "pop3kit-uidlist"
	uidLockName    = "pop3kit-uidlist.lock"
	dovecotUIDList = "dovecot-uidlist"
	uidListMagic   = "pop3kit-uidlist"
	uidListVersion = 2
)

// uidEntry is one line of the UID list.
type uidEntry struct {
	uid     uint32
	exact   int64 // -1 when not known (a Dovecot list has no sizes)
	storage int64
	name    string // file name in cur/, escaped form decoded
	off     int64  // offset of the line in the file it was read from or written to
}

// uidList is the UID list in memory.
type uidList struct {
	validity uint32
	// next is the UID the next new message gets. It is wider than a UID
	// so that giving 2^32-1 leaves next at 2^32, "exhausted", rather
	// than wrapping to a UID already given.
	next    uint64
	entries map[string]uidEntry // by base name
	// version is the format version read (0 for a damaged header).
	version int
	// problems says what was skipped or repaired while reading; a list
	// with problems is rewritten clean.
	problems []string
}

// maxUIDListLine bounds a line of a UID list: a uid, two sizes and a file
// name of at most 255 octets, each octet escaped in the worst case (3×).
// A longer line is damage: it is skipped, not read into memory.
const maxUIDListLine = 1024

// maxUIDList bounds the octets of a UID list a login reads: two million
// messages of 128 octets a line. What lies beyond is not read (a sparse
// file of gigabytes would otherwise hold the lock for minutes); its lines
// are lost like damaged ones, and their messages get new UIDs.
const maxUIDList = 256 << 20

// maxProblems bounds how many problems of one list are kept for the log.
const maxProblems = 20

func (l *uidList) problem(format string, args ...any) {
	if len(l.problems) < maxProblems {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	} else if len(l.problems) == maxProblems {
		l.problems = append(l.problems, "more problems not shown")
	}
}

// lineReader reads lines of at most max octets, skipping (and reporting)
// longer ones without buffering them, so a damaged or hostile list cannot
// make a reader allocate more than max.
type lineReader struct {
	br  *bufio.Reader
	off int64 // offset of the next line
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxUIDListLine)}
}

// next returns the next line without its LF and the offset it started at;
// long reports a line that was too long and skipped. The line is valid
// until the next call.
func (r *lineReader) next() (line []byte, off int64, long bool, err error) {
	off = r.off
	line, err = r.br.ReadSlice('\n')
	r.off += int64(len(line))
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			var more []byte
			more, err = r.br.ReadSlice('\n')
			r.off += int64(len(more))
		}
		if err == io.EOF {
			err = nil
		}
		return nil, off, true, err
	}
	if err == io.EOF {
		if len(line) == 0 {
			return nil, off, false, io.EOF
		}
		err = nil
	}
	return bytes.TrimSuffix(line, []byte("\n")), off, false, err
}

// parseUIDList reads a pop3kit-uidlist. It never fails on damage: a bad
// header or line is recorded in problems and skipped, and next is raised
// above every UID read, so that every UID that can still be read is kept
// and none is ever given twice. Only a read error is returned.
func parseUIDList(r io.Reader) (*uidList, error) {
	l := &uidList{entries: map[string]uidEntry{}}
	lr := newLineReader(r)
	head, _, long, err := lr.next()
	if err == io.EOF {
		l.problem("empty list")
		l.raiseNext(0)
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	version := 0
	if long {
		l.problem("line 1: header longer than %d octets", maxUIDListLine)
	} else {
		version = l.parseHeader(string(head))
	}
	l.version = version
	if err := l.readEntries(lr, "", func(line []byte) (uidEntry, error) { return parseUIDLine(line, version) }); err != nil {
		return nil, err
	}
	return l, nil
}

// readEntries reads the lines after the header with parse, skipping (and
// recording) lines that are too long or damaged and every line whose base
// name or UID an earlier line has: the first is kept, so no UID is ever
// given to two messages. It then raises next above every UID read.
func (l *uidList) readEntries(lr *lineReader, prefix string, parse func(line []byte) (uidEntry, error)) error {
	var maxUID uint32
	uids := make(map[uint32]bool)
	for n := 2; ; n++ {
		line, off, long, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if long {
			l.problem("%sline %d: longer than %d octets", prefix, n, maxUIDListLine)
			continue
		}
		e, err := parse(line)
		if err != nil {
			l.problem("%sline %d: %v", prefix, n, err)
			continue
		}
		base := baseName(e.name)
		if _, dup := l.entries[base]; dup || uids[e.uid] {
			l.problem("%sline %d: %.80q or uid %d listed twice; the first line is kept", prefix, n, base, e.uid)
			continue
		}
		uids[e.uid] = true
		e.off = off
		l.entries[base] = e
		maxUID = max(maxUID, e.uid)
	}
	l.raiseNext(maxUID)
	return nil
}

// parseHeader reads "pop3kit-uidlist VERSION validity=V next=N" and
// returns the version (0 when the header is damaged).
func (l *uidList) parseHeader(head string) int {
	f := strings.Fields(head)
	if len(f) != 4 || f[0] != uidListMagic || (f[1] != "1" && f[1] != "2") {
		l.problem("line 1: want %q header, got %.80q", uidListMagic+" 2 validity=V next=N", head)
		return 0
	}
	version := int(f[1][0] - '0')
	for _, kv := range f[2:] {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		switch {
		case err != nil:
			l.problem("line 1: %s: %v", k, err)
		case k == "validity" && n <= math.MaxUint32:
			l.validity = uint32(n)
		case k == "next" && n <= uidExhausted:
			l.next = n
		case k == "validity" || k == "next":
			l.problem("line 1: %s=%d out of range", k, n)
		default:
			l.problem("line 1: unknown field %q", k)
		}
	}
	return version
}

// uidExhausted is next once UID 2^32-1 has been given: no UID is left.
const uidExhausted = math.MaxUint32 + 1

// raiseNext makes next greater than every UID read, so a UID is never
// given twice, even when the header was lost; and gives the list a
// UIDVALIDITY when the header lost it.
func (l *uidList) raiseNext(maxUID uint32) {
	if l.next <= uint64(maxUID) {
		if l.next != 0 {
			l.problem("next=%d is not above uid %d; raised", l.next, maxUID)
		}
		l.next = uint64(maxUID) + 1
	}
	if l.validity == 0 {
		l.problem("no UIDVALIDITY; a new one is chosen")
		l.validity = uint32(time.Now().Unix())
	}
}

// take returns the next UID, or false when none is left.
func (l *uidList) take() (uint32, bool) {
	if l.next == 0 || l.next >= uidExhausted {
		return 0, false
	}
	uid := uint32(l.next)
	l.next++
	return uid, true
}

// parseUIDLine reads "uid exact storage name" (version 2: the name
// escaped; version 1 or a damaged header: the name as is, without flags).
func parseUIDLine(line []byte, version int) (uidEntry, error) {
	var f [4][]byte
	rest := line
	for i := range 3 {
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			return uidEntry{}, errors.New("want uid exact storage name")
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	f[3] = rest
	uid, err1 := strconv.ParseUint(string(f[0]), 10, 32)
	exact, err2 := strconv.ParseInt(string(f[1]), 10, 64)
	storage, err3 := strconv.ParseInt(string(f[2]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || uid == 0 || exact < -1 || storage < -1 {
		return uidEntry{}, errors.New("bad number")
	}
	var name string
	if version == 1 {
		name = string(f[3])
	} else {
		var ok bool
		if name, ok = unescapeName(f[3]); !ok {
			return uidEntry{}, errors.New("bad escape in the file name")
		}
	}
	if !validFileName(name) {
		return uidEntry{}, fmt.Errorf("%.80q is not a file name", name)
	}
	return uidEntry{uid: uint32(uid), exact: exact, storage: storage, name: name}, nil
}

// validFileName reports whether name can be one entry of a directory:
// not empty, no "/", no NUL, not "." or "..", at most 255 octets.
func validFileName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 &&
		!strings.ContainsAny(name, "/\x00")
}

// escapeName appends name to b with every octet ≤ 0x20, 0x7F and "%"
// written as %XX, so the name is one space-free, line-free field.
func escapeName(b []byte, name string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c == 0x7f || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// unescapeName reverses escapeName; it refuses a malformed escape.
func unescapeName(s []byte) (string, bool) {
	if bytes.IndexByte(s, '%') < 0 {
		return string(s), true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(string(s[i+1:i+3]), 16, 8)
		if err != nil {
			return "", false
		}
		out = append(out, byte(v))
		i += 2
	}
	return string(out), true
}

// write writes the list in UID order and records each line's offset in
// the entries (the session reads names back from there).
func (l *uidList) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var off int64
	line := fmt.Appendf(nil, "%s %d validity=%d next=%d\n", uidListMagic, uidListVersion, l.validity, l.next)
	bw.Write(line)
	off += int64(len(line))
	bases := make([]string, 0, len(l.entries))
	for b := range l.entries {
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return l.entries[bases[i]].uid < l.entries[bases[j]].uid })
	for _, b := range bases {
		e := l.entries[b]
		line = line[:0]
		line = strconv.AppendUint(line, uint64(e.uid), 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, e.exact, 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, e.storage, 10)
		line = append(line, ' ')
		line = escapeName(line, e.name)
		line = append(line, '\n')
		e.off = off
		l.entries[b] = e
		bw.Write(line)
		off += int64(len(line))
	}
	return bw.Flush()
}

// parseDovecotUIDList reads a Dovecot dovecot-uidlist (versions 1 and 3)
// into a UID list without sizes (they are measured later): the header
// gives UIDVALIDITY and the next UID, each line "uid [fields] :filename"
// (version 3) or "uid filename" (version 1). Damaged lines are skipped and
// recorded, as in parseUIDList; a header that cannot be read is an error,
// because UIDVALIDITY is part of every unique-id Dovecot gave.
func parseDovecotUIDList(r io.Reader) (*uidList, error) {
	lr := newLineReader(r)
	first, _, long, err := lr.next()
	if err == io.EOF {
		return nil, errors.New("dovecot-uidlist: empty")
	}
	if err != nil {
		return nil, err
	}
	if long {
		return nil, errors.New("dovecot-uidlist: line 1: too long")
	}
	head := strings.Fields(string(first))
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
		l.validity, l.next = uint32(v), n
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
				l.next = n
			}
		}
	default:
		return nil, fmt.Errorf("dovecot-uidlist: version %q not understood", head[0])
	}
	v3 := head[0] == "3"
	if err := l.readEntries(lr, "dovecot-uidlist: ", func(b []byte) (uidEntry, error) { return parseDovecotLine(string(b), v3) }); err != nil {
		return nil, err
	}
	return l, nil
}

// parseDovecotLine reads one line of a dovecot-uidlist: "uid [fields]
// :filename" in version 3, "uid filename" in version 1.
func parseDovecotLine(line string, v3 bool) (uidEntry, error) {
	var uidText, name string
	if v3 {
		left, right, ok := strings.Cut(line, " :")
		if !ok {
			return uidEntry{}, errors.New(`no " :" before the file name`)
		}
		uidText, _, _ = strings.Cut(left, " ")
		name = right
	} else {
		f := strings.Fields(line)
		if len(f) != 2 {
			return uidEntry{}, errors.New("want uid filename")
		}
		uidText, name = f[0], f[1]
	}
	uid, err := strconv.ParseUint(uidText, 10, 32)
	if err != nil || uid == 0 || !validFileName(name) {
		return uidEntry{}, errors.New("bad uid or file name")
	}
	return uidEntry{uid: uint32(uid), exact: -1, storage: -1, name: name}, nil
}

// baseName returns a Maildir file name without its info part (":2,FLAGS").
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// newUIDList starts a list for a maildrop that has none.
func newUIDList() *uidList {
	return &uidList{validity: uint32(time.Now().Unix()), next: 1, entries: map[string]uidEntry{}}
}
