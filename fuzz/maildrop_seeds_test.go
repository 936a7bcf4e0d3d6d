package pop3fuzz

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the named seeds of FuzzMaildropTree under testdata/fuzz")

// msg is a regular file entry.
func msg(where Where, name, body string) Entry {
	return Entry{Kind: KindFile, Where: where, Name: []byte(name), Body: []byte(body)}
}

// treeSeeds are FuzzMaildropTree's named seeds, one for each class of
// issue 11 (and a plain maildrop that must always pass). Each is written to
// testdata/fuzz/FuzzMaildropTree/<name>; TestMaildropTreeSeeds replays the
// files.
var treeSeeds = []struct {
	name string
	why  string
	tree Tree
}{
	{"plain", "an ordinary maildrop: the oracles' own sanity", Tree{Profile: 2, Dele: 0b010, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\nhello\n"),
		msg(Cur, "1700000001.M2P1.host:2,", "Subject: two\n\n.dot\n"),
		msg(New, "1700000002.M3P1.host", "Subject: three\n\nbye"),
	}}},
	{"fifo-in-cur", "a FIFO in cur/ hangs every login (issue 11: special files)", Tree{Profile: 2, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\nhello\n"),
		{Kind: KindFIFO, Where: Cur, Name: []byte("1700000001.M2P1.fifo:2,")},
		msg(New, "1700000002.M3P1.host", "Subject: three\n\nbye\n"),
	}}},
	{"fifo-in-new-rfc1939", "a FIFO in new/ under the exclusive lock", Tree{Profile: 0, Entries: []Entry{
		{Kind: KindFIFO, Where: New, Name: []byte("1700000001.M2P1.fifo")},
		msg(New, "1700000002.M3P1.host", "Subject: three\n\nbye\n"),
	}}},
	{"symlink-to-outside", "cur/ entries linked out of the mail root are served (issue 11: root and symlinks)", Tree{Profile: 2, Dele: 0xffffffff, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\nhello\n"),
		{Kind: KindSymlink, Where: Cur, Name: []byte("1700000001.M2P1.link:2,"), Target: TargetSentinel},
		{Kind: KindSymlink, Where: New, Name: []byte("1700000002.M3P1.rel"), Target: TargetSentinelRel},
	}}},
	{"symlink-to-other-user", "a cur/ entry linked to another user's message", Tree{Profile: 0, Entries: []Entry{
		{Kind: KindSymlink, Where: Cur, Name: []byte("1700000001.M2P1.link:2,S"), Target: TargetOther},
		msg(New, "1700000002.M3P1.host", "Subject: three\n\nbye\n"),
	}}},
	{"symlink-to-dev-zero", "a link to /dev/zero burns a core after the client left (issue 11: special files)", Tree{Profile: 2, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\nhello\n"),
		{Kind: KindSymlink, Where: Cur, Name: []byte("1700000001.M2P1.zero:2,"), Target: TargetDevZero},
	}}},
	{"symlink-inside", "a link to a message of the same maildrop may be served or skipped, never lose the message", Tree{Profile: 2, Dele: 0b10, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\nhello\n"),
		{Kind: KindSymlink, Where: New, Name: []byte("1700000001.M2P1.link"), Target: TargetInside},
	}}},
	{"user-dir-symlink-other", "ROOT/f linked to user g's maildrop reads g's mail", Tree{Profile: 2, UserDir: UserDirToOther}},
	{"user-dir-symlink-outside", "ROOT/f linked outside the root gets cur/new/tmp and lock files there", Tree{Profile: 0, UserDir: UserDirToOutside}},
	{"hardlink-new-cur", "a reader killed between link into cur/ and unlink from new/ leaves one message under two names", Tree{Profile: 2, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,", "Subject: one\n\n"),
		{Kind: KindHardlink, Where: New, Name: []byte("1700000000.M1P1.host"), Index: 0},
		msg(New, "1700000001.M2P1.host", "Subject: two\n\n"),
	}}},
	{"hardlink-flags", "one message under two flag sets, hard-linked, and DELE'd", Tree{Profile: 0, Dele: 1, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\n"),
		{Kind: KindHardlink, Where: Cur, Name: []byte("1700000000.M1P1.host:2,RS"), Index: 0},
	}}},
	{"dir-in-cur", "a directory in cur/ makes every login -ERR [SYS/TEMP]", Tree{Profile: 2, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\nhello\n"),
		{Kind: KindDir, Where: Cur, Name: []byte("1700000001.M2P1.dir:2,")},
		msg(New, "1700000002.M3P1.host", "Subject: three\n\nbye\n"),
	}}},
	{"new-cur-collision", "new/X replaces cur/X:2, at login (os.Rename overwrites): an unmarked message lost", Tree{Profile: 2, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,", "Subject: the older\n\nkept\n"),
		msg(New, "1700000000.M1P1.host", "Subject: the newer\n\nalso kept\n"),
	}}},
	{"flag-variants", "one base under several :2,flags, and the same base in new/", Tree{Profile: 0, Dele: 0b1, Entries: []Entry{
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: seen\n\n"),
		msg(Cur, "1700000000.M1P1.host:2,RS", "Subject: replied\n\n"),
		msg(New, "1700000000.M1P1.host", "Subject: new\n\n"),
		msg(Cur, "1700000001.M2P1.host:2,", "Subject: other\n\n"),
	}}},
	{"name-with-space", "a name with a space: the first login works, every later one is -ERR [SYS/TEMP]", Tree{Profile: 2, Entries: []Entry{
		msg(New, "1700000000.M1 x.host", "Subject: space\n\n"),
		msg(New, "1700000001.M2P1.host", "Subject: plain\n\n"),
	}}},
	{"name-with-newline-8bit", "names with a newline and with octets that are not UTF-8", Tree{Profile: 0, Entries: []Entry{
		msg(New, "1700000000.M1\nx.host", "Subject: newline\n\n"),
		msg(Cur, "1700000001.M2.\xff\xfe host:2,S", "Subject: 8-bit\n\n"),
		msg(New, "1700000002.M3P1.host", "Subject: plain\n\n"),
	}}},
	{"size-overflow", "ten ,S=999999999999999999 names make STAT's total negative", Tree{Profile: 2, Entries: func() []Entry {
		var es []Entry
		for i := 0; i < 10; i++ {
			es = append(es, msg(New, fmt.Sprintf("17000000%02d.M%dP1.host,S=999999999999999999", i, i), "Subject: huge\n\n"))
		}
		return es
	}()}},
	{"dovecot-uidlist-n-max", "dovecot-uidlist with N4294967295 wraps the next UID to 0", Tree{Profile: 2, Entries: []Entry{
		{Kind: KindUIDList, Index: 1, Body: []byte("3 V1700000000 N4294967295\n")},
		msg(New, "1700000000.M1P1.host", "Subject: one\n\n"),
		msg(New, "1700000001.M2P1.host", "Subject: two\n\n"),
		msg(New, "1700000002.M3P1.host", "Subject: three\n\n"),
	}}},
	{"uidlist-next-max", "pop3kit-uidlist with next=4294967295", Tree{Profile: 0, Entries: []Entry{
		{Kind: KindUIDList, Index: 0, Body: []byte("pop3kit-uidlist 1 validity=1700000000 next=4294967295\n")},
		msg(New, "1700000000.M1P1.host", "Subject: one\n\n"),
		msg(New, "1700000001.M2P1.host", "Subject: two\n\n"),
	}}},
	{"uidlist-damaged", "a damaged pop3kit-uidlist is rebuilt, keeping the UIDs it can still read", Tree{Profile: 2, Entries: []Entry{
		{Kind: KindUIDList, Index: 0, Body: []byte("pop3kit-uidlist 1 validity=1700000000 next=5\n3 10 10 1700000000.M1P1.host\nthis line is damaged\n")},
		msg(Cur, "1700000000.M1P1.host:2,S", "Subject: one\n\n"),
		msg(New, "1700000001.M2P1.host", "Subject: two\n\n"),
	}}},
}

