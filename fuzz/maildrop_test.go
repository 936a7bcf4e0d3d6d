package pop3fuzz

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
)

// Bounds of FuzzMaildropTree: every reply comes within replyBound (a
// healthy server answers in milliseconds; a FIFO or a lock held forever
// never answers), a session goroutine returns within replyBound of its
// connection closing, and a whole case takes at most caseBound.
const (
	replyBound = 3 * time.Second
	caseBound  = 20 * time.Second
)

// treeEnv is one server of FuzzMaildropTree with the world around its
// mail root:
//
//	BASE/mail/f            the fuzzed maildrop (or a symlink)
//	BASE/mail/g            another user's maildrop, with OtherToken inside
//	BASE/outside/sentinel  a message-shaped file with SentinelToken
//	BASE/outside/home      an empty directory outside the root
//	BASE/passwd            f and g, password "pw"
type treeEnv struct {
	srv      *server.Server
	base     string
	root     string
	sentinel string
	home     string
}

var (
	treeOnce sync.Once
	treeEnvs map[string]*treeEnv
	// sentinelToken and otherToken are in no fuzz input: a reply that
	// carries one read outside the maildrop.
	sentinelToken, otherToken string
)

func token() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestMain removes the worlds of FuzzMaildropTree when the process ends.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, e := range treeEnvs {
		unblockFIFOs(e.base)
		_ = os.RemoveAll(e.base)
	}
	os.Exit(code)
}

func treeServer(profile string) *treeEnv {
	treeOnce.Do(func() {
		sentinelToken, otherToken = "SENTINEL-"+token(), "OTHERUSER-"+token()
		treeEnvs = map[string]*treeEnv{}
		for _, p := range pop3gen.ProfileNames {
			base, err := os.MkdirTemp("", "pop3kit-tree")
			if err != nil {
				panic(err)
			}
			e := &treeEnv{base: base, root: filepath.Join(base, "mail"),
				sentinel: filepath.Join(base, "outside", "sentinel"), home: filepath.Join(base, "outside", "home")}
			_ = os.MkdirAll(e.root, 0o700)
			pw := filepath.Join(base, "passwd")
			_ = os.WriteFile(pw, []byte("f:{PLAIN}pw\ng:{PLAIN}pw\n"), 0o600)
			cfg := server.DefaultConfig()
			cfg.Listen = []string{"127.0.0.1:0"} // never opened: sessions come through ServeConn
			cfg.MailRoot, cfg.Passwd, cfg.Profile, cfg.FailDelay = e.root, pw, p, 0
			_ = cfg.AddSet("PlaintextAuth=always") // a pipe is not loopback
			srv, err := server.New(cfg, nil)
			if err != nil {
				panic(err)
			}
			e.srv = srv
			treeEnvs[p] = e
		}
	})
	return treeEnvs[profile]
}

// treeFile is a regular file the case created, under one name or more
// (hard links): a message when one of them is in new/ or cur/.
type treeFile struct {
	id        string // its X-Tree-Id
	rel       string // new/NAME or cur/NAME: its first name
	content   []byte
	bases     map[string]bool // the base names (before ":") of its names in new/ and cur/
	symlinked bool            // a symlink inside the maildrop leads to it
}

// named records a name of the file.
func (f *treeFile) named(where Where, name string) {
	if where != Tmp {
		f.bases[strings.SplitN(name, ":", 2)[0]] = true
	}
}

// tmp reports whether the file has names in tmp/ only: not a message, but
// a symlink may lead to it.
func (f *treeFile) tmp() bool { return len(f.bases) == 0 }

// treeCase is one case being run.
type treeCase struct {
	t     *testing.T
	tree  Tree
	env   *treeEnv
	md    string               // ROOT/f
	files map[string]*treeFile // by id
	log   []string             // what was said, for failure messages
}

func (c *treeCase) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("%s\n\ntree: %s\n\nsession (C: sent, S: received):\n%s", fmt.Sprintf(format, args...), c.tree, strings.Join(c.log, "\n"))
}

