package maildir

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pop3kit/pop3kit/internal/faultinject"
	"github.com/pop3kit/pop3kit/server/store"
)

// Errors of the maildrop that sessions turn into replies.
var (
	// ErrNotMaildir: the user's entry in the mail root is not a directory
	// of its own (a symbolic link, a file). Trying again will not help.
	ErrNotMaildir = errors.New("maildrop is not a directory of its own")
	// ErrNotMessage: the file is not a regular file (a FIFO, a device, a
	// directory): it is never opened for reading.
	ErrNotMessage = errors.New("not a regular file")
	// ErrTooLarge: a file larger than a login reads (maxMeasure,
	// maxUIDList).
	ErrTooLarge = errors.New("file too large to read at login")
)

// The file tree of a Maildir is not trusted: its owner can put anything
// there. pop3d therefore reaches every file through an os.Root of the mail
// root and then of the user's Maildir (no name, symbolic link or ".." can
// lead outside it), refuses a user directory that is a symbolic link,
// opens files without blocking (a FIFO cannot hang a login) and reads a
// message no further than the size it had when it was opened (a file that
// grows, or a device, cannot stream forever). What is odd in a maildrop —
// a FIFO, a directory or a symbolic link in cur/ or new/, a damaged UID
// list — is skipped and logged; it never makes the mailbox unusable.

// MailRoot is the directory under which every user's Maildir lives:
// ROOT/<user>/{cur,new,tmp}.
//
// A *MailRoot is a store.Store: Open serves a session, Deliver takes new
// mail, Usage and Warned/SetWarned keep quotas.
type MailRoot struct {
	root *os.Root
	// LockWait bounds a login's wait for the UID list's lock, which
	// other sessions and processes hold only while they list a maildrop.
	// Zero means DefaultLockWait.
	LockWait time.Duration
	// now is the clock a listing's stamp is judged settled by (tests
	// move it on); nil is time.Now.
	now func() time.Time
	// remote: the mail root is on a network file system, whose clients
	// cache a directory's attributes (NFS for up to a minute): a
	// delivery by another host may not change the change time this host
	// sees, so every login lists (no quick login).
	remote bool
}

// OpenMailRoot opens the mail root. The handle stays valid when pop3d
// later drops its privileges.
func OpenMailRoot(dir string) (*MailRoot, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &MailRoot{root: r, remote: onNetwork(r)}, nil
}

// onNetwork reports whether root is on a network (or user-space) file
// system, where attributes are cached: NFS, SMB, Ceph, FUSE. When it
// cannot tell, it says so (true): listing every time is only slower.
func onNetwork(root *os.Root) bool {
	f, err := root.Open(".")
	if err != nil {
		return true
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return true
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.CEPH_SUPER_MAGIC, unix.FUSE_SUPER_MAGIC, unix.AFS_SUPER_MAGIC, unix.AFS_FS_MAGIC, unix.CODA_SUPER_MAGIC:
		return true
	}
	return false
}

// Close closes the mail root.
func (m *MailRoot) Close() error { return m.root.Close() }

// DefaultLockWait is how long a login waits for the UID list's lock: long
// enough for another session to list a 100,000-message maildrop, short
// enough that a login never waits on a stuck process for good.
const DefaultLockWait = 15 * time.Second

// maxEntries bounds the directory entries read from cur/ or new/ at one
// login, so that a directory of millions of files cannot exhaust memory.
// A maildrop cut short this way lists the first entries and forgets no
// UID of the others.
const maxEntries = 2_000_000

// Drop is a maildrop opened for one session. The message list is fixed
// when it is opened (the snapshot); with an exclusive lock no other
// session can change it meanwhile.
//
// An idle session holds no descriptor but, under an exclusive lock, the
// lock's: the user's directory is let go after the login and when the
// session idles (Idle), and opened again for the next operation (it must
// be the directory of the login); the names of a maildrop of up to
// maxNamesHeld messages are held in memory. A larger one keeps its
// session small (about 33 octets a message with the session's marks) by
// keeping the UID list file it listed from open instead (the list is only
// ever replaced by rename, never written in place) and reading a
// message's name from its line when needed.
type Drop struct {
	mr   *MailRoot
	user string
	// dir is the user's Maildir while the drop is opened and from an
	// operation after (attach) until the session idles; nil then. cur is
	// its cur/ over the same time, so that a message opens by its name
	// without walking the path again.
	dir, cur *os.Root
	// dirInfo is the directory the login opened: a later operation
	// refuses another one put in its place.
	dirInfo fileID
	// names are the messages' file names under cur/, by index, for a
	// maildrop of up to maxNamesHeld messages; nil when snap is kept.
	names []string
	// closed: Close has let the lock go; nothing is opened or removed
	// after it.
	closed bool
	msgs   []dropMsg
	snap   *os.File // the UID list this listing came from; nil when empty
	lock   *os.File
	log    *slog.Logger
	wait   time.Duration // bound of a wait for the UID list's lock
	// dovecot: dovecot-uidlist is kept and unique-ids are in Dovecot's
	// format (store.OpenOptions.DovecotUIDs): at every open the list is
	// read again (learning what Dovecot added), new messages get UIDs
	// from its next UID, and the list is written back under Dovecot's
	// dotlock, so that Dovecot and pop3d number every message alike,
	// whichever runs.
	dovecot bool
	// quick: the login listed nothing, its UID list being true to cur/
	// and new/ (quickOpen).
	quick bool
	// exact: Size states exact sizes (store.OpenOptions.ExactSizes).
	exact bool
	// dirs are cur/, new/ and tmp/ opened as directories during a scan,
	// a removal or a delivery (dirFile), nil otherwise.
	dirs [3]*os.File
	// measured holds, during a scan, the sizes measured by base name, so
	// that a scan that starts again does not read the files again.
	measured map[string][2]int64
	// Validity is the UIDVALIDITY, for Dovecot-style unique-ids.
	Validity uint32
}

// maxNamesHeld is the largest maildrop whose file names a session holds
// in memory (about 80 octets each) rather than keeping its UID list open.
const maxNamesHeld = 512

// dropMsg is one message of a listing: 24 octets.
type dropMsg struct {
	exact, storage int64
	uid            uint32
	off            uint32 // offset of its line in snap (lists are far below 4 GiB; name checks the line it reads is this UID's)
}

// Open opens user's Maildir, creating it if the user has none yet. The
// user's entry must be a directory, not a symbolic link. With Exclusive,
// Open takes the session lock first and returns ErrInUse when another
// session (of this or another pop3d process) holds it. New messages are
// moved to cur/ as the Maildir rules say, never over an existing file;
// every message gets its UID and sizes from the UID list, which learns
// the new ones; all of it under the UID list's lock.
func (m *MailRoot) OpenDrop(user string, o store.OpenOptions) (*Drop, error) {
	if !validFileName(user) || user[0] == '.' {
		return nil, fmt.Errorf("%.80q: %w", user, ErrNotMaildir)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := m.openUserDir(user)
	if err != nil {
		return nil, err
	}
	wait := m.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	d := &Drop{mr: m, user: user, dir: dir, log: log, wait: wait, dovecot: o.DovecotUIDs, exact: o.ExactSizes}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := dir.Mkdir(sub, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			d.Close()
			return nil, err
		}
	}
	if d.cur, err = dir.OpenRoot("cur"); err != nil {
		d.Close()
		return nil, err
	}
	if o.Exclusive {
		f, err := openLock(dir, lockName)
		if err != nil {
			d.Close()
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			d.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, store.ErrInUse
			}
			return nil, err
		}
		d.lock = f
	}
	if err := d.scan(wait); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.idle(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// idle lets go, after the login, of what the session never needs again:
// the UID list snapshot of a maildrop small enough to hold its names. The
// directory stays open for the commands that follow the login at once (a
// mail client's STAT, UIDL, RETR…) until the session idles (Idle): one
// open of the directory and of cur/ a session rather than two.
func (d *Drop) idle() error {
	if d.snap != nil && d.names != nil {
		d.snap.Close()
		d.snap = nil
	}
	fi, err := d.dir.Stat(".")
	if err != nil {
		return err
	}
	d.dirInfo = idOf(fi)
	return nil
}

// attach opens the user's directory again for an operation after the
// login, unless it is open, and keeps it until the session is idle
// (Idle). The directory must be the one the login listed: a directory
// put in its place since (renamed, replaced) is refused, and so is a
// symbolic link.
func (d *Drop) attach() error {
	if d.dir != nil {
		return nil
	}
	if d.closed {
		return errClosed
	}
	dir, err := d.mr.userDir(d.user, false)
	if err != nil {
		return err
	}
	if fi, err := dir.Stat("."); err != nil || idOf(fi) != d.dirInfo || d.dirInfo == (fileID{}) {
		dir.Close()
		return fmt.Errorf("%.80q is not the directory the session listed: %w", d.user, ErrNotMaildir)
	}
	cur, err := dir.OpenRoot("cur")
	if err != nil {
		dir.Close()
		return err
	}
	d.dir, d.cur = dir, cur
	return nil
}

// fileID is what tells one file from another (os.SameFile's test), in 16
// octets rather than a FileInfo's 200 kept by every session.
type fileID struct{ dev, ino uint64 }

// idOf returns fi's fileID, zero where the system gives none.
func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), st.Ino}
	}
	return fileID{}
}

