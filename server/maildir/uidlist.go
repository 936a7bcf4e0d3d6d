package maildir

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
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
//
// Two kinds of lines may follow the messages' lines, appended to the list
// in place (the lines before them never change, so a session reading its
// snapshot by offset is not disturbed):
//
//	-41
//	=dirs 1835010 1764100003123456789 1835011 1764100003123456789
//
// "-UID" says the message was removed at UPDATE: its line no longer
// counts, and the whole list is not rewritten for it. "=dirs" records the
// inode and change time (ctime, ns) of cur/ and new/ at a listing that
// found the list true to them; the last such line counts. A login that
// finds both directories as recorded has nothing to list: the list is the
// maildrop, and it is read alone (see readQuick). Either kind of line is
// dropped when the list is next written whole.
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
	// dovecot: the list mirrors a dovecot-uidlist, whose last UID is
	// 2^32-2 (dovecotMaxUID).
	dovecot bool
	// stamp is the last "=dirs" line read, or the one to write; zero
	// when none.
	stamp dirStamp
	// debris counts the appended lines read ("-UID", "=dirs"): the list
	// is written whole again when they pile up.
	debris int
}

// dirStamp tells whether cur/ and new/ changed since a listing: each
// directory's inode and change time (ctime) in nanoseconds. Every name
// added to, removed from or renamed in a directory changes its change
// time, provided the clock has moved on since: see settled.
type dirStamp struct {
	curIno, newIno     uint64
	curCtime, newCtime int64
}

// stampPrefix starts a "=dirs" line.
const stampPrefix = "=dirs "

// appendLine appends s's "=dirs" line to b.
func (s dirStamp) appendLine(b []byte) []byte {
	b = append(b, stampPrefix...)
	b = strconv.AppendUint(b, s.curIno, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.curCtime, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.newIno, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.newCtime, 10)
	return append(b, '\n')
}

// parseStamp reads a "=dirs" line (without its LF).
func parseStamp(line []byte) (dirStamp, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(stampPrefix))
	if !ok {
		return dirStamp{}, false
	}
	f := bytes.Fields(rest)
	if len(f) != 4 {
		return dirStamp{}, false
	}
	var s dirStamp
	var err [4]error
	s.curIno, err[0] = strconv.ParseUint(string(f[0]), 10, 64)
	s.curCtime, err[1] = strconv.ParseInt(string(f[1]), 10, 64)
	s.newIno, err[2] = strconv.ParseUint(string(f[2]), 10, 64)
	s.newCtime, err[3] = strconv.ParseInt(string(f[3]), 10, 64)
	if errors.Join(err[:]...) != nil {
		return dirStamp{}, false
	}
	return s, true // all zero: no stamp (a later listing found none to record)
}

// parseTombstone reads a "-UID BASE" line (BASE escaped as in a message's
// line).
func parseTombstone(line []byte) (uid uint32, base string, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte("-"))
	if !ok {
		return 0, "", false
	}
	num, esc, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return 0, "", false
	}
	n, err := strconv.ParseUint(string(num), 10, 32)
	if err != nil || n == 0 {
		return 0, "", false
	}
	if base, ok = unescapeName(esc); !ok || !validFileName(base) || base != baseName(base) {
		return 0, "", false
	}
	return uint32(n), base, true
}

// appendTombstone appends the "-UID BASE" line of a removed message.
func appendTombstone(b []byte, uid uint32, base string) []byte {
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(uid), 10)
	b = append(b, ' ')
	b = escapeName(b, base)
	return append(b, '\n')
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

// lineReader reads lines of at most maxUIDListLine octets, skipping (and
// reporting) longer ones without buffering more than its buffer, so a
// damaged or hostile list cannot make a reader allocate without bound.
// The buffer is larger than a line, so that a list of 100,000 lines is
// read in a hundred system calls, not thousands; it comes from a pool
// (release gives it back).
type lineReader struct {
	br  *bufio.Reader
	off int64 // offset of the next line
	// cut: the line last returned ended the file without an LF. Every
	// line pop3d writes ends with one: such a line is what a crash left
	// of an append, and is not believed.
	cut bool
}

// lineBuffer is the buffer of a lineReader.
const lineBuffer = 64 << 10

var lineReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, lineBuffer) }}

func newLineReader(r io.Reader) *lineReader {
	br := lineReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return &lineReader{br: br}
}