// FuzzMaildropTree: the input is also the file system of the maildrop
// (names with spaces, newlines and 8-bit octets, new/cur collisions,
// ":2,flags" variants of a name, huge ",S=" fields, FIFOs, directories,
// symlinks inside, to another user, out of the mail root and to /dev/zero,
// hard links, a user directory that is a symlink, and the bytes of both
// UID lists; seeds for each class in testdata/fuzz/FuzzMaildropTree). A session
// logs in, runs STAT, LIST, UIDL, RETR of every message and DELE of a
// chosen subset, and QUITs; a second session logs in again. Oracles:
//
//   - no hang: every reply within replyBound, every session goroutine
//     returns, the case within caseBound;
//   - no escape: no reply carries the sentinel's or the other user's
//     content or more data than any message, nothing outside f's
//     maildrop is created or changed (no cur/new/tmp or lock files);
//   - no unmarked message lost: every regular file of new/ and cur/ that
//     was not DELE'd is still in new/ or cur/ with its content;
//   - the mailbox still opens: both logins are +OK (when ROOT/f is a real
//     directory), STAT is non-negative and agrees with LIST, RETR is the
//     stored file, unique-ids are unique, kept across the sessions and not
//     given to another message, and one file (hard links under one base
//     name included) is listed once.
func FuzzMaildropTree(f *testing.F) {
	fuzzbound.Fuzz(f, func(t *testing.T, data []byte) { runTree(t, DecodeTree(data)) })
}

// runTree is FuzzMaildropTree's body, also run by TestMaildropTreeSeeds.
func runTree(t *testing.T, tree Tree) {
	start := time.Now()
	profile := pop3gen.ProfileNames[int(tree.Profile)%len(pop3gen.ProfileNames)]
	env := treeServer(profile)
	c := &treeCase{t: t, tree: tree, env: env, md: filepath.Join(env.root, "f"), files: map[string]*treeFile{}}
	c.build()
	// Whatever happens, FIFOs are opened for writing at the end so that a
	// session blocked opening one returns, and the next case starts clean:
	// once, without waiting (end has waited for the sessions, and opened
	// them again with pauses if one hung).
	defer unblockFIFOs(c.md)
	outside := c.snapshotOutside()

	first := c.session(true)
	second := map[string]map[string]bool(nil)
	if tree.UserDir == UserDirReal || first.loggedIn {
		second = c.session(false).uids
	}

	// No escape: nothing outside the maildrop was created or changed.
	if after := c.snapshotOutside(); !equalSnapshots(outside, after) {
		c.fail("escape: outside f's maildrop the file system changed:\n%s", diffSnapshots(outside, after))
	}
	if tree.UserDir == UserDirReal {
		c.checkNothingLost(first.deleted)
		c.checkUIDs(first.uids, second)
	}
	if d := time.Since(start); d > caseBound {
		c.fail("hang: the case took %v (bound %v)", d, caseBound)
	}
}

