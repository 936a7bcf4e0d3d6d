package pop3fuzz

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Tree is a maildrop as FuzzMaildropTree's input describes it: how the
// user's directory is reached, what sits in cur/, new/ and tmp/, the raw
// bytes of the UID lists, and which messages the session marks deleted.
type Tree struct {
	Profile uint8   // index into pop3gen.ProfileNames, modulo its length
	UserDir UserDir // how ROOT/f is reached
	Dele    uint32  // bit i: DELE the (i mod 32)+1st identified message
	Entries []Entry // in creation order
}

// UserDir says what ROOT/f is.
type UserDir uint8

const (
	UserDirReal      UserDir = iota // a directory holding the entries
	UserDirToOther                  // a symlink to user g's maildrop
	UserDirToOutside                // a symlink to an empty directory outside the mail root
	numUserDirs
)

// Kind is the type of one entry of the tree.
type Kind uint8

const (
	KindFile     Kind = iota // a regular file: a message
	KindFIFO                 // a named pipe
	KindDir                  // a directory
	KindSymlink              // a symbolic link, to Target
	KindUIDList              // the raw bytes of pop3kit-uidlist or dovecot-uidlist
	KindHardlink             // a hard link to an earlier regular file (Index)
	numKinds
)

// Where is the subdirectory an entry goes in.
type Where uint8

const (
	New Where = iota
	Cur
	Tmp
	numWheres
)

func (w Where) String() string { return [...]string{"new", "cur", "tmp"}[w%numWheres] }

// Target is what a symlink points to.
type Target uint8

const (
	TargetSentinel    Target = iota // the sentinel outside the mail root, by absolute path
	TargetSentinelRel               // the sentinel, by a relative path climbing out of the root
	TargetOther                     // a message of another user (g)
	TargetInside                    // an earlier regular file of this maildrop (Index)
	TargetDangling                  // nothing
	TargetDevZero                   // /dev/zero: endless, outside the root
	numTargets
)

// Entry is one file of the tree.
type Entry struct {
	Kind   Kind
	Where  Where
	Name   []byte // sanitised when the tree is built: no "/" or NUL
	Body   []byte // a message's octets after its X-Tree-Id line, or a UID list's bytes
	Target Target // KindSymlink
	Index  uint8  // KindSymlink to TargetInside, KindHardlink: which earlier file; KindUIDList: 0 pop3kit, 1 dovecot
}

// Caps on what one input builds, so that a case stays fast: entries,
// octets of a message body, of a UID list and of a name (file systems take
// 255).
const (
	maxTreeEntries = 40
	maxTreeBody    = 4096
	maxTreeList    = 8192
	maxTreeName    = 200
)

// DecodeTree reads a tree from fuzz input. Every input is a tree: a short
// input simply ends the list of entries. Layout: a settings octet (profile
// in bits 0–1, user directory in bits 2–3), the DELE mask as 4 octets big
// endian, then entries: a kind octet, then
//
//	file:     where, name length, name, body length (2 octets), body
//	fifo/dir: where, name length, name
//	symlink:  where, name length, name, target, index
//	uidlist:  which, body length (2 octets), body
//	hardlink: where, name length, name, index
func DecodeTree(b []byte) Tree {
	var t Tree
	r := reader{b: b}
	s := r.byte()
	t.Profile = s & 3
	t.UserDir = UserDir(((s >> 2) & 3) % uint8(numUserDirs))
	t.Dele = r.uint32()
	for !r.done() && len(t.Entries) < maxTreeEntries {
		e := Entry{Kind: Kind(r.byte() % uint8(numKinds))}
		switch e.Kind {
		case KindFile:
			e.Where, e.Name = Where(r.byte()%uint8(numWheres)), r.bytes(int(r.byte()))
			e.Body = r.bytes(min(int(r.uint16()), maxTreeBody))
		case KindFIFO, KindDir:
			e.Where, e.Name = Where(r.byte()%uint8(numWheres)), r.bytes(int(r.byte()))
		case KindSymlink:
			e.Where, e.Name = Where(r.byte()%uint8(numWheres)), r.bytes(int(r.byte()))
			e.Target, e.Index = Target(r.byte()%uint8(numTargets)), r.byte()
		case KindUIDList:
			e.Index = r.byte() % 2
			e.Body = r.bytes(min(int(r.uint16()), maxTreeList))
		case KindHardlink:
			e.Where, e.Name = Where(r.byte()%uint8(numWheres)), r.bytes(int(r.byte()))
			e.Index = r.byte()
		}
		t.Entries = append(t.Entries, e)
	}
	return t
}

// Encode writes the input that DecodeTree reads as t (seeds are written
// with it).
func (t Tree) Encode() []byte {
	out := []byte{t.Profile&3 | uint8(t.UserDir)<<2}
	out = binary.BigEndian.AppendUint32(out, t.Dele)
	for _, e := range t.Entries {
		out = append(out, uint8(e.Kind))
		switch e.Kind {
		case KindFile:
			out = append(out, uint8(e.Where), uint8(len(e.Name)))
			out = append(out, e.Name...)
			out = binary.BigEndian.AppendUint16(out, uint16(len(e.Body)))
			out = append(out, e.Body...)
		case KindFIFO, KindDir:
			out = append(out, uint8(e.Where), uint8(len(e.Name)))
			out = append(out, e.Name...)
		case KindSymlink:
			out = append(out, uint8(e.Where), uint8(len(e.Name)))
			out = append(out, e.Name...)
			out = append(out, uint8(e.Target), e.Index)
		case KindUIDList:
			out = append(out, e.Index)
			out = binary.BigEndian.AppendUint16(out, uint16(len(e.Body)))
			out = append(out, e.Body...)
		case KindHardlink:
			out = append(out, uint8(e.Where), uint8(len(e.Name)))
			out = append(out, e.Name...)
			out = append(out, e.Index)
		}
	}
	return out
}

// String describes the tree for failure messages.
func (t Tree) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %d, user dir %d, DELE mask %#x", t.Profile, t.UserDir, t.Dele)
	for i, e := range t.Entries {
		switch e.Kind {
		case KindFile:
			fmt.Fprintf(&b, "\n\t#%d file %s/%q (%d octets)", i, e.Where, e.Name, len(e.Body))
		case KindFIFO:
			fmt.Fprintf(&b, "\n\t#%d fifo %s/%q", i, e.Where, e.Name)
		case KindDir:
			fmt.Fprintf(&b, "\n\t#%d dir %s/%q", i, e.Where, e.Name)
		case KindSymlink:
			fmt.Fprintf(&b, "\n\t#%d symlink %s/%q -> target %d index %d", i, e.Where, e.Name, e.Target, e.Index)
		case KindUIDList:
			fmt.Fprintf(&b, "\n\t#%d uidlist %d: %q", i, e.Index, e.Body)
		case KindHardlink:
			fmt.Fprintf(&b, "\n\t#%d hard link %s/%q to regular file %d", i, e.Where, e.Name, e.Index)
		}
	}
	return b.String()
}

// reader reads fuzz input; past the end it returns zeros.
type reader struct {
	b []byte
	i int
}

func (r *reader) done() bool { return r.i >= len(r.b) }

func (r *reader) byte() uint8 {
	if r.done() {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *reader) uint16() uint16 { return uint16(r.byte())<<8 | uint16(r.byte()) }

func (r *reader) uint32() uint32 { return uint32(r.uint16())<<16 | uint32(r.uint16()) }

func (r *reader) bytes(n int) []byte {
	n = min(n, len(r.b)-r.i)
	if n <= 0 {
		return nil
	}
	r.i += n
	return r.b[r.i-n : r.i]
}
