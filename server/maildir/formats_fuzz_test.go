package maildir

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/stretchr/testify/assert"
)

// name is what pop3d reads from a Maildir file name.
type name struct {
	Base    string // the name without ":2,FLAGS"
	Storage int64  // the ,S= field, or -1
	Exact   int64  // the ,W= field, or -1
}

// parseName reads a Maildir file name as the store does.
func parseName(n string) name {
	b := baseName(n)
	return name{Base: b, Storage: sizeField(b, "S"), Exact: sizeField(b, "W")}
}

// TestSignedSizeField: found by FuzzMaildirName
// (testdata/fuzz/FuzzMaildirName/0a1a54bdb18ba3a1): a size field with a
// sign is not a size.
func TestSignedSizeField(t *testing.T) {
	assert.Equal(t, name{Base: "x,S=+0,W=12", Storage: -1, Exact: 12}, parseName("x,S=+0,W=12:2,S"))
}

// FuzzMaildirName reads arbitrary Maildir file names: the base name is the
// name before ":" and the size fields are -1 or what the name says.
func FuzzMaildirName(f *testing.F) {
	for _, s := range []string{"1764100000.M1P2.host,S=1480,W=1520:2,S", "x:2,", "a,S=12", "a,W=-1", ",S=,W=", "a,S=99999999999999999999"} {
		f.Add(s)
	}
	fuzzbound.Fuzz(f, func(t *testing.T, name string) {
		m := parseName(name)
		if strings.Contains(m.Base, ":") || !strings.HasPrefix(name, m.Base) {
			t.Fatalf("%q: base %q", name, m.Base)
		}
		for _, f := range []struct {
			key string
			got int64
		}{{"S", m.Storage}, {"W", m.Exact}} {
			if f.got < -1 {
				t.Fatalf("%q: %s=%d", name, f.key, f.got)
			}
			if f.got >= 0 {
				// The first ,S= (or ,W=) field holds exactly these digits.
				i := strings.Index(m.Base, ","+f.key+"=")
				v, _, _ := strings.Cut(m.Base[i+3:], ",")
				if strings.TrimLeft(v, "0123456789") != "" || strings.TrimLeft(v, "0") != strings.TrimLeft(fmt.Sprint(f.got), "0") {
					t.Fatalf("%q: %s=%d is not what the name says (%q)", name, f.key, f.got, v)
				}
			}
		}
	})
}

// FuzzUIDList parses arbitrary pop3kit-uidlist files. Damage is never
// fatal: whatever is read keeps its UID, every UID is positive, below the
// next UID and given to one message only; the list writes back to a clean
// list (no problems) that parses to the same. A list the quick reading
// (readQuick) takes lists what the whole reading does: the same messages,
// sizes, line offsets and names.
func FuzzUIDList(f *testing.F) {
	f.Add([]byte("pop3kit-uidlist 2 validity=7 next=4\n1 5 4 1.a:2,\n2 6 5 2.b%20c:2,S\n3 7 6 3.c:2,\n-2\n=dirs 1 2 3 4\n"))
	f.Add([]byte("pop3kit-uidlist 2 validity=7 next=9\n1 5 4 1.a:2,\n-1\n2 5 4 1.a:2,S\n=dirs 1 2 3 4\n=dirs 0 0 0 0\n"))
	f.Add([]byte("pop3kit-uidlist 2 validity=1764100000 next=43\n41 1520 1480 a,S=1480:2,\n42 880 862 b%20c:2,S\n"))
	f.Add([]byte("pop3kit-uidlist 1 validity=1764100000 next=43\n41 1520 1480 a,S=1480\n42 880 862 b\n"))
	f.Add([]byte("pop3kit-uidlist 1 validity=1 next=1\n"))
	f.Add([]byte("pop3kit-uidlist 1 validity=1 next=2\n5 1 1 x\n"))
	f.Add([]byte("garbage\n4294967295 1 1 x\n7 1 1 x\n7 1 1 y\n"))
	fuzzbound.Fuzz(f, func(t *testing.T, b []byte) {
		l, err := parseUIDList(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%q: a damaged list is repaired, not refused: %v", b, err)
		}
		uids := map[uint32]string{}
		for base, e := range l.entries {
			if e.uid == 0 || uint64(e.uid) >= l.next {
				t.Fatalf("%q: uid %d with next=%d", b, e.uid, l.next)
			}
			if other, dup := uids[e.uid]; dup {
				t.Fatalf("%q: uid %d given to %q and %q", b, e.uid, other, base)
			}
			uids[e.uid] = base
		}
		if q, ok, err := readQuick(bytes.NewReader(b)); err != nil {
			t.Fatalf("%q: readQuick: %v", b, err)
		} else if ok {
			if len(l.problems) > 0 || q.stamp != l.stamp || q.validity != l.validity || len(q.msgs) != len(l.entries) {
				t.Fatalf("%q: quick reading %+v, whole reading %+v", b, q, l)
			}
			for i, m := range q.msgs {
				e := l.entries[baseName(uids[m.uid])]
				if e.uid != m.uid || e.exact != m.exact || e.storage != m.storage || int64(m.off) != e.off {
					t.Fatalf("%q: message %d: quick %+v, whole %+v", b, i, m, e)
				}
				if q.names != nil && q.names[i] != e.name {
					t.Fatalf("%q: message %d: quick name %q, whole %q", b, i, q.names[i], e.name)
				}
			}
		}
		var out bytes.Buffer
		if err := l.write(&out); err != nil {
			t.Fatal(err)
		}
		again, err := parseUIDList(bytes.NewReader(out.Bytes()))
		if err != nil || len(again.problems) > 0 {
			t.Fatalf("%q: written back as %q, which does not parse cleanly: %v %v", b, out.String(), err, again.problems)
		}
		if !reflect.DeepEqual(l.entries, again.entries) || l.next != again.next || l.validity != again.validity {
			t.Fatalf("%q: round trip changed %+v into %+v", b, l, again)
		}
	})
}

// FuzzDovecotUIDList parses arbitrary dovecot-uidlist files: every UID of
// an accepted list is positive and below the next UID.
func FuzzDovecotUIDList(f *testing.F) {
	f.Add([]byte("3 V1234567890 N100 Gabc\n41 :a\n57 W64 S57 :b:2,S\n"))
	f.Add([]byte("1 1234 5\n1 a\n2 b:2,\n"))
	fuzzbound.Fuzz(f, func(t *testing.T, b []byte) {
		l, err := parseDovecotUIDList(bytes.NewReader(b))
		if err != nil {
			return
		}
		for name, e := range l.entries {
			if e.uid == 0 || uint64(e.uid) >= l.next || strings.Contains(name, ":") {
				t.Fatalf("%q: %q uid %d next %d", b, name, e.uid, l.next)
			}
		}
	})
}
