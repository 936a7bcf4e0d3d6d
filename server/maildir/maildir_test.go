package maildir

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/store"
)

// maildropT is a mail root with one user's Maildir, for the store's own
// tests: it writes files as a delivery agent or a hostile local user would.
type maildropT struct {
	t    *testing.T
	root string // the mail root
	dir  string // root/alice
	logs *bytes.Buffer
	mr   *MailRoot
}

func newMaildropT(t *testing.T) *maildropT {
	t.Helper()
	base := t.TempDir()
	m := &maildropT{t: t, root: filepath.Join(base, "mail"), logs: &bytes.Buffer{}}
	m.dir = filepath.Join(m.root, "alice")
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(m.dir, sub), 0o700))
	}
	mr, err := OpenMailRoot(m.root)
	require.NoError(t, err)
	t.Cleanup(func() { mr.Close() })
	m.mr = mr
	return m
}

// write puts a file at rel (under the user's Maildir).
func (m *maildropT) write(rel, body string) {
	m.t.Helper()
	require.NoError(m.t, os.WriteFile(filepath.Join(m.dir, rel), []byte(body), 0o600))
}

// open opens alice's maildrop with a bounded lock wait, logging to m.logs.
func (m *maildropT) open() *Drop {
	m.t.Helper()
	d, err := m.mr.openWithin(2*time.Second, "alice", store.OpenOptions{Log: slog.New(slog.NewTextHandler(m.logs, nil))})
	require.NoError(m.t, err, "logs: %s", m.logs)
	m.t.Cleanup(func() { d.Close() })
	return d
}

// contents maps every message of d to its UID, by body.
func contents(t *testing.T, d *Drop) map[string]uint32 {
	t.Helper()
	out := map[string]uint32{}
	for i := range d.Len() {
		f, err := d.Open(i)
		require.NoError(t, err)
		b, err := io.ReadAll(f)
		f.Close()
		require.NoError(t, err)
		_, dup := out[string(b)]
		require.False(t, dup, "message %q listed twice", b)
		out[string(b)] = d.UID(i)
	}
	return out
}