// in returns where sub (cur or new) is reached, and the prefix of a name
// in it: cur/ through the root kept for it while the session is active,
// so that every operation of a session sees the same cur/.
func (d *Drop) in(sub string) (*os.Root, string) {
	if sub == "cur" && d.cur != nil {
		return d.cur, ""
	}
	return d.dir, sub + "/"
}

// at returns where path ("cur/NAME", "new/NAME" or a file of the
// Maildir itself) is reached, and its name there: a message of cur/
// through cur/'s own root, one openat for it rather than three.
func (d *Drop) at(path string) (*os.Root, string) {
	if name, ok := strings.CutPrefix(path, "cur/"); ok && d.cur != nil {
		return d.cur, name
	}
	return d.dir, path
}

// lstat looks at path (as at says) without following a link.
func (d *Drop) lstat(path string) (fs.FileInfo, error) {
	root, name := d.at(path)
	return root.Lstat(name)
}

// dirOf is the directory a prefix of in names: "." for cur/'s own root.
func dirOf(pre string) string {
	if pre == "" {
		return "."
	}
	return strings.TrimSuffix(pre, "/")
}

// Idle lets go of the user's directory while the session waits for its
// client (the runtime calls it after a second without a command): an
// idle session holds no descriptor but, under an exclusive lock, the
// lock's. The next operation opens the directory again.
func (d *Drop) Idle() {
	d.closeDirs()
	if d.cur != nil {
		d.cur.Close()
		d.cur = nil
	}
	if d.dir != nil {
		d.dir.Close()
		d.dir = nil
	}
}

// openUserDir opens ROOT/user as a root of its own, creating it when
// missing, and refuses it unless it is a real directory: a symbolic link
// (to another user's Maildir, or anywhere) is refused, and so is a
// directory swapped for another between the check and the open.
func (m *MailRoot) openUserDir(user string) (*os.Root, error) { return m.userDir(user, true) }

// userDir opens ROOT/user as openUserDir does; without create, a missing
// directory is fs.ErrNotExist (an account removed while its session
// went on is not made again).
func (m *MailRoot) userDir(user string, create bool) (*os.Root, error) {
	fi, err := m.root.Lstat(user)
	if create && errors.Is(err, fs.ErrNotExist) {
		if err := m.root.Mkdir(user, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		fi, err = m.root.Lstat(user)
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%.80q is a symbolic link: %w", user, ErrNotMaildir)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%.80q is not a directory: %w", user, ErrNotMaildir)
	}
	dir, err := m.root.OpenRoot(user)
	if err != nil {
		return nil, err
	}
	st, err := dir.Stat(".")
	if err != nil || !os.SameFile(fi, st) {
		dir.Close()
		return nil, fmt.Errorf("%.80q changed while it was opened: %w", user, ErrNotMaildir)
	}
	return dir, nil
}

// injected is the tests' fault hook (internal/faultinject), asked before
// the maildrop's own files are opened — the UID list (pop3kit-uidlist),
// its lock, its temporary file (pop3kit-uidlist.tmp), dovecot-uidlist, the
// session lock — with the maildrop's directory (as it was opened) and the
// file's name: an error it returns stands for the open's.
func injected(dir *os.Root, name string) error { return faultinject.Open(dir.Name(), name) }

// lockName is the file pop3d flocks for an exclusive session.
const lockName = "pop3kit.lock"

// openNonBlocking opens name in dir without blocking (a FIFO opens at
// once) and without handing the descriptor to children.
func openNonBlocking(dir *os.Root, name string, flag int) (*os.File, error) {
	return dir.OpenFile(name, flag|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0o600)
}

// openRegular opens name in dir for reading if it is a regular file, and
// not a symbolic link: os.Root follows links that stay inside the root, so
// a name swapped for a link to another file of the maildrop (its UID list,
// another message) would be read. The name is looked at first (lstat) and
// the opened file must be the one looked at, so a swap between the two is
// refused too.
func openRegular(dir *os.Root, name string) (*os.File, fs.FileInfo, error) {
	if err := injected(dir, name); err != nil {
		return nil, nil, err
	}
	return openRegularFlag(dir, name, os.O_RDONLY)
}

// openRegularFlag is openRegular with the open's flags (O_RDONLY,
// O_RDWR|O_APPEND); it creates nothing.
func openRegularFlag(dir *os.Root, name string, flag int) (*os.File, fs.FileInfo, error) {
	fi, err := dir.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%.80q: %w (%v)", name, ErrNotMessage, fi.Mode().Type())
	}
	f, err := openNonBlocking(dir, name, flag&^os.O_CREATE)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() || !os.SameFile(fi, st) {
		f.Close()
		return nil, nil, fmt.Errorf("%.80q: %w (changed while it was opened)", name, ErrNotMessage)
	}
	return f, st, nil
}

