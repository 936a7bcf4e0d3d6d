package maildir

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/store"
)

// openDovecot opens alice's maildrop keeping dovecot-uidlist, as a session
// with UIDLFormat=dovecot does.
func (m *maildropT) openDovecot() *Drop {
	m.t.Helper()
	d, err := m.mr.openWithin(2*time.Second, "alice", store.OpenOptions{DovecotUIDs: true, Log: slog.New(slog.NewTextHandler(m.logs, nil))})
	require.NoError(m.t, err, "logs: %s", m.logs)
	m.t.Cleanup(func() { d.Close() })
	return d
}

// read returns the file at rel under the user's Maildir.
func (m *maildropT) read(rel string) string {
	m.t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, rel))
	require.NoError(m.t, err)
	return string(b)
}

// ownList returns pop3kit-uidlist as UID by base name, with its validity
// and next UID.
func (m *maildropT) ownList() (map[string]uint32, uint32, uint64) {
	m.t.Helper()
	l, err := parseUIDList(strings.NewReader(m.read(uidListName)))
	require.NoError(m.t, err)
	require.Empty(m.t, l.problems)
	out := map[string]uint32{}
	for b, e := range l.entries {
		out[b] = e.uid
	}
	return out, l.validity, l.next
}

// TestMaildropDovecotContinuesFromN: new messages get UIDs from the
// header's next UID on, in delivery order; dovecot-uidlist is written as
// Dovecot writes it, with the mailbox GUID, an unknown header field and
// each record's extension fields as they were; pop3kit-uidlist agrees;
// what Dovecot adds afterwards is picked up at the next open.
func TestMaildropDovecotContinuesFromN(t *testing.T) {
	m := newMaildropT(t)
	m.write(dovecotUIDList, "3 V1764000000 N10 G0123456789abcdef0123456789abcdef X42\n3 W6 GABC Pold-uidl :1.a\n")
	m.write("cur/1.a:2,S", "one\r\n")
	m.write("new/2.b", "two\n")
	m.write("new/3.c,S=6", "three\n")
	d := m.openDovecot()
	require.Equal(t, map[string]uint32{"one\r\n": 3, "two\n": 10, "three\n": 11}, contents(t, d))
	require.Equal(t, uint32(1764000000), d.Validity)
	require.Equal(t, "3 V1764000000 N12 G0123456789abcdef0123456789abcdef X42\n3 W6 GABC Pold-uidl :1.a\n10 :2.b\n11 :3.c,S=6\n", m.read(dovecotUIDList))
	own, validity, next := m.ownList()
	require.Equal(t, map[string]uint32{"1.a": 3, "2.b": 10, "3.c,S=6": 11}, own)
	require.Equal(t, uint32(1764000000), validity)
	require.Equal(t, uint64(12), next)
	_, err := os.Stat(filepath.Join(m.dir, dovecotLockName))
	require.ErrorIs(t, err, os.ErrNotExist, "the lock is gone")

	// Dovecot's LDA delivers 4.d as UID 12 (and writes N13), and renames
	// 1.a for a flag; pop3d then sees 5.e.
	m.write(dovecotUIDList, m.read(dovecotUIDList)[:0]+"3 V1764000000 N13 G0123456789abcdef0123456789abcdef X42\n3 W6 GABC Pold-uidl :1.a\n10 :2.b\n11 :3.c,S=6\n12 :4.d\n")
	m.write("cur/4.d:2,", "four\n")
	require.NoError(t, os.Rename(filepath.Join(m.dir, "cur/1.a:2,S"), filepath.Join(m.dir, "cur/1.a:2,RS")))
	m.write("new/5.e", "five\n")
	d.Close()
	d = m.openDovecot()
	require.Equal(t, map[string]uint32{"one\r\n": 3, "two\n": 10, "three\n": 11, "four\n": 12, "five\n": 13}, contents(t, d))
	require.Contains(t, m.read(dovecotUIDList), "\n12 :4.d\n13 :5.e\n")
	require.True(t, strings.HasPrefix(m.read(dovecotUIDList), "3 V1764000000 N14 "))

	// A third open with nothing new writes nothing.
	before, err := os.Stat(filepath.Join(m.dir, dovecotUIDList))
	require.NoError(t, err)
	d.Close()
	m.openDovecot()
	after, err := os.Stat(filepath.Join(m.dir, dovecotUIDList))
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "an unchanged list is not rewritten")
}