// release gives the buffer back; the reader is not used after it.
func (r *lineReader) release() {
	r.br.Reset(nil)
	lineReaders.Put(r.br)
	r.br = nil
}

// next returns the next line without its LF and the offset it started at;
// long reports a line that was too long and skipped. The line is valid
// until the next call.
func (r *lineReader) next() (line []byte, off int64, long bool, err error) {
	off = r.off
	line, err = r.br.ReadSlice('\n')
	r.cut = err == io.EOF && len(line) > 0
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
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) > maxUIDListLine {
		return nil, off, true, err
	}
	return line, off, false, err
}

// parseUIDList reads a pop3kit-uidlist. It never fails on damage: a bad
// header or line is recorded in problems and skipped, and next is raised
// above every UID read, so that every UID that can still be read is kept
// and none is ever given twice. Only a read error is returned.
func parseUIDList(r io.Reader) (*uidList, error) {
	l := &uidList{entries: map[string]uidEntry{}}
	lr := newLineReader(r)
	defer lr.release()
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
	uids := make(map[uint32]string) // uid → base; "" once removed
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
		if lr.cut {
			l.problem("%sline %d: cut short (no end of line)", prefix, n)
			continue
		}
		if uid, base, ok := parseTombstone(line); ok {
			// The message was removed: its line no longer counts; its
			// UID stays taken. A tombstone of another message than the
			// one this list gives the UID to (a list started anew since
			// the session that removed it listed) is ignored.
			l.debris++
			if b := uids[uid]; b != "" && b == base {
				delete(l.entries, base)
				uids[uid] = ""
			}
			continue
		}
		if st, ok := parseStamp(line); ok {
			l.debris++
			l.stamp = st
			continue
		}
		if len(line) > 0 && (line[0] == '-' || line[0] == '=') {
			l.problem("%sline %d: %.80q is not a removal or a stamp", prefix, n, line)
			continue
		}
		e, err := parse(line)
		if err != nil {
			l.problem("%sline %d: %v", prefix, n, err)
			continue
		}
		base := baseName(e.name)
		if _, dup := l.entries[base]; dup || uids[e.uid] != "" {
			l.problem("%sline %d: %.80q or uid %d listed twice; the first line is kept", prefix, n, base, e.uid)
			continue
		}
		if _, gone := uids[e.uid]; gone {
			l.problem("%sline %d: uid %d was removed; its line is not kept", prefix, n, e.uid)
			continue
		}
		uids[e.uid] = base
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
	if l.next == 0 || l.next >= uidExhausted || l.dovecot && l.next > dovecotMaxUID {
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
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
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
	if l.stamp != (dirStamp{}) {
		bw.Write(l.stamp.appendLine(line[:0]))
	}
	return bw.Flush()
}

// A dovecot-uidlist, as Dovecot 2.3 writes it (maildir-uidlist.c):
//
//	3 V1764100000 N43 G0123456789abcdef0123456789abcdef
//	41 :1764100000.M1P2.host,S=1480
//	42 W900 GABCD :1764100001.M3P4.host
//
// The header is the version, then fields of one letter and a value: V the
// UIDVALIDITY, N the next UID, G the mailbox GUID, others Dovecot may add.
// Each line after it is a UID, extension fields of one upper-case letter
// and a value (S and W sizes, G a GUID, P a POP3 UIDL, O a POP3 order),
// and " :" followed by the file's base name (without ":2,FLAGS"). UIDs
// ascend. Version 1 (Dovecot 1.0, Courier's courierimapuiddb) is
// "1 VALIDITY NEXT" and "UID NAME". Dovecot throws away a list with a line
// it cannot read (and renumbers every message), so pop3d writes only lines
// Dovecot reads.

// dovecotList is a dovecot-uidlist as read, kept whole so that pop3d can
// write it back with everything it does not use as it was: header fields
// other than V and N, and each record's extension fields.
type dovecotList struct {
	validity uint32
	next     uint64 // as uidList.next
	head     []string
	recs     []dovecotRec // in file order; written in UID order
	problems []string
}

// dovecotRec is one message of a dovecot-uidlist.
type dovecotRec struct {
	uid  uint32
	ext  string // the extension fields as they were, "" when none
	base string
}

func (l *dovecotList) problem(format string, args ...any) {
	if len(l.problems) < maxProblems {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	} else if len(l.problems) == maxProblems {
		l.problems = append(l.problems, "more problems not shown")
	}
}

// errDovecotDamaged: a dovecot-uidlist whose header cannot be read.
var errDovecotDamaged = errors.New("damaged")

// dovecotMaxUID is the highest UID Dovecot accepts in its list: a line
// with 2^32-1 is damage to it (maildir_uidlist_next).
const dovecotMaxUID = math.MaxUint32 - 1

// parseDovecotList reads a dovecot-uidlist. A header that cannot be read
// is an error: UIDVALIDITY is part of every unique-id Dovecot gave, and a
// guess would change them all. A record that cannot be read (no UID, a
// file name with "/" or that is no file name, a line longer than
// maxUIDListLine) is skipped and recorded in problems; so is a second
// record of a base name or a UID, the first being kept. next is raised
// above every UID read, and above every number that starts a skipped
// line, so that no UID Dovecot may have given is given again. The names
// read are only ever compared with names pop3d lists itself: none is
// opened.
func parseDovecotList(r io.Reader) (*dovecotList, error) {
	lr := newLineReader(r)
	defer lr.release()
	first, _, long, err := lr.next()
	if err == io.EOF {
		return nil, fmt.Errorf("dovecot-uidlist: empty: %w", errDovecotDamaged)
	}
	if err != nil {
		return nil, err
	}
	if long {
		return nil, fmt.Errorf("dovecot-uidlist: line 1: too long: %w", errDovecotDamaged)
	}
	head := strings.Fields(string(first))
	l := &dovecotList{}
	if len(head) < 3 {
		return nil, fmt.Errorf("dovecot-uidlist: line 1: short header: %w", errDovecotDamaged)
	}
	var haveV, haveN bool
	switch head[0] {
	case "1":
		v, err1 := strconv.ParseUint(head[1], 10, 32)
		n, err2 := strconv.ParseUint(head[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("dovecot-uidlist: line 1: bad header: %w", errDovecotDamaged)
		}
		l.validity, l.next, haveV, haveN = uint32(v), n, true, true
	case "3":
		for _, f := range head[1:] {
			switch f[0] {
			case 'V', 'N':
				n, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return nil, fmt.Errorf("dovecot-uidlist: line 1: bad %c: %w", f[0], errDovecotDamaged)
				}
				if f[0] == 'V' {
					l.validity, haveV = uint32(n), true
				} else {
					l.next, haveN = n, true
				}
			default:
				l.head = append(l.head, f)
			}
		}
	default:
		return nil, fmt.Errorf("dovecot-uidlist: version %.10q not understood: %w", head[0], errDovecotDamaged)
	}
	if !haveV || !haveN || l.validity == 0 || l.next == 0 {
		return nil, fmt.Errorf("dovecot-uidlist: line 1: no UIDVALIDITY or next UID: %w", errDovecotDamaged)
	}
	v3 := head[0] == "3"
	bases := map[string]bool{}
	uids := map[uint32]bool{}
	var maxUID uint64
	for n := 2; ; n++ {
		line, _, long, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if long {
			l.problem("dovecot-uidlist: line %d: longer than %d octets", n, maxUIDListLine)
			continue
		}
		rec, err := parseDovecotRec(string(line), v3)
		if err != nil {
			l.problem("dovecot-uidlist: line %d: %v", n, err)
			maxUID = max(maxUID, leadingUID(line))
			continue
		}
		if bases[rec.base] || uids[rec.uid] {
			l.problem("dovecot-uidlist: line %d: %.80q or uid %d listed twice; the first line is kept", n, rec.base, rec.uid)
			continue
		}
		bases[rec.base], uids[rec.uid] = true, true
		l.recs = append(l.recs, rec)
		maxUID = max(maxUID, uint64(rec.uid))
	}
	if l.next <= maxUID {
		// Not damage: Dovecot's LDA and IMAP append records for new
		// messages without rewriting the header, whose N then lags
		// behind them until the list is next rewritten; Dovecot's own
		// reader raises it the same way.
		l.next = maxUID + 1
	}
	return l, nil
}

// leadingUID returns the number a damaged line starts with, when it could
// be a UID Dovecot gave, or 0.
func leadingUID(line []byte) uint64 {
	end := 0
	for end < len(line) && end < 11 && line[end] >= '0' && line[end] <= '9' {
		end++
	}
	n, err := strconv.ParseUint(string(line[:end]), 10, 32)
	if err != nil || n > dovecotMaxUID {
		return 0 // Dovecot never gave it
	}
	return n
}

// parseDovecotRec reads one record: "uid [fields] :basename" in version 3,
// "uid filename" in version 1, as Dovecot reads them (a UID of digits,
// below 2^32-1; fields up to one that starts with ":"; a name with no
// "/"). pop3d also refuses a name that cannot be a directory entry.
func parseDovecotRec(line string, v3 bool) (dovecotRec, error) {
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	uid, err := strconv.ParseUint(line[:i], 10, 32)
	if err != nil || uid == 0 || uid > dovecotMaxUID || i == len(line) || line[i] != ' ' {
		return dovecotRec{}, errors.New("no uid")
	}
	rest := strings.TrimLeft(line[i:], " ")
	var ext, name string
	if v3 {
		for rest != "" && rest[0] != ':' {
			j := strings.IndexByte(rest, ' ')
			if j < 0 {
				j = len(rest)
			}
			rest = strings.TrimLeft(rest[j:], " ")
		}
		if rest == "" {
			return dovecotRec{}, errors.New(`no " :" before the file name`)
		}
		ext = strings.TrimRight(line[i+1:len(line)-len(rest)], " ")
		name = rest[1:]
	} else {
		name = rest
	}
	if strings.Contains(name, "/") || !validFileName(name) {
		return dovecotRec{}, fmt.Errorf("%.80q is not a file name", name)
	}
	base := baseName(name)
	if !validFileName(base) {
		return dovecotRec{}, fmt.Errorf("%.80q is not a file name", name)
	}
	return dovecotRec{uid: uint32(uid), ext: ext, base: base}, nil
}

// write writes the list as Dovecot 2.3 does, version 3: the header with V
// and N first and the other fields as read, then a line a record in UID
// order, its extension fields as read.
func (l *dovecotList) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	next := min(l.next, math.MaxUint32)
	fmt.Fprintf(bw, "3 V%d N%d", l.validity, next)
	for _, f := range l.head {
		bw.WriteString(" " + f)
	}
	bw.WriteByte('\n')
	recs := slices.Clone(l.recs)
	slices.SortFunc(recs, func(a, b dovecotRec) int { return cmp.Compare(a.uid, b.uid) })
	var line []byte
	for _, r := range recs {
		line = strconv.AppendUint(line[:0], uint64(r.uid), 10)
		if r.ext != "" {
			line = append(line, ' ')
			line = append(line, r.ext...)
		}
		line = append(line, " :"...)
		line = append(line, r.base...)
		line = append(line, '\n')
		bw.Write(line)
	}
	return bw.Flush()
}