// openLock opens (creating it) the lock file name in dir. Whatever else
// holds the name — a directory, a FIFO, a symbolic link, which O_CREATE
// would follow and create its target — is moved aside first, so that a
// lock file cannot make the maildrop unusable or plant a file elsewhere
// in it.
func openLock(dir *os.Root, name string) (*os.File, error) {
	if err := injected(dir, name); err != nil {
		return nil, err
	}
	for range 3 {
		fi, err := dir.Lstat(name)
		if err == nil && !fi.Mode().IsRegular() {
			if err := moveAside(dir, name); err != nil {
				return nil, err
			}
			continue
		}
		f, err := openNonBlocking(dir, name, os.O_RDWR|os.O_CREATE)
		if err != nil {
			return nil, err
		}
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("%s: not a regular file", name)
}

// moveAside renames name in dir out of the way, keeping it for the
// administrator to look at.
func moveAside(dir *os.Root, name string) error {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return dir.Rename(name, name+".broken."+hex.EncodeToString(rnd[:]))
}

// errClosed is what an operation on a closed Drop returns.
var errClosed = errors.New("maildir: the maildrop was closed")

// Close releases the session lock and the listing. It removes nothing.
func (d *Drop) Close() error {
	d.closed = true
	if d.lock != nil {
		_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
		d.lock.Close()
		d.lock = nil
	}
	if d.snap != nil {
		d.snap.Close()
		d.snap = nil
	}
	d.Idle()
	return nil
}

// Len returns the number of messages in the listing.
func (d *Drop) Len() int { return len(d.msgs) }

// UID returns the UID of message i (from 0).
func (d *Drop) UID(i int) uint32 { return d.msgs[i].uid }

// Size returns the size STAT and LIST state for message i: its exact
// size where the drop was opened with ExactSizes, its storage size
// otherwise.
func (d *Drop) Size(i int) int64 {
	if d.exact {
		return d.msgs[i].exact
	}
	return d.msgs[i].storage
}

// ExactSize returns the exact size of message i: octets in CRLF form,
// what RETR's +OK states.
func (d *Drop) ExactSize(i int) int64 { return d.msgs[i].exact }

// Storage returns the storage size of message i: octets of its file, or
// what its ,S= field says.
func (d *Drop) Storage(i int) int64 { return d.msgs[i].storage }

// lockWithin takes an exclusive flock of name in dir, polling so that the
// wait is bounded by wait and parks no OS thread in the kernel. It returns
// the function that releases the lock.
func lockWithin(dir *os.Root, name string, wait time.Duration) (func(), error) {
	f, err := openLock(dir, name)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		if time.Now().Add(pause).After(deadline) {
			f.Close()
			return nil, store.ErrBusy
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// entry is a file of cur/ or new/.
type entry struct {
	name string
	base string
}

// list returns the files of sub (cur or new) in name order — Maildir
// names start with the delivery time, so this is delivery order — without
// dot files. Names for which check says so are looked at (lstat) and kept
// only when they are regular files; the others are logged and skipped.
// Looking at every name would cost a system call per message at every
// login, so the scan checks only names the UID list does not know: a known
// name was a regular file when it was listed first, and whatever replaced
// it since is refused when it is opened (openRegular). complete is false
// when maxEntries cut the listing short.
func (d *Drop) list(sub string, check func(base string) bool) (out []entry, complete bool, err error) {
	root, pre := d.in(sub)
	f, err := root.Open(dirOf(pre))
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	var odd []string
	complete = true
	for {
		names, types, err := readNames(f, 4096)
		for i, n := range names {
			if n == "" || n[0] == '.' {
				continue
			}
			e := entry{name: n, base: baseName(n)}
			if check != nil && check(e.base) {
				t := types[i]
				if t == unknownType {
					fi, err := root.Lstat(pre + n)
					if err != nil {
						continue // gone since the directory was read
					}
					t = fi.Mode().Type()
				}
				if !t.IsRegular() {
					if len(odd) < 5 {
						odd = append(odd, fmt.Sprintf("%s/%.80q (%v)", sub, n, t))
					}
					continue
				}
			}
			out = append(out, e)
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if len(out) >= maxEntries {
			d.log.Warn("maildrop listing cut short", "dir", sub, "entries", len(out))
			complete = false
			break
		}
	}
	if len(odd) > 0 {
		d.log.Warn("skipped files that are not messages", "files", odd)
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return out, complete, nil
}

// unknownType is a name's type when the file system does not say it.
const unknownType = ^fs.FileMode(0)

// readNames reads up to n names of the directory f and their types as the
// file system gives them with the names (d_type; unknownType where it
// does not). os.File.ReadDir would lstat every name of a directory opened
// in an os.Root: one system call a message at every listing.
func readNames(f *os.File, n int) (names []string, types []fs.FileMode, err error) {
	conn, err := f.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	buf := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(buf)
	for len(names) < n {
		var got int
		var rerr error
		if err := conn.Read(func(fd uintptr) bool {
			got, rerr = unix.Getdents(int(fd), *buf)
			return rerr != unix.EAGAIN
		}); err != nil {
			return names, types, err
		}
		if rerr == unix.EINTR {
			continue
		}
		if rerr != nil {
			return names, types, os.NewSyscallError("getdents", rerr)
		}
		if got <= 0 {
			return names, types, io.EOF
		}
		for b := (*buf)[:got]; len(b) >= direntName; {
			reclen := int(binary.NativeEndian.Uint16(b[direntReclen:]))
			if reclen < direntName || reclen > len(b) {
				return names, types, errors.New("getdents: damaged record")
			}
			name := b[direntName:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if s := string(name); s != "." && s != ".." {
				names = append(names, s)
				types = append(types, direntType(b[direntType8]))
			}
			b = b[reclen:]
		}
	}
	return names, types, nil
}

// The fields of a linux_dirent64: d_ino (8), d_off (8), d_reclen (2),
// d_type (1), then the name.
const (
	direntReclen = 16
	direntType8  = 18
	direntName   = 19
)

// direntBufs holds getdents buffers.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// direntType is the fs.FileMode type of a d_type.
func direntType(t byte) fs.FileMode {
	switch t {
	case unix.DT_REG:
		return 0
	case unix.DT_DIR:
		return fs.ModeDir
	case unix.DT_LNK:
		return fs.ModeSymlink
	case unix.DT_FIFO:
		return fs.ModeNamedPipe
	case unix.DT_SOCK:
		return fs.ModeSocket
	case unix.DT_CHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.DT_BLK:
		return fs.ModeDevice
	}
	return unknownType
}

// always checks every name.
func always(string) bool { return true }

// scan takes the snapshot under the UID list's lock: lists cur/, moves
// new/ to cur/, and gives every message its UID and sizes.
//
// Keeping dovecot-uidlist, scan does not hold Dovecot's lock while it
// lists and measures (a first login can read gigabytes, and Dovecot's
// LDA would wait): it reads dovecot-uidlist under the lock, works
// without it, and takes it again to write only if the list is the one it
// read. When Dovecot changed it meanwhile, scan starts again (sizes
// measured are kept); the last try holds the lock throughout.
func (d *Drop) scan(wait time.Duration) error {
	unlock, err := lockWithin(d.dir, uidLockName, wait)
	if err != nil {
		return err
	}
	defer unlock()
	defer d.closeDirs()
	if !d.dovecot && !d.mr.remote {
		if ok, err := d.quickOpen(); ok || err != nil {
			return err
		}
	}
	d.measured = map[string][2]int64{}
	defer func() { d.measured = nil }()
	for try := 0; ; try++ {
		err := d.scanOnce(try >= 2)
		if !errors.Is(err, errDovecotChanged) {
			return err
		}
		d.log.Debug("dovecot-uidlist changed while the maildrop was listed; listing again")
	}
}

// quickOpen lists the maildrop from its UID list alone, when cur/ and new/
// are what the list's "=dirs" line recorded: nothing was delivered,
// removed or renamed since a listing found the list true to them, so
// there is nothing to list, move or measure. It reports false (and the
// whole scan runs) whenever anything is not so. Keeping dovecot-uidlist
// it is not used: that list must be read again at every login.
func (d *Drop) quickOpen() (bool, error) {
	f, _, err := openRegular(d.dir, uidListName)
	if err != nil {
		return false, nil // the scan says what is wrong with it
	}
	q, ok, err := readQuick(io.LimitReader(f, maxUIDList))
	if err != nil || !ok {
		f.Close()
		return false, nil
	}
	if now, _, err := d.dirStamp(); err != nil || now != q.stamp {
		f.Close()
		return false, nil
	}
	d.Validity = q.validity
	d.msgs, d.names, d.snap = q.msgs, q.names, f
	d.quick = true
	return true, nil
}

// dirStamp returns cur/'s and new/'s stamp, and the time just before
// they were looked at.
func (d *Drop) dirStamp() (dirStamp, time.Time, error) {
	now := time.Now()
	if d.mr.now != nil {
		now = d.mr.now()
	}
	root, pre := d.in("cur")
	c, err := root.Stat(dirOf(pre))
	if err != nil {
		return dirStamp{}, now, err
	}
	n, err := d.dir.Stat("new")
	if err != nil {
		return dirStamp{}, now, err
	}
	cs, ok1 := c.Sys().(*syscall.Stat_t)
	ns, ok2 := n.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return dirStamp{}, now, errors.New("no inode numbers")
	}
	return dirStamp{
		curIno: cs.Ino, curCtime: cs.Ctim.Nano(),
		newIno: ns.Ino, newCtime: ns.Ctim.Nano(),
	}, now, nil
}

// settled reports whether a stamp taken at now can be recorded: a
// directory changed after now gets a change time (ctime) of its own only
// once the clock has moved past the one it has. A time is a tick of the
// kernel's clock (a few milliseconds) on file systems that keep
// nanoseconds, a second or two on those that keep seconds (no
// nanoseconds at all); a directory changed less than that before now may
// change again with the same time, and is listed again at the next login
// (Dovecot's Maildir code waits out the same second, MAILDIR_SYNC_SECS).
// The change time, not the modification time: every name added, removed
// or renamed sets both, but only the modification time can be set back
// (touch, rsync -t).
func settled(s dirStamp, now time.Time) bool {
	ok := func(ctime int64) bool {
		wait := time.Second
		if ctime%int64(time.Second) == 0 {
			// Seconds, or FAT's two: a change a little after now (by
			// the kernel's coarse clock, a tick behind) may still fall
			// in the second or two of ctime.
			wait = 3 * time.Second
		}
		return now.UnixNano()-ctime >= int64(wait)
	}
	return ok(s.curCtime) && ok(s.newCtime)
}

// errDovecotChanged: dovecot-uidlist changed between the read and the
// write of one scan.
var errDovecotChanged = errors.New("dovecot-uidlist changed meanwhile")

// scanOnce is one try of scan. hold keeps Dovecot's lock throughout.
func (d *Drop) scanOnce(hold bool) error {

	l, snap, err := d.loadList()
	if err != nil {
		return err
	}
	if snap != nil {
		old := snap
		defer func() {
			if d.snap != old {
				old.Close()
			}
		}()
	}
	var dv *dovecotKeep
	if d.dovecot {
		// Dovecot's lock is taken inside pop3d's own: sessions of this
		// and other pop3d processes queue on the flock, and only one of
		// them at a time competes with Dovecot for the dotlock.
		if dv, err = d.readDovecot(); err != nil {
			return err
		}
		defer func() { dv.lock.release() }()
		if !hold {
			dv.lock.release()
		}
		var same bool
		if l, same = fromDovecot(l, dv.list); !same {
			snap = nil // the session's list is written anew from l
		}
	}
	// The directories as they are before they are listed: recorded in
	// the list when nothing changes them meanwhile (see settled).
	before, stampedAt, stampErr := d.dirStamp()
	skipped := false // a message left out of this listing
	unknown := func(base string) bool { _, ok := l.entries[base]; return !ok }
	cur, complete, err := d.list("cur", unknown)
	if err != nil {
		return err
	}
	bases := make(map[string]string, len(cur)) // base → name in cur/
	at := make(map[string]int, len(cur))       // base → index in kept
	kept := cur[:0]
	for _, e := range cur {
		if other, dup := bases[e.base]; dup {
			// A known base was not looked at when cur/ was listed: with
			// two names for it, either may be what is not a message (a
			// FIFO or a directory named like the message). Such a name
			// is skipped; it never takes the base, and so the UID, from
			// the message.
			switch {
			case !d.isRegular("cur/" + e.name):
				d.log.Warn("skipped a file that is not a message", "file", "cur/"+e.name)
				continue
			case !d.isRegular("cur/" + other):
				d.log.Warn("skipped a file that is not a message", "file", "cur/"+other)
				bases[e.base] = e.name
				kept[at[e.base]] = e
				continue
			}
			var ok bool
			if e, ok = d.separate(other, e); !ok {
				continue
			}
		}
		bases[e.base] = e.name
		at[e.base] = len(kept)
		kept = append(kept, e)
	}
	cur = kept
	fresh, freshComplete, err := d.list("new", always)
	if err != nil {
		return err
	}
	complete = complete && freshComplete
	moved := false
	for _, e := range fresh {
		n, ok := d.moveNew(e, bases)
		if !ok {
			// Gone meanwhile, or not movable now (EPERM, ENOSPC, EIO):
			// tried again at the next login, which must list new/.
			skipped = true
			continue
		}
		cur = append(cur, entry{name: n, base: baseName(n)})
		moved = true
	}
	if moved {
		d.syncDir("cur")
		d.syncDir("new")
		// New UIDs go oldest first across both directories, by the
		// Maildir name, which starts with the delivery time: message 1
		// is the oldest whatever directory it sits in, as Dovecot
		// numbers a Maildir it meets for the first time.
		slices.SortFunc(cur, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	}

	changed := snap == nil
	present := make(map[string]bool, len(cur))
	exhausted := false
	for _, e := range cur {
		present[e.base] = true
		le, known := l.entries[e.base]
		if !known || le.exact < 0 || le.storage < 0 {
			exact, storage, err := d.measureOnce("cur/"+e.name, e.base)
			if err != nil {
				d.log.Warn("skipped a message that cannot be read", "file", e.name, "err", err)
				delete(present, e.base)
				skipped = true
				continue
			}
			if !known {
				uid, ok := l.take()
				if !ok {
					if !exhausted {
						d.log.Error("no UID left in this maildrop: new messages are not listed", "next", l.next)
						exhausted = true
					}
					delete(present, e.base)
					skipped = true
					continue
				}
				le.uid = uid
			}
			le.exact, le.storage = exact, storage
			changed = true
		}
		if le.name != e.name {
			le.name = e.name
			changed = true
		}
		l.entries[e.base] = le
	}
	if complete {
		changed = d.forget(l, present) || changed
	}
	d.Validity = l.validity
	if dv != nil {
		// dovecot-uidlist first: it is the list both servers go by, and
		// a UID it does not hold must not reach a client.
		if err := dv.keep(l, hold, d.wait, d.log); err != nil {
			return err
		}
	}
	// The next login lists nothing if the directories stay as they were
	// when this listing began, and it changed nothing in them (no
	// message moved, none left out for a later try).
	want := dirStamp{}
	if stampErr == nil && complete && !skipped && dv == nil && settled(before, stampedAt) {
		if after, _, err := d.dirStamp(); err == nil && after == before {
			want = before
		}
	}
	if l.debris > maxDebris && l.debris > len(l.entries)/8 {
		changed = true
	}
	if want != l.stamp {
		l.stamp = want
		if !changed {
			if err := d.appendList(snap, want.appendLine(nil)); err != nil {
				d.log.Debug("UID list: directories' stamp not recorded", "err", err)
			}
		}
	}
	if changed {
		if snap, err = d.saveList(l); err != nil {
			return err
		}
	}
	d.snap = snap
	d.msgs = make([]dropMsg, 0, len(present))
	for base := range present {
		e := l.entries[base]
		d.msgs = append(d.msgs, dropMsg{off: uint32(e.off), exact: e.exact, storage: e.storage, uid: e.uid})
	}
	slices.SortFunc(d.msgs, func(a, b dropMsg) int { return int(int64(a.uid) - int64(b.uid)) })
	d.names = nil
	if len(d.msgs) <= maxNamesHeld {
		// The names are at hand in the list just read: a small maildrop
		// keeps them, and need not read them back from its snapshot.
		byUID := make(map[uint32]string, len(present))
		for base := range present {
			e := l.entries[base]
			byUID[e.uid] = e.name
		}
		d.names = make([]string, len(d.msgs))
		for i, m := range d.msgs {
			d.names[i] = byUID[m.uid]
		}
	}
	return nil
}

// forget drops the entries whose files are gone (their UIDs are never
// given again). A file renamed by another reader while cur/ was being read
// may be missing from that one listing, so cur/ and new/ are read once
// more before anything is forgotten.
func (d *Drop) forget(l *uidList, present map[string]bool) bool {
	var missing []string
	for base := range l.entries {
		if !present[base] {
			missing = append(missing, base)
		}
	}
	if len(missing) == 0 {
		return false
	}
	still := map[string]bool{}
	for _, sub := range []string{"cur", "new"} {
		again, complete, err := d.list(sub, nil)
		if err != nil || !complete {
			return false // forget nothing on a doubtful listing
		}
		for _, e := range again {
			still[e.base] = true
		}
	}
	changed := false
	for _, base := range missing {
		if !still[base] {
			delete(l.entries, base)
			changed = true
		}
	}
	return changed
}

// separate handles a second file in cur/ whose base name is already taken
// by another: hard links of one message are one message (false: leave e
// out of the listing); two different messages are both kept, e renamed to
// a base of its own (true, with e's new name), so neither hides the other.
func (d *Drop) separate(name string, e entry) (entry, bool) {
	_, errA := d.lstat("cur/" + name)
	_, errB := d.lstat("cur/" + e.name)
	if errA != nil || errB != nil || d.same("cur/"+name, "cur/"+e.name) {
		// One of the two is gone (a reader renamed it while cur/ was
		// read) or they are hard links of one file: one message.
		return e, false
	}
	info := strings.TrimPrefix(e.name, e.base)
	for range 8 {
		base := uniqueBase(e.base)
		err := d.moveNoReplace("cur/"+e.name, "cur/"+base+info)
		if err == nil {
			d.log.Warn("two messages had one base name; one was renamed", "file", e.name, "now", base+info)
			return entry{name: base + info, base: base}, true
		}
		if !errors.Is(err, fs.ErrExist) {
			d.log.Warn("cannot rename a message that shares a base name", "file", e.name, "err", err)
			return e, false
		}
	}
	return e, false
}

// isRegular reports whether name in the maildrop is a regular file (not a
// link, FIFO, directory or device).
func (d *Drop) isRegular(name string) bool {
	fi, err := d.lstat(name)
	return err == nil && fi.Mode().IsRegular()
}

// same reports whether two names of the maildrop are one file (hard
// links). A name that cannot be looked at is not the same as anything:
// callers remove a name only when it certainly has another.
func (d *Drop) same(a, b string) bool {
	x, err1 := d.lstat(a)
	y, err2 := d.lstat(b)
	return err1 == nil && err2 == nil && os.SameFile(x, y)
}

// uniqueBase returns base with a random suffix that makes it unique.
func uniqueBase(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base + "_R" + hex.EncodeToString(b[:])
}

// moveNew moves a file of new/ to cur/ with the ":2," info part (Maildir:
// a reader that has seen a message moves it to cur). It never replaces a
// file: a name taken in cur/ gets a base of its own. It returns the name
// in cur/, or false when the file is gone (another reader moved it) or
// cannot be moved.
func (d *Drop) moveNew(e entry, bases map[string]string) (string, bool) {
	info := ":2,"
	if i := strings.Index(e.name, ":2,"); i >= 0 {
		info = e.name[i:]
	}
	base := e.base
	if name, taken := bases[base]; taken && d.same("new/"+e.name, "cur/"+name) {
		// A reader (this one, killed between link and unlink, or one
		// that takes no lock) already put this very file in cur/: it is
		// one message, and only the old name is left to remove.
		_ = d.dir.Remove("new/" + e.name)
		return "", false
	}
	for try := 0; try < 8; try++ {
		if _, taken := bases[base]; taken {
			base = uniqueBase(e.base)
			continue
		}
		err := d.moveNoReplace("new/"+e.name, "cur/"+base+info)
		if err == nil {
			if base != e.base {
				d.log.Warn("a new message had the name of one in cur/; it was given its own", "file", e.name, "now", base+info)
			}
			bases[base] = base + info
			return base + info, true
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", false
		}
		if !errors.Is(err, fs.ErrExist) {
			d.log.Warn("cannot move a new message to cur/", "file", e.name, "err", err)
			return "", false
		}
		// The name was taken after cur/ was listed: a reader that does
		// not take our lock (Dovecot) is moving the same file, or a
		// different file has the name.
		if d.same("new/"+e.name, "cur/"+base+info) {
			_ = d.dir.Remove("new/" + e.name)
			bases[base] = base + info
			return base + info, true
		}
		base = uniqueBase(e.base)
	}
	return "", false
}

// moveNoReplace renames from to to ("cur/NAME" or "new/NAME") unless to
// exists (fs.ErrExist): one renameat2 with RENAME_NOREPLACE between the
// two directories' descriptors where the kernel and the file system have
// it; otherwise a hard link, then the old name removed, as Maildir
// readers have always done; on a file system without hard links it
// checks and renames. The names are single entries of cur/ and new/ (no
// "/"), so the *at calls reach nothing outside those directories.
func (d *Drop) moveNoReplace(from, to string) error {
	if !noRenameNoReplace.Load() {
		err := d.renameNoReplace(from, to)
		switch {
		case err == nil, errors.Is(err, fs.ErrExist), errors.Is(err, fs.ErrNotExist):
			return err
		case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOSYS):
			noRenameNoReplace.Store(true) // then never again in this process
		}
		// Anything else (EPERM from a seccomp filter that does not know
		// renameat2, EXDEV…) is for the older way to meet, or report.
	}
	err := d.dir.Link(from, to)
	if err == nil {
		if err := d.dir.Remove(from); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("moved message left its old name", "file", from, "err", err)
		}
		return nil
	}
	if errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EMLINK) && !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if _, err := d.dir.Lstat(to); err == nil {
		return fs.ErrExist
	}
	return d.dir.Rename(from, to)
}

// noRenameNoReplace: renameat2 with RENAME_NOREPLACE was refused (an old
// kernel, a file system without it).
var noRenameNoReplace atomic.Bool

// renameNoReplace is renameat2(RENAME_NOREPLACE) of from to to.
func (d *Drop) renameNoReplace(from, to string) error {
	fromSub, fromName, _ := strings.Cut(from, "/")
	toSub, toName, _ := strings.Cut(to, "/")
	fd, err := d.dirFile(fromSub)
	if err != nil {
		return err
	}
	td, err := d.dirFile(toSub)
	if err != nil {
		return err
	}
	err = unix.Renameat2(int(fd.Fd()), fromName, int(td.Fd()), toName, unix.RENAME_NOREPLACE)
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: from, New: to, Err: err}
	}
	return nil
}

// dirFile returns sub (cur, new or tmp) open as a directory, for the *at
// calls and the syncs of one scan, removal or delivery; closeDirs closes
// them at its end.
func (d *Drop) dirFile(sub string) (*os.File, error) {
	var i int
	switch sub {
	case "cur":
		i = 0
	case "new":
		i = 1
	case "tmp":
		i = 2
	default:
		return nil, fmt.Errorf("maildir: %q is not cur, new or tmp", sub)
	}
	if d.dirs[i] == nil {
		root, pre := d.in(sub)
		f, err := root.Open(dirOf(pre))
		if err != nil {
			return nil, err
		}
		d.dirs[i] = f
	}
	return d.dirs[i], nil
}

// closeDirs closes what dirFile opened.
func (d *Drop) closeDirs() {
	for i, f := range d.dirs {
		if f != nil {
			f.Close()
			d.dirs[i] = nil
		}
	}
}

// syncDir makes the renames in sub durable.
func (d *Drop) syncDir(sub string) {
	if f, err := d.dirFile(sub); err == nil {
		_ = f.Sync()
	}
}

// loadList reads the UID list, or imports dovecot-uidlist, or starts a new
// one. snap is the open list file when it can serve as the session's
// snapshot as it is (a clean version 2 list), nil when the list must be
// written. Call it under the UID list's lock.
func (d *Drop) loadList() (l *uidList, snap *os.File, err error) {
	f, st, err := openRegular(d.dir, uidListName)
	if err == nil {
		l, err := parseUIDList(io.LimitReader(f, maxUIDList))
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %v", uidListName, err)
		}
		if st.Size() > maxUIDList {
			l.problem("%d octets: only the first %d were read", st.Size(), maxUIDList)
		}
		if len(l.problems) > 0 {
			d.log.Warn("UID list repaired: every UID that could be read is kept", "problems", l.problems)
		}
		if len(l.problems) > 0 || l.version != uidListVersion {
			f.Close()
			return l, nil, nil
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, nil, err
		}
		return l, f, nil
	}
	switch {
	case errors.Is(err, ErrNotMessage):
		// A directory or FIFO took the list's name: no list was ever
		// kept there. saveList moves the thing aside.
		d.log.Warn("UID list is not a file; starting a new one", "err", err)
		return newUIDList(), nil, nil
	case !errors.Is(err, fs.ErrNotExist):
		// EACCES, EMFILE, EIO…: the list exists but cannot be read now.
		// A new list would renumber every message and reuse UIDs, so
		// the login fails instead and nothing is touched.
		return nil, nil, fmt.Errorf("%s cannot be read, so no UID is given out: %w", uidListName, err)
	}
	// No list yet: Dovecot's is imported when there is one.
	f, _, err = openRegular(d.dir, dovecotUIDList)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrNotMessage):
		return newUIDList(), nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("%s cannot be read, so no UID is given out: %w", dovecotUIDList, err)
	}
	defer f.Close()
	l, err = parseDovecotUIDList(io.LimitReader(f, maxUIDList))
	switch {
	case err == nil:
		if len(l.problems) > 0 {
			d.log.Warn("dovecot-uidlist damaged: every UID that could be read is kept", "problems", l.problems)
		}
		return l, nil, nil
	case errors.Is(err, errDovecotDamaged):
		d.log.Warn("dovecot-uidlist cannot be read; starting a new list", "err", err)
		return newUIDList(), nil, nil
	}
	return nil, nil, fmt.Errorf("%s cannot be read, so no UID is given out: %w", dovecotUIDList, err)
}