// TestMaildropDovecotAppendedRecords: Dovecot's LDA appends a record for
// each delivery without rewriting the header, so N lags behind the last
// records; that is Dovecot's normal format, read without a word of
// damage, and the next UID comes after the appended ones. Before, every
// login logged WARN "dovecot-uidlist damaged … N21 is not above uid 21".
func TestMaildropDovecotAppendedRecords(t *testing.T) {
	m := newMaildropT(t)
	m.write(dovecotUIDList, "3 V1764000000 N20\n19 :19.a\n20 :20.b\n21 :21.c\n")
	for _, n := range []string{"19.a", "20.b", "21.c"} {
		m.write("cur/"+n+":2,", n+"\n")
	}
	m.write("new/22.d", "22.d\n")
	d := m.openDovecot()
	require.Equal(t, map[string]uint32{"19.a\n": 19, "20.b\n": 20, "21.c\n": 21, "22.d\n": 22}, contents(t, d))
	require.NotContains(t, m.logs.String(), "damaged")
	require.NotContains(t, m.logs.String(), "level=WARN")
}

// TestMaildropDovecotRemovalKeepsListReadable: messages removed at UPDATE
// leave their records' place to nobody: the list stays one Dovecot reads,
// without them, and their UIDs are never given again.
func TestMaildropDovecotRemovalKeepsListReadable(t *testing.T) {
	m := newMaildropT(t)
	for i := range 4 {
		m.write(fmt.Sprintf("new/%d.m", i), fmt.Sprintf("m%d\n", i))
	}
	d := m.openDovecot()
	first := contents(t, d)
	require.NoError(t, d.Remove([]int{1, 3}))
	d.Close()
	l, err := parseDovecotList(strings.NewReader(m.read(dovecotUIDList)))
	require.NoError(t, err)
	require.Empty(t, l.problems)
	require.Len(t, l.recs, 2)
	require.Equal(t, uint64(5), l.next)
	m.write("new/1.m", "same name, another message\n")
	got := contents(t, m.openDovecot())
	require.Equal(t, first["m0\n"], got["m0\n"])
	require.Equal(t, first["m2\n"], got["m2\n"])
	require.Equal(t, uint32(5), got["same name, another message\n"], "a removed message's UID is never given again")
}

// TestMaildropDovecotHostileList: nothing in dovecot-uidlist steers where
// a file is opened. Records naming "..", a path, an empty name, a UID
// Dovecot refuses, garbage and a line too long are dropped (Dovecot
// itself throws away a list holding one) and logged; UIDs they may stand
// for are never given; the files of the maildrop are listed by what is in
// cur/ and new/, never by the list.
func TestMaildropDovecotHostileList(t *testing.T) {
	m := newMaildropT(t)
	secret := filepath.Join(m.root, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("not mail\n"), 0o600))
	list := "3 V77 N3\n" +
		"1 :../secret\n" +
		"2 :../../secret\n" +
		"20 :..\n" +
		"21 :cur/../../secret\n" +
		"22 :\n" +
		"23 GABC\n" +
		"4294967295 :max\n" +
		"x :garbage\n" +
		"\x00\x01\xff\n" +
		"30 :" + strings.Repeat("y", 3000) + "\n" +
		"31 :ok\n"
	m.write(dovecotUIDList, list)
	m.write("cur/ok:2,", "ok\n")
	m.write("new/fresh", "fresh\n")
	d := m.openDovecot()
	require.Equal(t, map[string]uint32{"ok\n": 31, "fresh\n": 32}, contents(t, d))
	require.Contains(t, m.logs.String(), "dovecot-uidlist damaged")
	require.Equal(t, "3 V77 N33\n31 :ok\n32 :fresh\n", m.read(dovecotUIDList))
	b, err := os.ReadFile(secret)
	require.NoError(t, err)
	require.Equal(t, "not mail\n", string(b))
}

// TestMaildropDovecotHugeList: a dovecot-uidlist larger than a login reads
// is refused with ErrTooLarge, not read nor cut short (writing back the
// part read would lose the rest).
func TestMaildropDovecotHugeList(t *testing.T) {
	m := newMaildropT(t)
	f, err := os.Create(filepath.Join(m.dir, dovecotUIDList))
	require.NoError(t, err)
	_, err = f.WriteString("3 V1 N2\n")
	require.NoError(t, err)
	require.NoError(t, f.Truncate(maxUIDList+1)) // sparse
	f.Close()
	_, err = m.mr.openWithin(time.Second, "alice", store.OpenOptions{DovecotUIDs: true})
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = os.Stat(filepath.Join(m.dir, dovecotLockName))
	require.ErrorIs(t, err, os.ErrNotExist, "the lock is released")
}