// build makes the tree on disk.
func (c *treeCase) build() {
	env := c.env
	for _, p := range []string{c.md, filepath.Join(env.root, "g"), filepath.Join(env.base, "outside")} {
		unblockFIFOs(p)
		if err := os.RemoveAll(p); err != nil {
			c.t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	must(os.MkdirAll(env.home, 0o700))
	must(os.WriteFile(env.sentinel, []byte("X-Tree-Id: sentinel\n\n"+sentinelToken+"\n"), 0o600))
	g := filepath.Join(env.root, "g")
	for _, sub := range []string{"cur", "new", "tmp"} {
		must(os.MkdirAll(filepath.Join(g, sub), 0o700))
	}
	must(os.WriteFile(filepath.Join(g, "cur", "1700000000.M1.g:2,S"), []byte("X-Tree-Id: g1\n\n"+otherToken+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(g, "new", "1700000001.M2.g"), []byte("X-Tree-Id: g2\n\n"+otherToken+"\n"), 0o600))

	switch c.tree.UserDir {
	case UserDirToOther:
		must(os.Symlink("g", c.md))
		return
	case UserDirToOutside:
		must(os.Symlink(env.home, c.md))
		return
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		must(os.MkdirAll(filepath.Join(c.md, sub), 0o700))
	}
	type made struct{ path, id string }
	var regular []made // the regular files made so far
	for i, e := range c.tree.Entries {
		if e.Kind == KindUIDList {
			name := [...]string{"pop3kit-uidlist", "dovecot-uidlist"}[e.Index%2]
			_ = os.WriteFile(filepath.Join(c.md, name), e.Body, 0o600)
			continue
		}
		name := sanitizeName(e.Name)
		dir := filepath.Join(c.md, e.Where.String())
		path := filepath.Join(dir, name)
		if _, err := os.Lstat(path); err == nil {
			continue // an earlier entry has the name
		}
		var err error
		switch e.Kind {
		case KindFile:
			id := strconv.Itoa(i)
			content := append([]byte("X-Tree-Id: "+id+"\n"), e.Body...)
			if err = os.WriteFile(path, content, 0o600); err == nil {
				regular = append(regular, made{path, id})
				c.files[id] = &treeFile{id: id, rel: e.Where.String() + "/" + name, content: content, bases: map[string]bool{}}
				c.files[id].named(e.Where, name)
			}
		case KindHardlink:
			if len(regular) == 0 {
				continue
			}
			to := regular[int(e.Index)%len(regular)]
			if err = os.Link(to.path, path); err == nil {
				c.files[to.id].named(e.Where, name)
			}
		case KindFIFO:
			err = syscall.Mkfifo(path, 0o600)
		case KindDir:
			err = os.Mkdir(path, 0o700)
		case KindSymlink:
			var to string
			switch e.Target {
			case TargetSentinel:
				to = env.sentinel
			case TargetSentinelRel:
				to, _ = filepath.Rel(dir, env.sentinel)
			case TargetOther:
				to = filepath.Join(g, "cur", "1700000000.M1.g:2,S")
			case TargetInside:
				if len(regular) == 0 {
					to = "missing"
				} else {
					r := regular[int(e.Index)%len(regular)]
					to, _ = filepath.Rel(dir, r.path)
					c.files[r.id].symlinked = true
				}
			case TargetDevZero:
				to = "/dev/zero"
			default:
				to = "missing"
			}
			err = os.Symlink(to, path)
		}
		if err != nil {
			c.t.Logf("entry #%d %s/%q not made: %v", i, e.Where, name, err)
		}
	}
}

// sanitizeName makes a name the file system takes: no "/" or NUL, not
// empty, "." or "..", at most maxTreeName octets; other octets are kept
// as they are (8-bit, newlines, spaces).
func sanitizeName(b []byte) string {
	raw := bytes.Clone(b[:min(len(b), maxTreeName)])
	for i, x := range raw {
		if x == '/' || x == 0 {
			raw[i] = '_'
		}
	}
	n := string(raw)
	if n == "" || n == "." || n == ".." {
		n = "x" + n
	}
	return n
}

// unblock opens every FIFO of the maildrop for writing, so that a session
// blocked opening one for reading gets EOF.
func (c *treeCase) unblock() {
	for i := 0; i < 3; i++ {
		unblockFIFOs(c.md)
		time.Sleep(time.Millisecond)
	}
}

func unblockFIFOs(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeNamedPipe != 0 {
			if fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				syscall.Close(fd)
			}
		}
		return nil
	})
}

// snapshot maps a path to what it is: the content of a regular file, the
// target of a symlink, or its type.
type snapshot map[string]string

// snapshotOutside records the mail root's world except f's maildrop (a
// symlink there is recorded, not followed).
func (c *treeCase) snapshotOutside() snapshot {
	s := snapshot{}
	_ = filepath.WalkDir(c.env.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p == c.md && d.IsDir() {
			return filepath.SkipDir
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			to, _ := os.Readlink(p)
			s[p] = "symlink to " + to
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			s[p] = fmt.Sprintf("file %q", b)
		default:
			s[p] = d.Type().String()
		}
		return nil
	})
	return s
}