// saveList replaces the UID list and returns the new file, open, as the
// session's snapshot. The new list is written to a temporary file, synced,
// renamed over the old and the directory synced, so that a crash leaves
// either list whole. Call it under the UID list's lock.
func (d *Drop) saveList(l *uidList) (*os.File, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := uidListName + ".tmp." + hex.EncodeToString(rnd[:])
	if err := injected(d.dir, uidListName+".tmp"); err != nil {
		return nil, err
	}
	f, err := d.dir.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		_ = d.dir.Remove(tmp)
		return nil, err
	}
	if err := l.write(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := d.dir.Rename(tmp, uidListName); err != nil {
		// Something that is not a file took the list's name (a
		// directory): put it aside rather than lose the maildrop.
		if moveAside(d.dir, uidListName) != nil || d.dir.Rename(tmp, uidListName) != nil {
			return fail(err)
		}
		d.log.Warn("UID list's name was taken by something else; moved aside")
	}
	if dir, err := d.dir.Open("."); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return f, nil
}

// maxDebris is how many appended lines ("-UID", "=dirs") a list may
// gather, beyond an eighth of its messages, before it is written whole.
const maxDebris = 64

// appendList appends lines to the UID list in place, under its lock: the
// lines before them never change, so sessions reading their snapshot of
// the same file by offset are not disturbed. snap, when not nil, is the
// list as this session read it: the list must still be that file. A list
// whose last line was cut short (a crash) gets nothing appended; the next
// login writes it whole. No fsync: a line lost in a crash costs a login a
// listing, or a removed message's line kept until the next one.
func (d *Drop) appendList(snap *os.File, lines []byte) error {
	if err := injected(d.dir, uidListName); err != nil {
		return err
	}
	f, st, err := openRegularFlag(d.dir, uidListName, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return err
	}
	defer f.Close()
	if snap != nil {
		if sst, err := snap.Stat(); err != nil || !os.SameFile(st, sst) {
			return errors.New("the list was replaced")
		}
	}
	var last [1]byte
	if st.Size() == 0 {
		return errors.New("the list is empty")
	}
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return err
	}
	if last[0] != '\n' {
		return errors.New("the list's last line is cut short")
	}
	_, err = f.Write(lines)
	return err
}