// TestMaildropSymlinksNeverLeadOut: a message file that is a symbolic link
// (to a file outside the mail root, to another user's message, absolute
// or relative) is skipped, never served.
func TestMaildropSymlinksNeverLeadOut(t *testing.T) {
	m := newMaildropT(t)
	secret := filepath.Join(filepath.Dir(m.root), "shadow")
	require.NoError(t, os.WriteFile(secret, []byte("root:secret-hash\n"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(m.root, "bob", "cur"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(m.root, "bob", "cur", "1.b:2,"), []byte("bob's mail\n"), 0o600))
	m.write("cur/1.real:2,", "alice's mail\n")
	require.NoError(t, os.Symlink(secret, filepath.Join(m.dir, "cur", "2.abs:2,")))
	require.NoError(t, os.Symlink("../../../shadow", filepath.Join(m.dir, "cur", "3.rel:2,")))
	require.NoError(t, os.Symlink("../../bob/cur/1.b:2,", filepath.Join(m.dir, "cur", "4.bob:2,")))
	require.NoError(t, os.Symlink("/dev/zero", filepath.Join(m.dir, "new", "5.zero")))

	d := m.open()
	require.Equal(t, map[string]uint32{"alice's mail\n": 1}, contents(t, d))
	require.Contains(t, m.logs.String(), "skipped files that are not messages")
}

// TestMaildropUserDirSymlinkRefused: a user directory that is a symbolic
// link — to another user's Maildir, or outside the mail root — is refused,
// and nothing is created where it points.
func TestMaildropUserDirSymlinkRefused(t *testing.T) {
	m := newMaildropT(t)
	outside := filepath.Join(filepath.Dir(m.root), "elsewhere")
	require.NoError(t, os.MkdirAll(outside, 0o700))
	require.NoError(t, os.Symlink("alice", filepath.Join(m.root, "mallory")))
	require.NoError(t, os.Symlink(outside, filepath.Join(m.root, "eve")))
	for _, user := range []string{"mallory", "eve"} {
		_, err := m.mr.OpenDrop(user, store.OpenOptions{})
		require.ErrorIs(t, err, ErrNotMaildir, user)
	}
	ents, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, ents, "nothing may be created outside the mail root")
	_, err = m.mr.OpenDrop("../mail/alice", store.OpenOptions{})
	require.ErrorIs(t, err, ErrNotMaildir)
}

// TestMaildropSpecialFiles: a FIFO, a directory or a socket in cur/ or new/
// neither hangs a login nor makes the mailbox unusable; each is skipped.
func TestMaildropSpecialFiles(t *testing.T) {
	m := newMaildropT(t)
	m.write("cur/1.ok:2,", "hello\n")
	require.NoError(t, syscall.Mkfifo(filepath.Join(m.dir, "cur", "2.fifo:2,"), 0o600))
	require.NoError(t, syscall.Mkfifo(filepath.Join(m.dir, "new", "3.fifo"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(m.dir, "cur", "4.dir:2,"), 0o700))
	require.NoError(t, os.Mkdir(filepath.Join(m.dir, "new", "5.dir"), 0o700))
	done := make(chan map[string]uint32, 1)
	go func() {
		for range 3 { // every later login too
			d, err := m.mr.openWithin(time.Second, "alice", store.OpenOptions{})
			if err != nil {
				done <- map[string]uint32{err.Error(): 0}
				return
			}
			got := contents(t, d)
			d.Close()
			if len(got) != 1 {
				done <- got
				return
			}
		}
		d := m.open()
		done <- contents(t, d)
	}()
	select {
	case got := <-done:
		require.Equal(t, map[string]uint32{"hello\n": 1}, got)
	case <-time.After(10 * time.Second):
		t.Fatal("a login hung on a special file")
	}
}

// TestMaildropNewNeverReplacesCur: a file in new/ named like one in cur/
// is a different message; moving it to cur/ must not replace the other.
func TestMaildropNewNeverReplacesCur(t *testing.T) {
	m := newMaildropT(t)
	m.write("cur/1764000000.M1P1.host:2,S", "first\n")
	m.write("new/1764000000.M1P1.host", "second\n")
	m.write("new/1764000001.M2P1.host:2,", "third\n")
	m.write("cur/1764000001.M2P1.host:2,S", "fourth\n")
	d := m.open()
	got := contents(t, d)
	require.Len(t, got, 4, "every message is kept and listed: %v", got)
	d.Close()
	again := contents(t, m.open())
	require.Equal(t, got, again, "unique-ids are stable")
}

// TestMaildropInterruptedMoveListedOnce: a reader killed between the link
// into cur/ and the unlink from new/ leaves one file under two names; the
// next login lists it once, under its old unique-id, and tidies new/.
func TestMaildropInterruptedMoveListedOnce(t *testing.T) {
	m := newMaildropT(t)
	m.write("new/1764000000.M1P1.host", "only once\n")
	first := contents(t, m.open())
	require.NoError(t, os.Link(filepath.Join(m.dir, "cur", "1764000000.M1P1.host:2,"), filepath.Join(m.dir, "new", "1764000000.M1P1.host")))
	require.Equal(t, first, contents(t, m.open()))
	_, err := os.Stat(filepath.Join(m.dir, "new", "1764000000.M1P1.host"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestMaildropAnyNameRoundTrips: file names with spaces, newlines, "%",
// control characters and non-UTF-8 octets keep their UIDs from one login
// to the next (the UID list escapes them).
func TestMaildropAnyNameRoundTrips(t *testing.T) {
	m := newMaildropT(t)
	names := []string{"1.a b c:2,", "2.new\nline:2,", "3.per%cent:2,", "4.\xff\xfe:2,", "5.tab\there:2,", "6.plain:2,"}
	for i, n := range names {
		m.write("cur/"+n, fmt.Sprintf("message %d\n", i))
	}
	first := contents(t, m.open())
	require.Len(t, first, len(names))
	for range 3 {
		m.write(fmt.Sprintf("new/9%d.later", len(first)), fmt.Sprintf("later %d\n", len(first)))
		again := contents(t, m.open())
		for body, uid := range first {
			require.Equal(t, uid, again[body], "%q changed its unique-id", body)
		}
		first = again
	}
}

// TestMaildropDamagedUIDListKeepsUIDs: a damaged UID list loses only the
// lines that cannot be read; every UID still readable is kept, and no UID
// is given twice.
func TestMaildropDamagedUIDListKeepsUIDs(t *testing.T) {
	m := newMaildropT(t)
	for i := range 5 {
		m.write(fmt.Sprintf("cur/%d.m:2,", i), fmt.Sprintf("m%d\n", i))
	}
	before := contents(t, m.open())
	path := filepath.Join(m.dir, uidListName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	lines[0] = "garbage header"                          // header lost
	lines[2] = "x" + lines[2]                            // one line damaged
	lines = append(lines, strings.Repeat("z", 5000), "") // a line too long
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600))
	after := contents(t, m.open())
	uids := map[uint32]bool{}
	kept := 0
	for body, uid := range after {
		require.False(t, uids[uid], "uid %d given twice", uid)
		uids[uid] = true
		if before[body] == uid {
			kept++
		}
	}
	require.Equal(t, 4, kept, "every readable line keeps its UID: before %v after %v", before, after)
	require.Contains(t, m.logs.String(), "UID list repaired")
}

// TestMaildropUIDSpaceNeverWraps: a dovecot-uidlist whose next UID is
// 2^32-1 gives that UID once and then no more; it never wraps to 0 or to
// a UID already given.
func TestMaildropUIDSpaceNeverWraps(t *testing.T) {
	m := newMaildropT(t)
	m.write(dovecotUIDList, "3 V1764000000 N4294967295\n4294967294 :1.old\n")
	m.write("cur/1.old:2,", "old\n")
	m.write("new/2.new", "new\n")
	m.write("new/3.newer", "newer\n")
	got := contents(t, m.open())
	require.Equal(t, map[string]uint32{"old\n": 4294967294, "new\n": 4294967295}, got)
	require.Contains(t, m.logs.String(), "no UID left")
	_, err := os.Stat(filepath.Join(m.dir, "cur", "3.newer:2,"))
	require.NoError(t, err, "the unlisted message is kept")
}

// TestMaildropSizesOverflowChecked: ,S= and ,W= fields too large to sum
// are not believed; STAT can never wrap negative.
func TestMaildropSizesOverflowChecked(t *testing.T) {
	m := newMaildropT(t)
	m.write("cur/1.a,S=999999999999999999,W=999999999999999999:2,", "one\n")
	m.write("cur/2.b,S=999999999999999,W=999999999999999:2,", "two\n")
	d := m.open()
	var sum int64
	for i := range d.Len() {
		require.GreaterOrEqual(t, d.ExactSize(i), int64(0))
		sum += d.ExactSize(i)
	}
	require.Greater(t, sum, int64(0))
	require.Equal(t, int64(5), d.ExactSize(0), "an unbelievable ,W= is measured instead")
}

// TestMaildropLockWaitBounded: a UID list lock held by a stuck process
// makes a login fail with ErrBusy after the wait, not hang.
func TestMaildropLockWaitBounded(t *testing.T) {
	m := newMaildropT(t)
	f, err := os.OpenFile(filepath.Join(m.dir, uidLockName), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	done := make(chan error, 1)
	go func() {
		_, err := m.mr.openWithin(200*time.Millisecond, "alice", store.OpenOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, store.ErrBusy)
	case <-time.After(10 * time.Second):
		t.Fatal("login waited for the lock without bound")
	}
}

// TestMaildropUIDsStableUnderDelivery: while an MDA delivers, logins of
// two mail roots (as two pop3d processes) never see a message change its
// UID, never lose one, and never give two messages one UID.
func TestMaildropUIDsStableUnderDelivery(t *testing.T) {
	m := newMaildropT(t)
	const n = 150
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			name := fmt.Sprintf("%d.M%dP1.mta", 1764000000+i, i)
			tmp := filepath.Join(m.dir, "tmp", name)
			if os.WriteFile(tmp, []byte(fmt.Sprintf("body %d\n", i)), 0o600) == nil {
				_ = os.Rename(tmp, filepath.Join(m.dir, "new", name))
			}
		}
	}()
	seen := map[string]uint32{}
	var mu sync.Mutex
	check := func(mr *MailRoot) {
		// What checks that ended before this one began had seen must be
		// here; a check that began earlier may lawfully lack later mail.
		mu.Lock()
		before := make(map[string]bool, len(seen))
		for body := range seen {
			before[body] = true
		}
		mu.Unlock()
		d, err := mr.openWithin(5*time.Second, "alice", store.OpenOptions{})
		require.NoError(t, err)
		defer d.Close()
		got := contents(t, d)
		mu.Lock()
		defer mu.Unlock()
		byUID := map[uint32]string{}
		for body, uid := range got {
			if old, ok := seen[body]; ok {
				require.Equal(t, old, uid, "%q changed its unique-id", body)
			}
			seen[body] = uid
			require.Empty(t, byUID[uid])
			byUID[uid] = body
		}
		for body := range before {
			require.Contains(t, got, body, "a delivered message was lost")
		}
	}
	other, err := OpenMailRoot(m.root)
	require.NoError(t, err)
	defer other.Close()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, mr := range []*MailRoot{m.mr, other} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
					check(mr)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	check(m.mr)
	require.Len(t, seen, n)
}

// TestMaildropMemoryPerMessage: an open maildrop costs a session at most
// 64 octets a message (the names stay in the UID list file).
func TestMaildropMemoryPerMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 20,000 files")
	}
	m := newMaildropT(t)
	const n = 20000
	for i := range n {
		m.write(fmt.Sprintf("cur/%d.M%dP12345Q%d.mail.example.org,S=1000,W=1020:2,S", 1764000000+i, i, i), "x")
	}
	m.open().Close() // the first login writes the UID list
	perMessage := retainedPerMessage(t, m.mr, n)
	t.Logf("%.1f octets a message", perMessage)
	require.LessOrEqual(t, perMessage, 64.0)
}

// retainedPerMessage opens alice's maildrop and returns the heap it keeps
// per message while open.
func retainedPerMessage(t testing.TB, mr *MailRoot, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := mr.OpenDrop("alice", store.OpenOptions{})
	require.NoError(t, err)
	require.Equal(t, n, d.Len())
	marked := make([]bool, d.Len()) // what the session adds
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(marked)
	d.Close()
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// largeMaildrop makes alice's maildrop of n messages in cur/, named with
// their sizes as delivery agents write them, and opens its mail root.
func largeMaildrop(b *testing.B, n int) (mr *MailRoot, dir string) {
	base := b.TempDir()
	dir = filepath.Join(base, "mail", "alice")
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(b, os.MkdirAll(filepath.Join(dir, sub), 0o700))
	}
	for i := range n {
		name := fmt.Sprintf("%d.M%dP12345Q%d.mail.example.org,S=1000,W=1020:2,S", 1764000000+i, i, i)
		require.NoError(b, os.WriteFile(filepath.Join(dir, "cur", name), []byte("x"), 0o600))
	}
	mr, err := OpenMailRoot(filepath.Join(base, "mail"))
	require.NoError(b, err)
	b.Cleanup(func() { mr.Close() })
	return mr, dir
}

// BenchmarkDropOpen100k: opening a 100,000-message maildrop, and the heap
// the open maildrop keeps per message (the ≤ 32 octets target).
func BenchmarkDropOpen100k(b *testing.B) {
	const n = 100000
	mr, _ := largeMaildrop(b, n)
	// The maildrop was left alone for a while: a login finds it as the
	// last listing recorded it, and lists nothing (BenchmarkDropRelist100k
	// is the login that must).
	mr.now = func() time.Time { return time.Now().Add(time.Hour) }
	d, err := mr.OpenDrop("alice", store.OpenOptions{}) // the first login writes the UID list
	require.NoError(b, err)
	d.Close()
	perMessage := retainedPerMessage(b, mr, n)
	d, err = mr.OpenDrop("alice", store.OpenOptions{})
	require.NoError(b, err)
	require.True(b, d.quick, "the login after the first lists nothing")
	d.Close()
	b.ReportAllocs()
	for b.Loop() {
		d, err := mr.OpenDrop("alice", store.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
	b.ReportMetric(perMessage, "B/message")
}

// BenchmarkDropRelist100k: a login to a 100,000-message maildrop whose
// directories changed since the last listing (a message delivered), which
// lists cur/ and new/ against the UID list.
func BenchmarkDropRelist100k(b *testing.B) {
	const n = 100000
	mr, dir := largeMaildrop(b, n)
	d, err := mr.OpenDrop("alice", store.OpenOptions{})
	require.NoError(b, err)
	d.Close()
	touch := filepath.Join(dir, "new", ".touch")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		require.NoError(b, os.WriteFile(touch, nil, 0o600)) // new/ changes
		require.NoError(b, os.Remove(touch))
		b.StartTimer()
		d, err := mr.OpenDrop("alice", store.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if d.quick {
			b.Fatal("listed nothing")
		}
		d.Close()
	}
}

// BenchmarkDropFirstOpen100k: the first login to a maildrop of 100,000
// messages just delivered to new/ with no sizes in their names, as
// pop3bench's large maildrop is: every message is moved to cur/ and read
// once for its exact size.
func BenchmarkDropFirstOpen100k(b *testing.B) {
	const n = 100000
	body := bytes.Repeat([]byte("a line of a message\n"), 20)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		base := b.TempDir()
		dir := filepath.Join(base, "mail", "alice")
		for _, sub := range []string{"cur", "new", "tmp"} {
			require.NoError(b, os.MkdirAll(filepath.Join(dir, sub), 0o700))
		}
		for i := range n {
			name := fmt.Sprintf("%d.M%dP1.many", 1764000000+i, i)
			require.NoError(b, os.WriteFile(filepath.Join(dir, "new", name), body, 0o600))
		}
		mr, err := OpenMailRoot(filepath.Join(base, "mail"))
		require.NoError(b, err)
		b.StartTimer()
		d, err := mr.OpenDrop("alice", store.OpenOptions{})
		b.StopTimer()
		require.NoError(b, err)
		require.Equal(b, n, d.Len())
		d.Close()
		mr.Close()
		require.NoError(b, os.RemoveAll(base))
		b.StartTimer()
	}
}

// TestMaildropKnownNameSwappedForSymlink: a message's file replaced, after
// it was listed, by a symbolic link to another file of the maildrop (its
// UID list) is not served: a known name is opened only as a regular file.
func TestMaildropKnownNameSwappedForSymlink(t *testing.T) {
	m := newMaildropT(t)
	m.write("cur/1.a:2,", "real message\n")
	d := m.open()
	require.Equal(t, 1, d.Len())
	path := filepath.Join(m.dir, "cur", "1.a:2,")
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Symlink("../"+uidListName, path))
	_, err := d.Open(0)
	require.ErrorIs(t, err, ErrNotMessage)
	d.Close()
	d = m.open()
	for i := range d.Len() {
		_, err := d.Open(i)
		require.ErrorIs(t, err, ErrNotMessage, "a later login does not serve it either")
	}
}

// TestMaildropOddLockFiles: a lock file's name held by a directory, a
// symbolic link out of the maildrop or a dangling one neither makes the
// maildrop unusable nor makes pop3d create a file where the link points.
func TestMaildropOddLockFiles(t *testing.T) {
	m := newMaildropT(t)
	m.write("cur/1.a:2,", "hello\n")
	require.NoError(t, os.Mkdir(filepath.Join(m.dir, uidLockName), 0o700))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(m.dir, lockName)))
	d, err := m.mr.openWithin(time.Second, "alice", store.OpenOptions{Exclusive: true})
	require.NoError(t, err)
	require.Equal(t, 1, d.Len())
	d.Close()

	m2 := newMaildropT(t)
	m2.write("cur/1.a:2,", "hello\n")
	require.NoError(t, os.Symlink("cur/2.planted:2,", filepath.Join(m2.dir, uidLockName)))
	require.Equal(t, 1, m2.open().Len())
	_, err = os.Lstat(filepath.Join(m2.dir, "cur", "2.planted:2,"))
	require.ErrorIs(t, err, os.ErrNotExist, "O_CREATE must not follow the link and plant a message")
}