// seedFile is the go test fuzz v1 file of one []byte argument.
func seedFile(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}

// readSeedFile reads a go test fuzz v1 file of one []byte argument.
func readSeedFile(b []byte) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	head, arg, ok := strings.Cut(s, "\n")
	if !ok || head != "go test fuzz v1" || !strings.HasPrefix(arg, "[]byte(") || !strings.HasSuffix(arg, ")") {
		return nil, fmt.Errorf("not a go test fuzz v1 file of one []byte")
	}
	v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(arg, "[]byte("), ")"))
	return []byte(v), err
}

// TestMaildropTreeSeeds replays each named seed of FuzzMaildropTree from
// its file, after checking that the file is what treeSeeds says (run with
// -update-seeds to rewrite them).
func TestMaildropTreeSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzMaildropTree")
	for _, s := range treeSeeds {
		t.Run(s.name, func(t *testing.T) {
			path := filepath.Join(dir, s.name)
			want := seedFile(s.tree.Encode())
			if *updateSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (write the seeds with: go test ./fuzz -run TestMaildropTreeSeeds -update-seeds)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from treeSeeds (rewrite with: go test ./fuzz -run TestMaildropTreeSeeds -update-seeds)", path)
			}
			data, err := readSeedFile(got)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			t.Logf("%s: %s", s.name, s.why)
			runTree(t, DecodeTree(data))
		})
	}
}

// TestTreeEncoding: DecodeTree reads back what Encode writes.
func TestTreeEncoding(t *testing.T) {
	for _, s := range treeSeeds {
		if got := DecodeTree(s.tree.Encode()); got.String() != s.tree.String() {
			t.Errorf("%s: decoded as\n%s\nwant\n%s", s.name, got, s.tree)
		}
	}
}