// name returns the file name of message i, read from the snapshot.
func (d *Drop) name(i int) (string, error) {
	if d.names != nil {
		return d.names[i], nil
	}
	var buf [maxUIDListLine]byte
	n, err := d.snap.ReadAt(buf[:], int64(d.msgs[i].off))
	if n == 0 && err != nil {
		return "", err
	}
	line := buf[:n]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	e, err := parseUIDLine(line, uidListVersion)
	if err != nil || e.uid != d.msgs[i].uid {
		return "", fmt.Errorf("UID list snapshot: line at %d does not match uid %d", d.msgs[i].off, d.msgs[i].uid)
	}
	return e.name, nil
}

// sizeField returns the value of a ",S=" or ",W=" field of a Maildir base
// name, or -1. Values of more than 15 digits (a petabyte) are not believed:
// sums of sizes then cannot overflow.
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
	if v == "" || len(v) > 15 || strings.TrimLeft(v, "0123456789") != "" {
		return -1
	}
	var n int64
	for i := 0; i < len(v); i++ {
		n = n*10 + int64(v[i]-'0')
	}
	return n
}

// maxMeasure bounds the file a login reads to learn a message's exact
// size: a larger one is skipped and logged (not removed) unless its name
// carries ,S= and ,W=, as delivery agents write them. Measuring runs
// under the UID list's lock, before the client gets its reply; without a
// bound a sparse file of terabytes would hold the lock, and a core, for
// hours after the client left. A gibibyte reads in a second or two, and
// is far beyond what mail systems accept as one message (Exchange's
// default is 35 MB, Postfix's 10 MB).
const maxMeasure = 1 << 30

// copyBufs holds the buffers messages are measured with.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// measure returns a message's exact size (its CRLF form: every LF not
// preceded by CR counts two octets) and its storage size. The ,W= and ,S=
// fields that Dovecot and others write into the name are used when
// present; otherwise the file is read once, no further than its size
// (and the UID list remembers).
func (d *Drop) measure(path, base string) (exact, storage int64, err error) {
	exact, storage = sizeField(base, "W"), sizeField(base, "S")
	root, name := d.at(path)
	f, st, err := openRegular(root, name)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if exact >= 0 && storage >= 0 {
		return exact, storage, nil
	}
	if st.Size() > maxMeasure {
		return 0, 0, fmt.Errorf("%d octets with no ,S= and ,W= in its name: %w", st.Size(), ErrTooLarge)
	}
	n, crlf, err := copyCounting(io.Discard, io.LimitReader(f, st.Size()))
	if err != nil {
		return 0, 0, err
	}
	if exact < 0 {
		exact = crlf
	}
	if storage < 0 {
		storage = n
	}
	return exact, storage, nil
}