// parseDovecotUIDList reads a dovecot-uidlist into a UID list without
// sizes (they are measured later), to import it.
func parseDovecotUIDList(r io.Reader) (*uidList, error) {
	dl, err := parseDovecotList(r)
	if err != nil {
		return nil, err
	}
	l := &uidList{validity: dl.validity, next: dl.next, entries: make(map[string]uidEntry, len(dl.recs)), problems: dl.problems}
	for _, r := range dl.recs {
		l.entries[r.base] = uidEntry{uid: r.uid, exact: -1, storage: -1, name: r.base}
	}
	return l, nil
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

// quickList is a UID list read for a login that finds cur/ and new/ as
// its "=dirs" line recorded them: the messages straight from their lines,
// with no map and no file name (but those of a maildrop small enough to
// hold them).
type quickList struct {
	validity uint32
	stamp    dirStamp
	msgs     []dropMsg
	// names are the messages' names, by index, when there are at most
	// maxNamesHeld lines; nil otherwise.
	names []string
}

// readQuick reads a list for the quick login, as parseUIDList would read
// it: ok is false whenever the whole reading would find something to
// repair or could read it otherwise — a header or line that is not a clean
// version 2 one, a line cut short, UIDs out of order or at next, a base
// name on two lines, a message line after a removal or a stamp, a size not
// yet measured, no UIDVALIDITY — and when there is no "=dirs" line. It
// holds no name but those of a small maildrop: a base name is checked
// against the others, and against removals, by a 64-bit hash.
func readQuick(r io.Reader) (q *quickList, ok bool, err error) {
	lr := newLineReader(r)
	defer lr.release()
	head, _, long, err := lr.next()
	if err != nil || long || lr.cut {
		if err == io.EOF {
			err = nil
		}
		return nil, false, err
	}
	var h uidList
	if h.parseHeader(string(head)) != uidListVersion || len(h.problems) > 0 || h.validity == 0 || h.next == 0 {
		return nil, false, nil
	}
	q = &quickList{validity: h.validity}
	var bases []uint64 // by message: the hash of its base name, escaped
	type removal struct {
		uid  uint32
		base uint64
	}
	var removed []removal
	var last uint32
	debris := false
	for {
		line, off, long, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if long || lr.cut || len(line) == 0 {
			return nil, false, nil
		}
		if c := line[0]; c >= '0' && c <= '9' {
			m, name, ok := quickLine(line)
			if !ok || debris || m.uid <= last || uint64(m.uid) >= h.next || off > math.MaxUint32 || !validEscapedName(name) {
				return nil, false, nil
			}
			last = m.uid
			m.off = uint32(off)
			q.msgs = append(q.msgs, m)
			bases = append(bases, hashBase(name))
			if len(q.msgs) <= maxNamesHeld {
				n, _ := unescapeName(name)
				q.names = append(q.names, n)
			}
			continue
		}
		debris = true
		if uid, base, ok := parseTombstone(line); ok {
			removed = append(removed, removal{uid, hashBase(escapeName(nil, base))})
			continue
		}
		st, ok := parseStamp(line)
		if !ok {
			return nil, false, nil
		}
		q.stamp = st
	}
	if q.stamp == (dirStamp{}) {
		return nil, false, nil
	}
	if len(q.msgs) > maxNamesHeld {
		q.names = nil
	}
	// A removal counts where the UID is the base's (parseUIDList).
	gone := make(map[int]bool, len(removed))
	for _, rm := range removed {
		i, found := slices.BinarySearchFunc(q.msgs, rm.uid, func(m dropMsg, uid uint32) int { return cmp.Compare(m.uid, uid) })
		if found && bases[i] == rm.base {
			gone[i] = true
		}
	}
	sorted := slices.Clone(bases)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, false, nil // a base name on two lines
		}
	}
	if len(gone) > 0 {
		kept := 0
		for i, m := range q.msgs {
			if gone[i] {
				continue
			}
			q.msgs[kept] = m
			if q.names != nil {
				q.names[kept] = q.names[i]
			}
			kept++
		}
		q.msgs = q.msgs[:kept]
		if q.names != nil {
			q.names = q.names[:kept]
		}
	}
	if cap(q.msgs) > len(q.msgs)+len(q.msgs)/16 {
		// The session holds the listing as long as it lasts: not the
		// slack of the appends (up to a quarter on large lists).
		q.msgs = append(make([]dropMsg, 0, len(q.msgs)), q.msgs...)
	}
	return q, true, nil
}

