package maildir

import "io"

// This file exports the parsers of the store's on-disk formats, so that
// the fuzz targets in fuzz/ can drive them.

// MaildirName is what pop3d reads from a Maildir file name.
type MaildirName struct {
	Base    string // the name without ":2,FLAGS"
	Storage int64  // the ,S= field, or -1
	Exact   int64  // the ,W= field, or -1
}

// ParseMaildirName reads a Maildir file name.
func ParseMaildirName(name string) MaildirName {
	b := baseName(name)
	return MaildirName{Base: b, Storage: sizeField(b, "S"), Exact: sizeField(b, "W")}
}

// UIDEntry is one message of a UID list.
type UIDEntry struct {
	UID            uint32
	Exact, Storage int64  // -1 when the list does not say (Dovecot's)
	Name           string // the file name as last seen
}

// UIDList is a parsed UID list: pop3kit's own or Dovecot's.
type UIDList struct {
	Validity uint32
	// Next is the UID the next message gets; 2^32 once every UID has
	// been given.
	Next    uint64
	Entries map[string]UIDEntry // by base name
	// Problems says what a damaged list lost or had repaired; the rest
	// of the list is kept.
	Problems []string
}

func export(l *uidList) *UIDList {
	out := &UIDList{Validity: l.validity, Next: l.next, Entries: map[string]UIDEntry{}, Problems: l.problems}
	for k, e := range l.entries {
		out.Entries[k] = UIDEntry{UID: e.uid, Exact: e.exact, Storage: e.storage, Name: e.name}
	}
	return out
}

// ParseUIDList reads a pop3kit-uidlist. Damage is not an error: what can
// be read is kept and Problems says what was not. Only a read error is
// returned.
func ParseUIDList(r io.Reader) (*UIDList, error) {
	l, err := parseUIDList(r)
	if err != nil {
		return nil, err
	}
	return export(l), nil
}

// WriteUIDList writes l in the pop3kit-uidlist format.
func WriteUIDList(w io.Writer, l *UIDList) error {
	in := &uidList{validity: l.Validity, next: l.Next, entries: map[string]uidEntry{}}
	for k, e := range l.Entries {
		in.entries[k] = uidEntry{uid: e.UID, exact: e.Exact, storage: e.Storage, name: e.Name}
	}
	return in.write(w)
}

// ParseDovecotUIDList reads a dovecot-uidlist.
func ParseDovecotUIDList(r io.Reader) (*UIDList, error) {
	l, err := parseDovecotUIDList(r)
	if err != nil {
		return nil, err
	}
	return export(l), nil
}