// messageFile is an open message. Reads stop at the size the file had when
// it was opened; they are preads, so reading it again from its start
// (Seek) costs nothing.
type messageFile struct {
	f     fileAt
	size  int64
	off   int64
	mtime time.Time
}

// fileAt is what a message is read from: a descriptor of cur/'s (rawFile),
// or an *os.File where a message moved by another reader is found again.
type fileAt interface {
	io.ReaderAt
	io.Closer
}

func (m *messageFile) Read(p []byte) (int, error) {
	if m.off >= m.size {
		return 0, io.EOF
	}
	if rest := m.size - m.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := m.f.ReadAt(p, m.off)
	m.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // the file shrank: the next Read says so
	}
	return n, err
}

// Seek starts the message again from its first octet, the only seek it
// supports (offset 0 from io.SeekStart): the core measures what TOP sends,
// then sends it.
func (m *messageFile) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return 0, errors.New("maildir: a message can only be read again from its start")
	}
	m.off = 0
	return 0, nil
}

func (m *messageFile) Close() error { return m.f.Close() }

// rawFile is a message opened by openMessageAt: a bare descriptor, read by
// pread. An *os.File would try, and fail, to add every regular file to
// the network poller (one epoll_ctl each), and set a finalizer.
type rawFile struct {
	fd   int
	name string
}

func (r *rawFile) ReadAt(p []byte, off int64) (int, error) {
	if r.fd < 0 {
		return 0, os.ErrClosed
	}
	for {
		n, err := unix.Pread(r.fd, p, off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return max(n, 0), &fs.PathError{Op: "pread", Path: r.name, Err: err}
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (r *rawFile) Close() error {
	if r.fd < 0 {
		return os.ErrClosed
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: r.name, Err: err}
	}
	return nil
}

// openMessageAt opens name, an entry of the directory dir (cur/), as
// openRegular does — not a link, not a FIFO or device, the file looked at
// — with the *at calls on dir's descriptor: lstat, open, fstat. name is one
// entry (no "/"), so nothing outside dir is reached.
func openMessageAt(dir *os.File, name string) (*messageFile, error) {
	if !validFileName(name) {
		return nil, fmt.Errorf("%.80q: %w", name, ErrNotMessage)
	}
	dfd := int(dir.Fd())
	var look, got unix.Stat_t
	if err := unix.Fstatat(dfd, name, &look, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	if look.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%.80q: %w", name, ErrNotMessage)
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if err := unix.Fstat(fd, &got); err != nil || got.Mode&unix.S_IFMT != unix.S_IFREG || got.Ino != look.Ino || got.Dev != look.Dev {
		unix.Close(fd)
		return nil, fmt.Errorf("%.80q: %w (changed while it was opened)", name, ErrNotMessage)
	}
	return &messageFile{f: &rawFile{fd: fd, name: name}, size: got.Size, mtime: time.Unix(got.Mtim.Unix())}, nil
}

// Open opens message i (from 0) for reading. When the file moved (another
// reader changed its flags) it is found again by its base name; when it
// is gone, Open returns store.ErrGone. Only a regular file is opened. The
// reader is an io.Seeker too, back to the message's start, with which the
// core measures what TOP sends.
func (d *Drop) Open(i int) (io.ReadCloser, error) {
	f, err := d.openFile(i)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// openFile opens message i's file, as Open does.
func (d *Drop) openFile(i int) (*messageFile, error) {
	name, err := d.name(i)
	if err != nil {
		return nil, err
	}
	if err := d.attach(); err != nil {
		return nil, err
	}
	cur, err := d.dirFile("cur")
	if err != nil {
		return nil, err
	}
	m, err := openMessageAt(cur, name)
	if !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	root, path, ok := d.find(baseName(name))
	if !ok {
		return nil, store.ErrGone
	}
	f, st, err := openRegular(root, path)
	if err != nil {
		return nil, err
	}
	return &messageFile{f: f, size: st.Size(), mtime: st.ModTime()}, nil
}

// find looks for a message's file in cur/ and new/ by its base name.
func (d *Drop) find(base string) (root *os.Root, path string, ok bool) {
	for _, sub := range []string{"cur", "new"} {
		ents, _, err := d.list(sub, nil)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.base == base {
				root, pre := d.in(sub)
				return root, pre + e.name, true
			}
		}
	}
	return nil, "", false
}

// Remove removes the messages at the indexes given, one by one; when some
// could not be removed it returns a *store.RemoveError that says how many
// (MS-STANXPOP3 V0006: the UPDATE state is not atomic, but nothing
// unmarked is ever touched). A message already gone counts as removed; an
// index out of range or given twice is ignored.
func (d *Drop) Remove(indexes []int) error {
	err := d.attach()
	if err != nil {
		return &store.RemoveError{Failed: len(indexes), Err: err}
	}
	var gone []uint32
	var bases []string // of gone, when each was unlinked here, its only name
	var failed int
	sure := true // every file of gone was unlinked here, and had one name
	seen := make(map[int]bool, len(indexes))
	for _, i := range indexes {
		if i < 0 || i >= len(d.msgs) || seen[i] {
			continue
		}
		seen[i] = true
		base, only, rerr := d.remove(i)
		sure = sure && only
		if only {
			bases = append(bases, base)
		}
		if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			failed++
			if err == nil {
				err = fmt.Errorf("remove uid %d: %w", d.msgs[i].uid, rerr)
			}
			continue
		}
		gone = append(gone, d.msgs[i].uid)
	}
	defer d.closeDirs()
	if len(gone) > 0 {
		d.syncDir("cur")
		if d.dovecot || !sure || d.tombstones(gone, bases) != nil {
			d.forgetRemoved(gone)
		}
	}
	if failed > 0 {
		return &store.RemoveError{Failed: failed, Err: err}
	}
	return nil
}

// forgetRemoved drops the removed messages' lines from the UID list at
// once, rather than at the next login: a file delivered meanwhile under a
// removed message's name (a delivery agent that reuses names, a restore)
// must get a UID of its own, never the removed message's. A list that
// cannot be locked or written now is left to the next login, which
// forgets what is gone.
func (d *Drop) forgetRemoved(uids []uint32) {
	unlock, err := lockWithin(d.dir, uidLockName, d.wait)
	if err != nil {
		d.log.Warn("UID list not updated after removal; the next login will", "err", err)
		return
	}
	defer unlock()
	l, snap, err := d.loadList()
	if err != nil {
		d.log.Warn("UID list not updated after removal; the next login will", "err", err)
		return
	}
	if snap != nil {
		snap.Close()
	}
	gone := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		gone[u] = true
	}
	// A name left with the base of a removed message (a hard link under
	// other flags) is the same message: it keeps its line.
	left := map[string]bool{}
	for _, sub := range []string{"cur", "new"} {
		ents, _, err := d.list(sub, nil)
		if err != nil {
			return
		}
		for _, e := range ents {
			left[e.base] = true
		}
	}
	for base, e := range l.entries {
		if gone[e.uid] && !left[base] {
			delete(l.entries, base)
		}
	}
	if d.dovecot {
		d.forgetDovecot(gone, left)
	}
	f, err := d.saveList(l)
	if err != nil {
		d.log.Warn("UID list not updated after removal; the next login will", "err", err)
		return
	}
	f.Close()
}

// tombstones records at UPDATE that the messages with these UIDs and
// base names are gone: a "-UID BASE" line each, appended to the UID list
// rather than the list written whole (five megabytes for 100,000
// messages). Only messages whose file this session unlinked itself, and
// which had no other name, are recorded so: their base name is then
// certainly gone, and a file delivered later under it gets a UID of its
// own. A line counts only where the list gives the UID to that base name.
func (d *Drop) tombstones(uids []uint32, bases []string) error {
	unlock, err := lockWithin(d.dir, uidLockName, d.wait)
	if err != nil {
		return err
	}
	defer unlock()
	var b []byte
	for i, u := range uids {
		b = appendTombstone(b, u, bases[i])
	}
	return d.appendList(nil, b)
}

// remove removes message i's file, wherever a reader moved it. only
// reports that this call unlinked the file, and that it had no other name
// (its base name is gone for certain); base is its base name. A file that
// was not found, or went while it was removed (another reader renaming
// it), is not only: UPDATE then forgets it the careful way
// (forgetRemoved), keeping every base name still listed.
func (d *Drop) remove(i int) (base string, only bool, err error) {
	name, err := d.name(i)
	if err != nil {
		return "", false, err
	}
	base = baseName(name)
	root, path := d.in("cur")
	path += name
	fi, err := root.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		var ok bool
		if root, path, ok = d.find(base); !ok {
			return base, false, nil // gone
		}
		fi, err = root.Lstat(path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return base, false, nil
		}
		return base, false, err
	}
	if err := root.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return base, false, nil // renamed meanwhile: not sure
		}
		return base, false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return base, ok && st.Nlink == 1, nil
}