func equalSnapshots(a, b snapshot) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func diffSnapshots(a, b snapshot) string {
	var out []string
	for k, v := range b {
		if w, ok := a[k]; !ok {
			out = append(out, "created "+k+" ("+v+")")
		} else if w != v {
			out = append(out, "changed "+k+": "+w+" → "+v)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, "removed "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// sessionResult is what one session saw.
type sessionResult struct {
	loggedIn bool
	uids     map[string]map[string]bool // file id → the unique-ids it was listed under
	deleted  map[string]bool            // file ids DELE'd before a QUIT was sent
}

// treeConn is a client of one session over net.Pipe, speaking through
// the shared test client (internal/pop3test).
type treeConn struct {
	c    *treeCase
	conn net.Conn
	r    *bufio.Reader
	p    *pop3test.Conn
	done chan struct{}
}

// session runs one session; the first marks messages deleted as the
// tree's DELE mask says.
func (c *treeCase) session(first bool) sessionResult {
	res := sessionResult{uids: map[string]map[string]bool{}, deleted: map[string]bool{}}
	client, server := net.Pipe()
	p := pop3test.New(nil, client)
	tc := &treeConn{c: c, conn: client, r: p.R, p: p, done: make(chan struct{})}
	go func() { c.env.srv.ServeConn(server); close(tc.done) }()
	defer tc.end()
	c.log = append(c.log, fmt.Sprintf("--- session %d", map[bool]int{true: 1, false: 2}[first]))
	if g := tc.status("(greeting)"); !strings.HasPrefix(g, "+OK") {
		c.fail("greeting %q", g)
	}
	tc.status("USER f")
	if r := tc.status("PASS pw"); !strings.HasPrefix(r, "+OK") {
		if c.tree.UserDir == UserDirReal {
			c.fail("the mailbox does not open: PASS answered %q in session %d", r, map[bool]int{true: 1, false: 2}[first])
		}
		return res // a refused symlinked user directory is right
	}
	res.loggedIn = true

	// STAT is non-negative and agrees with LIST.
	stat := tc.status("STAT")
	var n int
	var total int64
	if _, err := fmt.Sscanf(stat, "+OK %d %d", &n, &total); err != nil || n < 0 || total < 0 {
		c.fail("STAT answered %q: want +OK and a non-negative count and size", stat)
	}
	if r := tc.status("LIST"); !strings.HasPrefix(r, "+OK") {
		c.fail("LIST answered %q", r)
	}
	listed := map[int]bool{}
	sum := new(big.Int)
	for _, l := range tc.listing("LIST") {
		var num int
		var size int64
		if _, err := fmt.Sscanf(l, "%d %d", &num, &size); err != nil || size < 0 || listed[num] {
			c.fail("LIST line %q: want a new message number and a non-negative size", l)
		}
		listed[num] = true
		sum.Add(sum, big.NewInt(size))
	}
	if len(listed) != n {
		c.fail("STAT counts %d messages, LIST lists %d", n, len(listed))
	}
	if sum.IsInt64() && sum.Int64() != total || !sum.IsInt64() && total != math.MaxInt64 {
		c.fail("STAT's total %d is not the sum of LIST's sizes, %v", total, sum)
	}

	// UIDL: one unique id per listed message, no two alike.
	if r := tc.status("UIDL"); !strings.HasPrefix(r, "+OK") {
		c.fail("UIDL answered %q", r)
	}
	uidOf := map[int]string{}
	seen := map[string]int{}
	for _, l := range tc.listing("UIDL") {
		num, uid, _ := strings.Cut(l, " ")
		k, err := strconv.Atoi(num)
		if err != nil || !listed[k] || uid == "" {
			c.fail("UIDL line %q: not a listed message with a unique-id", l)
		}
		if m, dup := seen[uid]; dup {
			c.fail("UIDL gives messages %d and %d the same unique-id %q", m, k, uid)
		}
		seen[uid], uidOf[k] = k, uid
	}
	if len(uidOf) != len(listed) {
		c.fail("UIDL lists %d messages, LIST %d", len(uidOf), len(listed))
	}

	// RETR each: it is one of the tree's files, exactly.
	var nums []int
	for k := range listed {
		nums = append(nums, k)
	}
	sort.Ints(nums)
	idOf := map[int]string{}
	for _, k := range nums {
		cmd := "RETR " + strconv.Itoa(k)
		if r := tc.status(cmd); !strings.HasPrefix(r, "+OK") {
			continue // a message that cannot be read may say so
		}
		body := tc.data(cmd)
		id := treeID(body)
		f, ok := c.files[id]
		if !ok {
			c.fail("%s returned %d octets that are no message of the maildrop: %.200q", cmd, len(body), body)
		}
		if want := testenv.CRLFForm(f.content); !bytes.Equal(body, want) {
			c.fail("%s returned %.200q, want %s in CRLF form: %.200q", cmd, body, f.rel, want)
		}
		for other, oid := range idOf {
			if oid == id && len(f.bases) == 1 && !f.symlinked {
				c.fail("one message listed twice: %s (X-Tree-Id %s: one file, hard-linked under one base name, %q) is message %d as %q and message %d as %q", f.rel, id, keys(f.bases)[0], other, uidOf[other], k, uidOf[k])
			}
		}
		idOf[k] = id
		if res.uids[id] == nil {
			res.uids[id] = map[string]bool{}
		}
		res.uids[id][uidOf[k]] = true
	}
	if !first {
		tc.status("QUIT")
		return res
	}
	// DELE the chosen messages among those identified.
	for i, k := range nums {
		id, ok := idOf[k]
		if !ok || c.tree.Dele&(1<<(i%32)) == 0 {
			continue
		}
		cmd := "DELE " + strconv.Itoa(k)
		if r := tc.status(cmd); !strings.HasPrefix(r, "+OK") {
			c.fail("%s answered %q", cmd, r)
		}
		res.deleted[id] = true
	}
	tc.status("QUIT")
	return res
}

// treeID reads the X-Tree-Id of a message in CRLF form.
func treeID(body []byte) string {
	line, _, _ := bytes.Cut(body, []byte("\r\n"))
	id, ok := bytes.CutPrefix(line, []byte("X-Tree-Id: "))
	if !ok {
		return ""
	}
	return string(id)
}

// escaped fails when what the server sent carries content from outside the
// maildrop.
func (tc *treeConn) escaped(cmd string, b []byte) {
	for _, tok := range []struct{ tok, what string }{{sentinelToken, "the sentinel outside the mail root"}, {otherToken, "user g's maildrop"}} {
		if bytes.Contains(b, []byte(tok.tok)) {
			tc.c.fail("escape: the reply to %q carries the content of %s: %.300q", cmd, tok.what, b)
		}
	}
}

// status sends cmd (unless it is the greeting) and returns the status line
// without CRLF, within replyBound.
func (tc *treeConn) status(cmd string) string {
	c := tc.c
	_ = tc.conn.SetDeadline(time.Now().Add(replyBound))
	if !strings.HasPrefix(cmd, "(") {
		c.log = append(c.log, "C: "+cmd)
		if err := tc.p.WriteLine(cmd); err != nil {
			c.fail("hang or close: sending %q: %v", cmd, err)
		}
	}
	l, err := tc.p.ReadRaw()
	tc.escaped(cmd, []byte(l))
	if err != nil {
		c.fail("hang or close: no reply to %q within %v: %v (got %q)", cmd, replyBound, err, l)
	}
	if err := pop3test.CheckStatus(l); err != nil {
		c.fail("the reply to %q: %v", cmd, err)
	}
	c.log = append(c.log, fmt.Sprintf("S: %.200q", l))
	return strings.TrimSuffix(l, "\r\n")
}

// maxTreeData bounds the data of one reply: no message of a tree comes
// near it, and an endless one (/dev/zero) must not fill the memory.
const maxTreeData = 64 << 10

// data reads a multi-line reply's data, unstuffed, in CRLF form.
func (tc *treeConn) data(cmd string) []byte {
	_ = tc.conn.SetDeadline(time.Now().Add(replyBound))
	b, err := io.ReadAll(io.LimitReader(pop3.NewDotReader(tc.r), maxTreeData+1))
	tc.escaped(cmd, b)
	tc.c.log = append(tc.c.log, fmt.Sprintf("S: (%d octets of data)", len(b)))
	if len(b) > maxTreeData {
		tc.c.fail("escape: the data of %q goes on past %d octets, more than any message of the maildrop: %.100q", cmd, maxTreeData, b)
	}
	if err != nil {
		tc.c.fail("hang or close: the data of %q did not end within %v: %v", cmd, replyBound, err)
	}
	return b
}

func (tc *treeConn) listing(cmd string) []string {
	s := strings.TrimSuffix(string(tc.data(cmd)), "\r\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\r\n")
}

// end closes the connection and waits for the session goroutine.
func (tc *treeConn) end() {
	tc.conn.Close()
	select {
	case <-tc.done:
		return
	case <-time.After(replyBound / 3):
	}
	tc.c.unblock()
	select {
	case <-tc.done:
		tc.c.t.Errorf("hang: the session goroutine returned only after the FIFOs were opened for writing")
	case <-time.After(replyBound):
		tc.c.t.Errorf("hang: the session goroutine did not return %v after its connection closed", 2*replyBound)
	}
}

// checkNothingLost: every message file not DELE'd is still in new/ or cur/
// with its content.
func (c *treeCase) checkNothingLost(deleted map[string]bool) {
	left := map[string][]byte{}
	var where []string
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(c.md, sub))
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(c.md, sub, e.Name()))
			if err != nil {
				continue
			}
			id := treeID(testenv.CRLFForm(b))
			left[id] = b
			where = append(where, fmt.Sprintf("%s/%q (%s)", sub, e.Name(), id))
		}
	}
	var ids []string
	for id := range c.files {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := c.files[id]
		if deleted[id] || f.tmp() {
			continue
		}
		got, ok := left[id]
		if !ok {
			c.fail("unmarked message lost: %s (X-Tree-Id %s, %d octets) is gone; it was never DELE'd (DELE'd: %v); left: %s", f.rel, id, len(f.content), keys(deleted), strings.Join(where, ", "))
		}
		if !bytes.Equal(got, f.content) {
			c.fail("unmarked message changed: %s (X-Tree-Id %s) now holds %.200q, was %.200q", f.rel, id, got, f.content)
		}
	}
}

// checkUIDs: a message keeps its unique-ids from the first session to the
// second, and no unique-id moves to another message. Messages whose base
// name another file shares are left out: Maildir calls them one message.
func (c *treeCase) checkUIDs(first, second map[string]map[string]bool) {
	bases := map[string]int{}
	for _, f := range c.files {
		for b := range f.bases {
			bases[b]++
		}
	}
	shared := func(f *treeFile) bool {
		for b := range f.bases {
			if bases[b] > 1 {
				return true
			}
		}
		return false
	}
	owner := map[string]string{}
	for id, us := range first {
		for u := range us {
			owner[u] = id
		}
	}
	for id, us := range second {
		f := c.files[id]
		if f == nil || shared(f) {
			continue
		}
		for u := range us {
			if len(first[id]) > 0 && !first[id][u] {
				c.fail("unique-id changed: %s (X-Tree-Id %s) was listed as %v in session 1 and as %q in session 2", f.rel, id, keys(first[id]), u)
			}
			if o, ok := owner[u]; ok && o != id && !shared(c.files[o]) {
				c.fail("unique-id reused: %q was %s (X-Tree-Id %s) in session 1 and is %s (X-Tree-Id %s) in session 2", u, c.files[o].rel, o, f.rel, id)
			}
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