// TestMaildropDovecotDamagedHeader: a list whose header cannot be read is
// moved aside, and the UIDs pop3d knows (its own list) carry on.
func TestMaildropDovecotDamagedHeader(t *testing.T) {
	m := newMaildropT(t)
	m.write("new/1.a", "a\n")
	m.write("new/2.b", "b\n")
	first := contents(t, m.openDovecot())
	m.write(dovecotUIDList, "3 Vnope N\n1 :1.a\n")
	m.write("new/3.c", "c\n")
	got := contents(t, m.openDovecot())
	require.Equal(t, first["a\n"], got["a\n"])
	require.Equal(t, first["b\n"], got["b\n"])
	require.Equal(t, uint32(3), got["c\n"])
	require.Contains(t, m.logs.String(), "moved aside")
	aside, err := filepath.Glob(filepath.Join(m.dir, dovecotUIDList+".broken.*"))
	require.NoError(t, err)
	require.Len(t, aside, 1)
}

// TestMaildropDovecotKeepsPop3dUIDs: a maildrop pop3d served before it
// kept dovecot-uidlist (UIDs given in pop3kit-uidlist only, above the
// list's next UID) keeps them, and dovecot-uidlist learns them.
func TestMaildropDovecotKeepsPop3dUIDs(t *testing.T) {
	m := newMaildropT(t)
	m.write(dovecotUIDList, "3 V9 N3\n1 :1.a\n2 :2.b\n")
	m.write("cur/1.a:2,", "a\n")
	m.write("cur/2.b:2,", "b\n")
	m.write("new/3.c", "c\n")
	before := contents(t, m.open()) // imports, then gives 3.c UID 3 in pop3kit-uidlist
	require.Equal(t, uint32(3), before["c\n"])
	m.write("new/4.d", "d\n")
	got := contents(t, m.openDovecot())
	require.Equal(t, map[string]uint32{"a\n": 1, "b\n": 2, "c\n": 3, "d\n": 4}, got)
	require.Equal(t, "3 V9 N5\n1 :1.a\n2 :2.b\n3 :3.c\n4 :4.d\n", m.read(dovecotUIDList))
}

// TestMaildropDovecotUIDSpace: Dovecot's last UID is 2^32-2; a list at it
// gives no more, and never writes a UID Dovecot refuses.
func TestMaildropDovecotUIDSpace(t *testing.T) {
	m := newMaildropT(t)
	m.write(dovecotUIDList, "3 V5 N4294967294\n")
	m.write("new/1.a", "a\n")
	m.write("new/2.b", "b\n")
	got := contents(t, m.openDovecot())
	require.Equal(t, map[string]uint32{"a\n": 4294967294}, got)
	require.Contains(t, m.logs.String(), "no UID left")
	require.Equal(t, "3 V5 N4294967295\n4294967294 :1.a\n", m.read(dovecotUIDList))
}

// lockAt writes a dovecot-uidlist.lock holding body, last changed at mtime.
func (m *maildropT) lockAt(body string, mtime time.Time) {
	m.t.Helper()
	p := filepath.Join(m.dir, dovecotLockName)
	require.NoError(m.t, os.WriteFile(p, []byte(body), 0o600))
	require.NoError(m.t, os.Chtimes(p, mtime, mtime))
}

// userDir opens alice's Maildir as the Drop does.
func (m *maildropT) userDir() *os.Root {
	m.t.Helper()
	r, err := os.OpenRoot(m.dir)
	require.NoError(m.t, err)
	m.t.Cleanup(func() { r.Close() })
	return r
}