// Keeping dovecot-uidlist. In Dovecot's format a unique-id is a message's
// UID and the mailbox's UIDVALIDITY, both from dovecot-uidlist: for pop3d
// and Dovecot (its POP3 and IMAP servers, its LDA) to give a message the
// same unique-id, whichever of them saw it first, both must take UIDs
// from that one list. pop3d does it as Dovecot does (maildir-uidlist.c):
// it takes the list's dotlock, reads the list again, gives new messages
// the UIDs from its next UID on, and replaces the list while holding the
// lock. pop3kit-uidlist stays the session's snapshot, derived from
// dovecot-uidlist at every open.

// dovecotLockName is Dovecot's dotlock of dovecot-uidlist.
const dovecotLockName = dovecotUIDList + ".lock"

// dovecotKeep is dovecot-uidlist as read under its dotlock by one open.
type dovecotKeep struct {
	lock *dotlock
	dir  *os.Root
	list *dovecotList // nil when there was none (or it was unreadable)
	seen fileChange   // dovecot-uidlist as read (unseen when none)
}

// listIdentity returns what tells one dovecot-uidlist from another:
// Dovecot replaces it by rename (a new inode) or appends to it under its
// lock (a new size and mtime).
func listIdentity(dir *os.Root) fileChange {
	var c fileChange
	if fi, err := dir.Lstat(dovecotUIDList); err == nil {
		c.update(fi, time.Now())
	}
	return c
}

// measureOnce is measure, remembering the sizes for the rest of the scan.
func (d *Drop) measureOnce(path, base string) (exact, storage int64, err error) {
	if m, ok := d.measured[base]; ok {
		if _, err := d.lstat(path); err == nil {
			return m[0], m[1], nil
		}
	}
	exact, storage, err = d.measure(path, base)
	if err == nil && d.measured != nil {
		d.measured[base] = [2]int64{exact, storage}
	}
	return exact, storage, err
}

// readDovecot takes dovecot-uidlist's dotlock and reads the list. A list
// that cannot be read (a damaged header, not a regular file) is moved
// aside for the administrator and the session goes on without it, as
// Dovecot does (it deletes such a list); a list larger than a login reads
// is an error, since writing back the part read would lose the rest.
func (d *Drop) readDovecot() (*dovecotKeep, error) {
	lk, err := takeDotlock(d.dir, dovecotUIDList, d.wait, time.Now, d.log)
	if err != nil {
		return nil, err
	}
	k, err := d.readDovecotLocked(lk)
	if err != nil {
		lk.release()
		return nil, err
	}
	k.seen = listIdentity(d.dir)
	return k, nil
}

// readDovecotLocked is readDovecot under the lock lk.
func (d *Drop) readDovecotLocked(lk *dotlock) (*dovecotKeep, error) {
	k := &dovecotKeep{lock: lk, dir: d.dir}
	f, st, err := openRegular(d.dir, dovecotUIDList)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return k, nil
	case errors.Is(err, ErrNotMessage):
		d.log.Warn("dovecot-uidlist is not a regular file; moved aside", "err", err)
		if err := moveAside(d.dir, dovecotUIDList); err != nil {
			return nil, err
		}
		return k, nil
	case err != nil:
		return nil, err
	}
	defer f.Close()
	if st.Size() > maxUIDList {
		return nil, fmt.Errorf("%s: %d octets, more than the %d a login reads: %w", dovecotUIDList, st.Size(), maxUIDList, ErrTooLarge)
	}
	l, err := parseDovecotList(io.LimitReader(f, maxUIDList))
	if err != nil && !errors.Is(err, errDovecotDamaged) {
		return nil, err
	}
	if err != nil {
		d.log.Warn("dovecot-uidlist cannot be read; moved aside, the UIDs pop3d knows are kept", "err", err)
		if err := moveAside(d.dir, dovecotUIDList); err != nil {
			return nil, err
		}
		return k, nil
	}
	if len(l.problems) > 0 {
		d.log.Warn("dovecot-uidlist damaged: every UID that could be read is kept", "problems", l.problems)
	}
	k.list = l
	return k, nil
}

// fromDovecot derives the session's list from dovecot-uidlist dl and
// pop3d's own list own: dl's UIDVALIDITY, next UID and records, with the
// file names and sizes own knows for the same base name and UID. It also
// keeps what own has and dl lacks when no UID of dl can clash with it:
// a message own gave a UID of dl's next UID or above (pop3d before it
// kept dovecot-uidlist) keeps it, since Dovecot never gave that UID. same
// reports that the result is own as it was. Without dl, own is the list.
func fromDovecot(own *uidList, dl *dovecotList) (l *uidList, same bool) {
	if dl == nil {
		own.dovecot = true
		return own, true
	}
	l = &uidList{validity: dl.validity, next: dl.next, entries: make(map[string]uidEntry, len(dl.recs)), dovecot: true}
	same = own.validity == dl.validity && len(own.entries) >= len(dl.recs)
	uids := make(map[uint32]bool, len(dl.recs))
	for _, r := range dl.recs {
		uids[r.uid] = true
		if e, ok := own.entries[r.base]; ok && e.uid == r.uid {
			l.entries[r.base] = e
			continue
		}
		same = false
		l.entries[r.base] = uidEntry{uid: r.uid, exact: -1, storage: -1, name: r.base}
	}
	if own.validity == dl.validity {
		for base, e := range own.entries {
			if _, ok := l.entries[base]; ok {
				continue
			}
			if uint64(e.uid) >= dl.next && e.uid <= dovecotMaxUID && !uids[e.uid] {
				l.entries[base] = e
				uids[e.uid] = true
				continue
			}
			same = false
		}
		// A UID own gave is never given again, even when Dovecot's list
		// did not learn it.
		l.next = max(l.next, own.next)
	}
	same = same && l.next == own.next && len(l.entries) == len(own.entries)
	for base := range l.entries {
		if l.entries[base].uid > dovecotMaxUID {
			delete(l.entries, base)
			same = false
		}
	}
	return l, same
}

// keep writes dovecot-uidlist from the session's list l when it differs
// from what was read: records of l's messages as read (their extension
// fields kept), new records for the messages it did not have, no record
// for a message that is gone; l's next UID. Without a change the lock is
// released and the list left as it was.
//
// Unless hold says the lock was kept since the read, it is taken again
// first, and errDovecotChanged returned when the list is no longer the
// one read.
func (k *dovecotKeep) keep(l *uidList, hold bool, wait time.Duration, log *slog.Logger) error {
	out := &dovecotList{validity: l.validity, next: l.next}
	changed := k.list == nil
	seen := map[string]bool{}
	if k.list != nil {
		out.head = k.list.head
		changed = len(k.list.problems) > 0 || k.list.validity != l.validity || min(k.list.next, math.MaxUint32) != min(l.next, math.MaxUint32)
		for _, r := range k.list.recs {
			if e, ok := l.entries[r.base]; ok && e.uid == r.uid {
				out.recs = append(out.recs, r)
				seen[r.base] = true
				continue
			}
			changed = true
		}
	}
	for base, e := range l.entries {
		if !seen[base] && e.uid <= dovecotMaxUID {
			out.recs = append(out.recs, dovecotRec{uid: e.uid, base: base})
			changed = true
		}
	}
	if !changed {
		k.lock.release()
		return nil
	}
	if !hold {
		lk, err := takeDotlock(k.dir, dovecotUIDList, wait, time.Now, log)
		if err != nil {
			return err
		}
		k.lock = lk
		if listIdentity(k.dir) != k.seen {
			return errDovecotChanged
		}
	}
	if err := k.lock.replace(out.write); err != nil {
		return fmt.Errorf("%s: %w", dovecotUIDList, err)
	}
	return nil
}

// forgetDovecot drops from dovecot-uidlist the records of removed
// messages (UIDs in gone) whose base name no file has any more (left),
// for the reason forgetRemoved gives. A list that cannot be locked or
// written now is left to the next login, as Dovecot would leave it.
func (d *Drop) forgetDovecot(gone map[uint32]bool, left map[string]bool) {
	k, err := d.readDovecot()
	if err != nil {
		d.log.Warn("dovecot-uidlist not updated after removal; the next login will", "err", err)
		return
	}
	defer k.lock.release()
	if k.list == nil {
		return
	}
	kept := k.list.recs[:0:0]
	for _, r := range k.list.recs {
		if !gone[r.uid] || left[r.base] {
			kept = append(kept, r)
		}
	}
	if len(kept) == len(k.list.recs) {
		return
	}
	k.list.recs = kept
	if err := k.lock.replace(k.list.write); err != nil {
		d.log.Warn("dovecot-uidlist not updated after removal; the next login will", "err", err)
	}
}

// Dovecot's dotlock (src/lib/file-dotlock.c), as its Maildir code uses it
// for dovecot-uidlist: the lock is the file NAME.lock, created with
// O_EXCL, holding "PID:HOSTNAME" of its creator. A waiter takes a lock
// over when it is stale: at once when it names a process of this host
// that no longer exists (and is older than dotlockPIDCheck); otherwise
// when neither it nor the locked file changed for dotlockStale. Its holder
// replaces the locked file by writing the new contents into the lock file
// and renaming it over the file (file_dotlock_replace), which also
// releases the lock; or removes the lock unchanged.
const (
	// dotlockStale is MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT: 2 minutes.
	dotlockStale = 2 * time.Minute
	// dotlockPIDCheck is STALE_PID_CHECK_SECS: a lock younger than this
	// is not checked for a dead process (its creator may be writing it).
	dotlockPIDCheck = 2 * time.Second
)