// TestMaildropHugeFileNotReadAtLogin: a sparse file of terabytes without
// ,S= and ,W= is not read at login (which would hold the UID list's lock
// and a core for hours); it is skipped and logged, and kept.
func TestMaildropHugeFileNotReadAtLogin(t *testing.T) {
	m := newMaildropT(t)
	m.write("cur/1.small:2,", "small\n")
	huge := filepath.Join(m.dir, "cur", "2.huge:2,")
	m.write("cur/2.huge:2,", "")
	require.NoError(t, os.Truncate(huge, 1<<40))
	done := make(chan int, 1)
	go func() { done <- m.open().Len() }()
	select {
	case n := <-done:
		require.Equal(t, 1, n)
	case <-time.After(20 * time.Second):
		t.Fatal("login read the sparse file")
	}
	require.Contains(t, m.logs.String(), "file too large to read at login")
	_, err := os.Stat(huge)
	require.NoError(t, err, "kept")
}

// TestMaildropRemovedNameGetsNewUID: a message removed at UPDATE loses
// its line in the UID list at once, so a different file delivered later
// under the same name gets a unique-id of its own, never the removed one's.
func TestMaildropRemovedNameGetsNewUID(t *testing.T) {
	m := newMaildropT(t)
	m.write("new/5000.A.host", "first\n")
	d := m.open()
	require.Equal(t, 1, d.Len())
	first := d.UID(0)
	require.NoError(t, d.Remove([]int{0}))
	d.Close()
	m.write("new/5000.A.host", "a different, longer message\n")
	got := contents(t, m.open())
	require.Len(t, got, 1)
	require.NotEqual(t, first, got["a different, longer message\n"], "a removed message's unique-id is never given again")
}