// hashBase is the FNV-1a hash of the base name (baseName) of what an
// escaped file name unescapes to, made without unescaping it into memory.
// Call it on a name validEscapedName accepts.
func hashBase(escaped []byte) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' && i+2 < len(escaped) {
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
		}
		if c == ':' {
			break
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// validEscapedName reports whether an escaped name unescapes to a valid
// file name (unescapeName, then validFileName), without making it.
func validEscapedName(b []byte) bool {
	n := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '%' {
			if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
				return false
			}
			c = unhex(b[i+1])<<4 | unhex(b[i+2])
			i += 2
		}
		if c == '/' || c == 0 {
			return false
		}
		n++
	}
	if n == 0 || n > 255 {
		return false
	}
	if n <= 2 { // "." or "..", written or escaped
		u, _ := unescapeName(b)
		return u != "." && u != ".."
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// quickLine reads "uid exact storage name" of a version 2 list: the
// numbers, and the name as written (escaped).
func quickLine(line []byte) (m dropMsg, name []byte, ok bool) {
	var n [3]uint64
	rest := line
	for i := range n {
		j := bytes.IndexByte(rest, ' ')
		if j < 1 || j > 19 {
			return dropMsg{}, nil, false
		}
		for _, c := range rest[:j] {
			if c < '0' || c > '9' {
				return dropMsg{}, nil, false
			}
			n[i] = n[i]*10 + uint64(c-'0')
		}
		rest = rest[j+1:]
	}
	if n[0] == 0 || n[0] > math.MaxUint32 || n[1] > math.MaxInt64 || n[2] > math.MaxInt64 || len(rest) == 0 {
		return dropMsg{}, nil, false
	}
	return dropMsg{uid: uint32(n[0]), exact: int64(n[1]), storage: int64(n[2])}, rest, true
}