// TestDotlock: Dovecot's locking convention for dovecot-uidlist. Each case
// finds a lock someone left and says whether pop3d takes it over (within
// the wait) or waits and gives up with ErrBusy.
func TestDotlock(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	live := exec.Command("sleep", "60")
	require.NoError(t, live.Start())
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	now := time.Now()
	for _, tc := range []struct {
		name  string
		body  string
		age   time.Duration // how long ago the lock was written
		clock time.Duration // how far the clock is moved on
		taken bool
	}{
		{name: "fresh lock of an unknown holder is respected", body: "", age: 0, taken: false},
		{name: "lock unchanged past the stale timeout is taken over", body: "", age: 0, clock: dotlockStale + 2*time.Second, taken: true},
		{name: "lock of a dead process of this host is taken over at once", body: fmt.Sprintf("%d:%s", dead.Process.Pid, host), age: 10 * time.Second, taken: true},
		{name: "lock of a live process is respected however old", body: fmt.Sprintf("%d:%s", live.Process.Pid, host), age: time.Hour, clock: time.Hour, taken: false},
		{name: "lock of a dead process just written is not judged yet", body: fmt.Sprintf("%d:%s", dead.Process.Pid, host), age: 0, taken: false},
		{name: "lock of another host is judged by its age", body: fmt.Sprintf("%d:elsewhere.example", dead.Process.Pid), age: 0, clock: dotlockStale + 2*time.Second, taken: true},
		{name: "the list itself changing keeps the lock alive", body: "touch-list", age: 0, clock: dotlockStale + 2*time.Second, taken: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMaildropT(t)
			m.write(dovecotUIDList, "3 V1 N1\n")
			body := tc.body
			if body == "touch-list" {
				// The list changed a minute after the lock, as the
				// moved clock sees it: the holder is at work.
				body = ""
				later := now.Add(time.Minute)
				require.NoError(t, os.Chtimes(filepath.Join(m.dir, dovecotUIDList), later, later))
			}
			m.lockAt(body, now.Add(-tc.age))
			clock := func() time.Time { return time.Now().Add(tc.clock) }
			start := time.Now()
			lk, err := takeDotlock(m.userDir(), dovecotUIDList, 300*time.Millisecond, clock, slog.New(slog.DiscardHandler))
			if !tc.taken {
				require.ErrorIs(t, err, store.ErrBusy)
				require.Contains(t, err.Error(), dovecotLockName)
				require.Less(t, time.Since(start), 5*time.Second, "the wait is bounded")
				require.Equal(t, body, m.read(dovecotLockName), "a respected lock is left alone")
				return
			}
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("%d:%s", os.Getpid(), host), m.read(dovecotLockName), "the lock names its holder as Dovecot's do")
			require.NoError(t, lk.replace(func(w io.Writer) error { _, err := io.WriteString(w, "3 V1 N2\n"); return err }))
			require.Equal(t, "3 V1 N2\n", m.read(dovecotUIDList))
			_, err = os.Stat(filepath.Join(m.dir, dovecotLockName))
			require.True(t, errors.Is(err, os.ErrNotExist), "replace releases the lock")
		})
	}
}

// TestDotlockOddName: a directory or a symbolic link under the lock's
// name is no lock: it is moved aside at once, and the link's target is
// never written.
func TestDotlockOddName(t *testing.T) {
	m := newMaildropT(t)
	m.write(dovecotUIDList, "3 V1 N1\n")
	target := filepath.Join(m.root, "target")
	require.NoError(t, os.Symlink(target, filepath.Join(m.dir, dovecotLockName)))
	lk, err := takeDotlock(m.userDir(), dovecotUIDList, time.Second, time.Now, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	lk.release()
	_, err = os.Lstat(target)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, os.Mkdir(filepath.Join(m.dir, dovecotLockName), 0o700))
	lk, err = takeDotlock(m.userDir(), dovecotUIDList, time.Second, time.Now, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	lk.release()
}

// TestDotlockHeldWhileWriting: while pop3d holds the lock another taker
// waits; a lock taken over meanwhile is not renamed over the list.
func TestDotlockHeldWhileWriting(t *testing.T) {
	m := newMaildropT(t)
	m.write(dovecotUIDList, "3 V1 N1\n")
	dir := m.userDir()
	lk, err := takeDotlock(dir, dovecotUIDList, time.Second, time.Now, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = takeDotlock(dir, dovecotUIDList, 100*time.Millisecond, time.Now, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, store.ErrBusy, "our own lock is respected by another taker")
	require.NoError(t, os.Remove(filepath.Join(m.dir, dovecotLockName)))
	m.lockAt("someone else", time.Now())
	err = lk.replace(func(w io.Writer) error { _, err := io.WriteString(w, "3 V1 N9\n"); return err })
	require.Error(t, err)
	require.Equal(t, "3 V1 N1\n", m.read(dovecotUIDList))
	require.Equal(t, "someone else", m.read(dovecotLockName), "another's lock is not removed")
}