// TestMaildropFirstScanOldestFirst: on a first scan (no UID list, no
// dovecot-uidlist) UIDs go by the Maildir name, which starts with the
// delivery time, across new/ and cur/: a message still in new/ that is
// older than one already in cur/ gets the lower number, as Dovecot
// numbers it. Before, every message of new/ came after those of cur/.
func TestMaildropFirstScanOldestFirst(t *testing.T) {
	m := newMaildropT(t)
	m.write("cur/1764000300.M3P1.test:2,S", "third\n")
	m.write("new/1764000100.M1P1.test", "first\n")
	m.write("new/1764000400.M4P1.test", "fourth\n")
	m.write("cur/1764000200.M2P1.test:2,", "second\n")
	got := contents(t, m.open())
	require.Equal(t, map[string]uint32{"first\n": 1, "second\n": 2, "third\n": 3, "fourth\n": 4}, got)
	// Later deliveries, to either directory, go after: UIDs only grow.
	m.write("new/1764000050.M0P1.test", "older name, delivered later\n")
	got = contents(t, m.open())
	require.Equal(t, uint32(5), got["older name, delivered later\n"])
}

// TestMaildropFIFONamedLikeAMessage: a message in new/ with a hard link
// beside it, and a FIFO in cur/ named like the link's base: once the two
// are moved to cur/, the FIFO shares a base with a message. It is skipped
// as not a message, and the message keeps its UID from one session to
// the next. Before, the first name of the base (the FIFO) kept the base,
// the message was renamed to a base of its own and got a new UID, and the
// FIFO was listed in its place (found by FuzzMaildropTree).
func TestMaildropFIFONamedLikeAMessage(t *testing.T) {
	m := newMaildropT(t)
	m.write("new/00000000000000000000000", "X-Tree-Id: 0\n\nbody\n")
	require.NoError(t, os.Link(filepath.Join(m.dir, "new/00000000000000000000000"), filepath.Join(m.dir, "new/x")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(m.dir, "cur/x"), 0o600))
	first := m.open()
	uids := map[uint32]bool{}
	for i := range first.Len() {
		uids[first.UID(i)] = true
	}
	first.Close()
	second := m.open()
	for i := range second.Len() {
		f, err := second.Open(i)
		require.NoError(t, err, "message %d is readable", i)
		f.Close()
		assert.True(t, uids[second.UID(i)], "UID %d was not given in the first session", second.UID(i))
	}
	assert.Contains(t, m.logs.String(), "not a message")
}