// dotlock is a dotlock held.
type dotlock struct {
	dir  *os.Root
	name string // the locked file
	f    *os.File
	st   fs.FileInfo // the lock file as created
}

// takeDotlock takes name's dotlock in dir, waiting at most wait; now is
// the clock staleness is judged by (tests move it). A lock that stays
// held, and is not stale, makes it fail with ErrBusy, saying who holds
// it. Whatever is not a regular file under the lock's name cannot be a
// lock (Dovecot creates regular files): it is moved aside at once.
func takeDotlock(dir *os.Root, name string, wait time.Duration, now func() time.Time, log *slog.Logger) (*dotlock, error) {
	lockName := name + ".lock"
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	w := lockWatch{dir: dir, name: name, lockName: lockName, now: now}
	for {
		f, err := dir.OpenFile(lockName, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o600)
		if err == nil {
			return newDotlock(dir, name, f, log)
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s: %w", lockName, err)
		}
		switch verdict, holder := w.check(); verdict {
		case lockGone:
			continue
		case lockOdd:
			log.Warn("the name of dovecot-uidlist's lock was taken by something that is no lock; moved aside", "lock", lockName)
			if err := moveAside(dir, lockName); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w", lockName, err)
			}
			continue
		case lockStale:
			if w.override() {
				log.Warn("took over a stale lock", "lock", lockName, "holder", holder)
				// As Dovecot: wait a moment before creating the lock,
				// so that another waiter overriding the same stale lock
				// removes it before this one creates its own.
				var b [1]byte
				_, _ = rand.Read(b[:])
				time.Sleep(100*time.Millisecond + time.Duration(b[0])*time.Millisecond*100/256)
			}
			continue
		default:
			if time.Now().Add(pause).After(deadline) {
				return nil, fmt.Errorf("%s held by %s for longer than %v: %w", lockName, holder, wait, store.ErrBusy)
			}
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// newDotlock completes a lock file just created: "PID:HOSTNAME" in it, and
// the owner and mode of the file it locks (or the Maildir's), since the
// lock becomes that file. pop3d running as root must not leave Dovecot a
// list it cannot read.
func newDotlock(dir *os.Root, name string, f *os.File, log *slog.Logger) (*dotlock, error) {
	host, _ := os.Hostname()
	_, _ = fmt.Fprintf(f, "%d:%s", os.Getpid(), host)
	like, err := dir.Lstat(name)
	if err != nil || !like.Mode().IsRegular() {
		like, err = dir.Stat(".")
	}
	if err == nil {
		_ = f.Chmod(like.Mode().Perm() & 0o666)
		if sys, ok := like.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != os.Geteuid() || int(sys.Gid) != os.Getegid()) {
			if err := f.Chown(int(sys.Uid), int(sys.Gid)); err != nil {
				log.Debug("dovecot-uidlist keeps pop3d's owner", "err", err)
			}
		}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		_ = dir.Remove(name + ".lock")
		return nil, err
	}
	return &dotlock{dir: dir, name: name, f: f, st: st}, nil
}

// ours reports whether the lock file is still the one this lock created.
func (l *dotlock) ours() bool {
	fi, err := l.dir.Lstat(l.name + ".lock")
	return err == nil && os.SameFile(fi, l.st)
}

// release removes the lock, unless it was taken over (then it is not
// ours to remove) or already released. It may be called more than once.
func (l *dotlock) release() {
	if l == nil || l.f == nil {
		return
	}
	if l.ours() {
		_ = l.dir.Remove(l.name + ".lock")
	}
	l.f.Close()
	l.f = nil
}

// replace makes the locked file what write writes, and releases the lock:
// the contents go into the lock file, which is synced and renamed over
// the file, and the directory is synced; a crash leaves the old file or
// the new one. A lock taken over meanwhile is not renamed: the new
// contents are dropped with an error, the taker's list stands.
func (l *dotlock) replace(write func(io.Writer) error) error {
	defer l.release()
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := write(l.f); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	if !l.ours() {
		return fmt.Errorf("%s.lock was taken over while it was held", l.name)
	}
	lockName := l.name + ".lock"
	if err := l.dir.Rename(lockName, l.name); err != nil {
		// Something that is not a file holds the name (a directory):
		// put it aside rather than lose the list.
		if moveAside(l.dir, l.name) != nil || l.dir.Rename(lockName, l.name) != nil {
			return err
		}
	}
	if dir, err := l.dir.Open("."); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	l.f.Close()
	l.f = nil
	return nil
}

// lockVerdict is what a waiter makes of a lock someone else holds.
type lockVerdict int

const (
	lockHeld  lockVerdict = iota // wait
	lockGone                     // removed meanwhile: try again at once
	lockStale                    // take it over
	lockOdd                      // not a regular file: no lock at all
)

// lockWatch follows a lock file across one wait, as Dovecot's check_lock
// does: when it or the locked file last changed, and who holds it.
type lockWatch struct {
	dir            *os.Root
	name, lockName string
	now            func() time.Time

	lock, file fileChange
	lastChange time.Time
	judged     fs.FileInfo // the lock last judged stale
}

// fileChange is what a watch last saw of a file.
type fileChange struct {
	seen         bool
	dev, ino     uint64
	size         int64
	mtime, ctime time.Time
}

// update records fi and returns the time it last changed: at the first
// look the file's own times (its mtime when that is later than its ctime
// and not in the future, else its ctime), afterwards now whenever it
// changed. ok is false when it did not change since the last look.
func (c *fileChange) update(fi fs.FileInfo, now time.Time) (time.Time, bool) {
	sys, _ := fi.Sys().(*syscall.Stat_t)
	var n fileChange
	n.seen, n.size, n.mtime = true, fi.Size(), fi.ModTime()
	if sys != nil {
		n.dev, n.ino = uint64(sys.Dev), uint64(sys.Ino)
		n.ctime = time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	if c.seen && n == *c {
		return time.Time{}, false
	}
	first := !c.seen
	*c = n
	if !first {
		return now, true
	}
	if !n.mtime.After(now) && n.mtime.After(n.ctime) {
		return n.mtime, true
	}
	return n.ctime, true
}

// check looks at the lock once and says what to do, and who holds it.
func (w *lockWatch) check() (lockVerdict, string) {
	now := w.now()
	fi, err := w.dir.Lstat(w.lockName)
	if err != nil {
		return lockGone, ""
	}
	if !fi.Mode().IsRegular() {
		return lockOdd, ""
	}
	if t, changed := w.lock.update(fi, now); changed && t.After(w.lastChange) {
		w.lastChange = t
	}
	holder := "an unknown process"
	if now.Sub(fi.ModTime()) >= dotlockPIDCheck {
		if pid, ok := lockPID(w.dir, w.lockName); ok {
			holder = fmt.Sprintf("process %d", pid)
			// pop3d's own PID: no session of this process holds the
			// lock while another waits for it (both hold pop3d's flock
			// first), so it was left by a process of a former boot.
			if pid != os.Getpid() {
				err := syscall.Kill(pid, 0)
				if err == nil || !errors.Is(err, syscall.ESRCH) {
					return lockHeld, holder
				}
			}
			w.judged = fi
			return lockStale, holder + " (gone)"
		}
	}
	if now.Sub(w.lastChange) <= dotlockStale {
		return lockHeld, holder
	}
	// Possibly stale: the locked file must not have changed either.
	if ffi, err := w.dir.Lstat(w.name); err == nil {
		if t, changed := w.file.update(ffi, now); changed && t.After(w.lastChange) {
			w.lastChange = t
		}
	}
	if now.Sub(w.lastChange) <= dotlockStale {
		return lockHeld, holder
	}
	w.judged = fi
	return lockStale, holder + fmt.Sprintf(" (unchanged for %v)", now.Sub(w.lastChange).Round(time.Second))
}

// override removes the lock judged stale, unless another file took its
// place since it was judged. It reports whether it removed it.
func (w *lockWatch) override() bool {
	fi, err := w.dir.Lstat(w.lockName)
	if err != nil || w.judged == nil || !os.SameFile(fi, w.judged) || !fi.ModTime().Equal(w.judged.ModTime()) {
		return false
	}
	return w.dir.Remove(w.lockName) == nil
}

// lockPID reads "PID:HOSTNAME" from a lock file and returns the PID when
// the host is this one (Dovecot's read_local_pid).
func lockPID(dir *os.Root, lockName string) (int, bool) {
	f, _, err := openRegular(dir, lockName)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var buf [512]byte
	n, _ := io.ReadFull(f, buf[:])
	line := strings.TrimSuffix(string(buf[:n]), "\n")
	pidText, host, ok := strings.Cut(line, ":")
	me, _ := os.Hostname()
	if !ok || host != me {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}