// openWithin opens user's drop as OpenDrop does, waiting at most wait for
// the UID list's lock.
func (m *MailRoot) openWithin(wait time.Duration, user string, o store.OpenOptions) (*Drop, error) {
	c := *m
	c.LockWait = wait
	return c.OpenDrop(user, o)
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestDropDescriptors: an idle maildrop holds no descriptor but its
// lock's (the exclusive profile) — not the user's directory, which the
// login keeps for the commands that follow it, Idle lets go and an
// operation opens again, nor, for a maildrop of up to
// maxNamesHeld messages, its UID list — so that thousands of idle
// sessions fit the descriptor limit with their sockets; a larger maildrop
// keeps its UID list (its names stay out of memory). Messages still open
// and are removed as ever.
func TestDropDescriptors(t *testing.T) {
	m := newMaildropT(t)
	for i := range 20 {
		m.write(fmt.Sprintf("new/%d.M%dP1.host", 1000+i, i), fmt.Sprintf("Subject: %d\n\nbody\n", i))
	}
	before := openFDs(t)
	snap, err := m.mr.OpenDrop("alice", store.OpenOptions{})
	require.NoError(t, err)
	assert.Equal(t, before+2, openFDs(t), "the directory and its cur/, from the login until the session idles")
	snap.Idle()
	assert.Equal(t, before, openFDs(t), "an idle snapshot session holds nothing")
	require.NoError(t, snap.Close())
	locked, err := m.mr.OpenDrop("alice", store.OpenOptions{Exclusive: true})
	require.NoError(t, err)
	locked.Idle()
	assert.Equal(t, before+1, openFDs(t), "an idle locked session holds its lock only")
	body := contents(t, locked)
	assert.Len(t, body, 20)
	assert.Equal(t, before+4, openFDs(t), "the directory, and cur/ as a root and as the directory messages open at, while the session is busy")
	locked.Idle()
	assert.Equal(t, before+1, openFDs(t), "an idle session lets it go")
	require.NoError(t, locked.Remove([]int{0}))
	locked.Idle()
	assert.Equal(t, before+1, openFDs(t))
	require.NoError(t, locked.Close())
	assert.Equal(t, before, openFDs(t))

	for i := range maxNamesHeld {
		m.write(fmt.Sprintf("new/%d.M%dP2.host", 2000+i, i), "x\n")
	}
	big, err := m.mr.OpenDrop("alice", store.OpenOptions{})
	require.NoError(t, err)
	require.Greater(t, big.Len(), maxNamesHeld)
	big.Idle()
	assert.Equal(t, before+1, openFDs(t), "a large maildrop keeps its UID list, not its names")
	f, err := big.Open(big.Len() - 1)
	require.NoError(t, err)
	f.Close()
	big.Idle()
	require.NoError(t, big.Close())
	assert.Equal(t, before, openFDs(t))
}

// TestDropDirectoryReplaced: an operation after the login works on the
// directory the login listed: one renamed into the user's place since (a
// local user swapping Maildirs) is refused after the session idled, never
// read or removed from; before, the session still holds the login's.
func TestDropDirectoryReplaced(t *testing.T) {
	m := newMaildropT(t)
	m.write("new/1000.M1P1.host", "Subject: mine\n\nbody\n")
	d := m.open()
	other := filepath.Join(m.root, "other")
	require.NoError(t, os.MkdirAll(filepath.Join(other, "cur"), 0o700))
	names, err := os.ReadDir(filepath.Join(m.dir, "cur"))
	require.NoError(t, err)
	require.Len(t, names, 1)
	require.NoError(t, os.WriteFile(filepath.Join(other, "cur", names[0].Name()), []byte("Subject: not the login's\n\n"), 0o600))
	require.NoError(t, os.Rename(m.dir, m.dir+".old"))
	require.NoError(t, os.Rename(other, m.dir))
	assert.Equal(t, map[string]uint32{"Subject: mine\n\nbody\n": 1}, contents(t, d), "the login's directory, held")
	d.Idle()
	_, err = d.Open(0)
	assert.ErrorIs(t, err, ErrNotMaildir)
	var re *store.RemoveError
	require.ErrorAs(t, d.Remove([]int{0}), &re)
	assert.Equal(t, 1, re.Failed)
	_, err = os.Stat(filepath.Join(m.dir, "cur", names[0].Name()))
	assert.NoError(t, err, "nothing removed from the directory put in its place")
}

// TestDropAfterItsDirectoryGoes: an account removed while its session
// goes on is not made again by the session's next operation, and a
// closed maildrop opens and removes nothing (it no longer holds its lock).
func TestDropAfterItsDirectoryGoes(t *testing.T) {
	m := newMaildropT(t)
	m.write("new/1000.M1P1.host", "Subject: mine\n\nbody\n")
	d := m.open()
	d.Idle()
	require.NoError(t, os.RemoveAll(m.dir))
	_, err := d.Open(0)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = os.Stat(m.dir)
	assert.ErrorIs(t, err, fs.ErrNotExist, "the removed account's Maildir is not made again")

	m2 := newMaildropT(t)
	m2.write("new/1000.M1P1.host", "Subject: mine\n\nbody\n")
	d2 := m2.open()
	require.NoError(t, d2.Close())
	_, err = d2.Open(0)
	assert.ErrorIs(t, err, errClosed)
	assert.Error(t, d2.Remove([]int{0}))
	left, err := os.ReadDir(filepath.Join(m2.dir, "cur"))
	require.NoError(t, err)
	assert.Len(t, left, 1, "nothing removed after Close")
}
