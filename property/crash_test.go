package property

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashRounds kills pop3d with SIGKILL at random points of UID
// assignment and of UPDATE, round after round on one maildrop, and checks
// every round. A round delivers 20–200 new messages (tmp/, then new/),
// starts a pop3d process and runs USER, PASS, UIDL, DELE of some messages
// seen in earlier rounds and QUIT; the kill comes a random delay (20 µs to
// 30 ms, log-uniform) after PASS is sent (the login moves new/ to cur/ and
// numbers the new messages) or after QUIT is sent (UPDATE removes the
// marked ones). Then, with a fresh pop3d:
//
//   - every message not marked in a session that sent QUIT is in the
//     maildrop with its content (a session that never sent QUIT removes
//     nothing);
//   - the next login is +OK: the UID list is readable;
//   - a message keeps the unique-id it had before the kill, and every
//     unique-id the killed session listed is still listed unless its
//     message was removed;
//   - no unique-id is given to two messages, and the ones given to new
//     messages are above every one given before.
//
// POP3KIT_CRASH_ROUNDS sets the rounds (default 20, 8 with -short); POP3KIT_CRASH_SEED
// (or POP3KIT_PROPERTY_SEED) replays the deliveries, the choices and the
// delays.
func TestCrashRounds(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 8 // make race: the plain run has done 20
	}
	if s := os.Getenv("POP3KIT_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("POP3KIT_CRASH_ROUNDS=%q: want a positive number", s)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	for _, env := range []string{"POP3KIT_CRASH_SEED", "POP3KIT_PROPERTY_SEED"} {
		if s := os.Getenv(env); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: %v", env, s, err)
			}
			seed = n
			break
		}
	}
	t.Logf("seed %d, %d rounds (replay: POP3KIT_CRASH_SEED=%d POP3KIT_CRASH_ROUNDS=%d go test ./property -run '^TestCrashRounds$')", seed, rounds, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 0x706f7033))

	dir := t.TempDir()
	root := filepath.Join(dir, "mail")
	md := filepath.Join(root, "u")
	passwd := filepath.Join(dir, "passwd")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(passwd, []byte("u:{PLAIN}pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const profile = "exchange2010" // decimal unique-ids: they must increase

	cs := &crashState{t: t, md: md, content: map[string][]byte{}, uidOf: map[string]string{}, tokOf: map[string]string{}, gone: map[string]bool{}}
	var stats [3]int // kills during the session after PASS, after QUIT, after the session ended
	start := time.Now()
	for round := 0; round < rounds; round++ {
		cs.round = round
		fresh := 20 + rng.IntN(181)
		for i := 0; i < fresh; i++ {
			cs.deliver()
		}
		atQuit := rng.IntN(2) == 1
		delay := time.Duration(math.Exp(math.Log(20e3) + rng.Float64()*(math.Log(30e6)-math.Log(20e3))))
		// DELE about a third of the messages the fresh pop3d listed last
		// round, in the order the seed says.
		var deleToks []string
		for tok := range cs.uidOf {
			if !cs.gone[tok] {
				deleToks = append(deleToks, tok)
			}
		}
		sort.Strings(deleToks)
		rng.Shuffle(len(deleToks), func(i, j int) { deleToks[i], deleToks[j] = deleToks[j], deleToks[i] })
		deleToks = deleToks[:len(deleToks)/3]
		what := map[bool]string{false: "PASS", true: "QUIT"}[atQuit]
		cs.where = fmt.Sprintf("round %d (seed %d): %d new messages, %d to DELE, SIGKILL %v after %s", round, seed, fresh, len(deleToks), delay, what)

		p, err := startProc(t, root, passwd, profile)
		if err != nil {
			t.Fatalf("%s: %v", cs.where, err)
		}
		kill := cs.session(p, atQuit, delay, deleToks)
		stats[kill]++
		cs.check(root, passwd, profile)
	}
	t.Logf("%d rounds checked in %v (seed %d): %d killed after PASS mid-session, %d after QUIT mid-session, %d after the session ended; %d messages delivered, %d removed, %d left",
		rounds, time.Since(start).Round(time.Millisecond), seed, stats[0], stats[1], stats[2], cs.serial, cs.serial-len(cs.content), len(cs.content))
}

// crashState is what TestCrashRounds knows across rounds.
type crashState struct {
	t       *testing.T
	md      string
	round   int
	where   string              // the round, for failure messages
	serial  int                 // deliveries so far
	content map[string][]byte   // token → the message as delivered
	uidOf   map[string]string   // token → unique-id, as the fresh pop3d listed it
	tokOf   map[string]string   // unique-id → token
	maxUID  uint64              // the highest unique-id listed so far
	gone    map[string]bool     // tokens DELE'd in a session that sent QUIT: they may be gone
	listed  []string            // unique-ids the killed session listed
	files   map[string][]string // token → its files after the kill, for failure messages
}

// inode returns " (inode N)" for a file.
func inode(path string) string {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil {
		return ""
	}
	return fmt.Sprintf(" (inode %d)", st.Ino)
}

func (cs *crashState) fatalf(format string, args ...any) {
	cs.t.Helper()
	cs.t.Fatalf("%s: %s", cs.where, fmt.Sprintf(format, args...))
}

// deliver puts one message into new/ as an MDA does.
func (cs *crashState) deliver() {
	cs.serial++
	tok := fmt.Sprintf("C%d-%d", os.Getpid(), cs.serial)
	m := []byte("X-Token: " + tok + "\nSubject: crash round " + strconv.Itoa(cs.round) + "\n\nbody of " + tok + "\n")
	name := fmt.Sprintf("%d.M%dP%d.crash", 1700000000+cs.serial, cs.serial, os.Getpid())
	if err := os.WriteFile(filepath.Join(cs.md, "tmp", name), m, 0o600); err != nil {
		cs.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cs.md, "tmp", name), filepath.Join(cs.md, "new", name)); err != nil {
		cs.t.Fatal(err)
	}
	cs.content[tok] = m
}

// session runs the killed session and returns when the kill landed: 0
// after PASS, 1 after QUIT (both mid-session), 2 after the session ended.
func (cs *crashState) session(p *proc, atQuit bool, delay time.Duration, deleToks []string) int {
	killed := make(chan struct{})
	arm := func() {
		time.AfterFunc(delay, func() {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			close(killed)
		})
	}
	defer func() { <-killed; p.kill() }()
	cs.listed = nil
	c, err := dialAddr(p.addr)
	if err != nil {
		arm()
		cs.fatalf("connecting to pop3d: %v", err)
	}
	defer c.C.Close()
	ended := func() int {
		select {
		case <-killed:
			return map[bool]int{false: 0, true: 1}[atQuit]
		default:
			return 2
		}
	}
	if r, err := c.Exchange("USER u"); err != nil || !strings.HasPrefix(r, "+OK") {
		arm()
		cs.fatalf("USER u answered %q %v before any kill", r, err)
	}
	if !atQuit {
		arm()
	}
	if r, err := c.Exchange("PASS pw"); err != nil || !strings.HasPrefix(r, "+OK") {
		if atQuit {
			arm()
			cs.fatalf("PASS answered %q %v before any kill: the mailbox does not open", r, err)
		}
		return ended()
	}
	ids, err := uidl(c)
	if err != nil {
		if atQuit {
			arm()
			cs.fatalf("UIDL before any kill: %v", err)
		}
		return ended()
	}
	numOf := map[string]int{}
	for n, uid := range ids {
		cs.listed = append(cs.listed, uid)
		numOf[uid] = n
	}
	for _, tok := range deleToks {
		n, ok := numOf[cs.uidOf[tok]]
		if !ok {
			continue
		}
		if r, err := c.Exchange("DELE " + strconv.Itoa(n)); err != nil || !strings.HasPrefix(r, "+OK") {
			if atQuit {
				arm()
				cs.fatalf("DELE %d (%s) answered %q %v before any kill", n, tok, r, err)
			}
			return ended()
		}
		if atQuit {
			cs.gone[tok] = true // QUIT is sent below, before any kill
		}
	}
	if atQuit {
		arm()
	} else {
		// The kill may come while the session is still running: QUIT
		// may or may not be read; the marked messages may go.
		for _, tok := range deleToks {
			if _, ok := numOf[cs.uidOf[tok]]; ok {
				cs.gone[tok] = true
			}
		}
	}
	_, _ = c.Exchange("QUIT")
	return ended()
}

// check starts a fresh pop3d and holds the maildrop to the invariants.
func (cs *crashState) check(root, passwd, profile string) {
	// Every message not marked is in new/ or cur/, as delivered.
	stored := map[string][]byte{}
	where := map[string]string{} // token → the file it was found in
	cs.files = map[string][]string{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(cs.md, sub))
		if err != nil {
			cs.fatalf("%v", err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(cs.md, sub, e.Name()))
			if err != nil {
				cs.fatalf("reading %s/%s: %v", sub, e.Name(), err)
			}
			tok := tokenOf(b)
			path := filepath.Join(cs.md, sub, e.Name())
			if other, dup := where[tok]; dup {
				// Hard links are one message: a reader that moves new/
				// to cur/ by link and unlink leaves two names when
				// killed in between. Two files are two messages.
				a, err1 := os.Lstat(other)
				b, err2 := os.Lstat(path)
				if err1 != nil || err2 != nil || !os.SameFile(a, b) {
					cs.fatalf("message %s is in the maildrop twice, as two files: %s and %s", tok, other, path)
				}
			}
			stored[tok], where[tok] = b, path
			cs.files[tok] = append(cs.files[tok], sub+"/"+e.Name()+inode(path))
		}
	}
	for tok, want := range cs.content {
		got, ok := stored[tok]
		if !ok && !cs.gone[tok] {
			cs.fatalf("unmarked message lost: %s (unique-id %q) is not in the maildrop after the kill", tok, cs.uidOf[tok])
		}
		if ok && !bytes.Equal(got, want) {
			cs.fatalf("message %s changed: %q, was %q", tok, got, want)
		}
		if !ok {
			delete(cs.content, tok) // removed for good; its unique-id stays in tokOf
		}
	}

	// A fresh pop3d opens the maildrop and lists every message under the
	// unique-id it had.
	p, err := startProc(cs.t, root, passwd, profile)
	if err != nil {
		cs.fatalf("the fresh pop3d: %v", err)
	}
	defer p.stop()
	c, err := loginAddr(p.addr, "u")
	if err != nil {
		cs.fatalf("the mailbox does not open after the kill (the UID list is not readable?): %v\n%s", err, p.stderr.String())
	}
	defer c.C.Close()
	ids, err := uidl(c)
	if err != nil {
		cs.fatalf("fresh UIDL: %v", err)
	}
	var nums []int
	for n := range ids {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	maxBefore := cs.maxUID
	now := map[string]string{} // token → unique-id in this listing
	for _, n := range nums {
		uid := ids[n]
		r, err := c.Exchange("TOP " + strconv.Itoa(n) + " 0")
		if err != nil || !strings.HasPrefix(r, "+OK") {
			cs.fatalf("TOP %d 0 answered %q %v", n, r, err)
		}
		head, err := c.ReadData()
		if err != nil {
			cs.fatalf("TOP %d 0: %v", n, err)
		}
		tok := tokenOf(head)
		if _, ok := stored[tok]; !ok {
			cs.fatalf("the fresh pop3d lists message %d (%q) as %s, which is not in the maildrop", n, uid, tok)
		}
		if old, twice := now[tok]; twice {
			cs.fatalf("one message, two unique-ids: the fresh pop3d lists message %s as %q and again as %q; its files: %v", tok, old, uid, cs.files[tok])
		}
		now[tok] = uid
		if old, ok := cs.uidOf[tok]; ok && old != uid {
			cs.fatalf("unique-id changed by the kill: message %s was %q and is %q; its files: %v", tok, old, uid, cs.files[tok])
		}
		if old, ok := cs.tokOf[uid]; ok && old != tok {
			cs.fatalf("unique-id reused: %q was message %s and is message %s", uid, old, tok)
		}
		v, err := strconv.ParseUint(uid, 10, 64)
		if err != nil {
			cs.fatalf("unique-id %q of %s is not decimal", uid, tok)
		}
		if _, ok := cs.uidOf[tok]; !ok && v <= maxBefore {
			cs.fatalf("new message %s got unique-id %q, not above %d, the highest given before", tok, uid, maxBefore)
		}
		cs.uidOf[tok], cs.tokOf[uid] = uid, tok
		cs.maxUID = max(cs.maxUID, v)
	}
	for tok := range stored {
		if _, ok := now[tok]; !ok {
			cs.fatalf("message %s is in the maildrop but the fresh pop3d does not list it; its files: %v", tok, cs.files[tok])
		}
	}
	for _, uid := range cs.listed {
		tok, ok := cs.tokOf[uid]
		if !ok {
			cs.fatalf("the killed session listed unique-id %q; after the kill no message has it", uid)
		}
		if _, ok := now[tok]; !ok && !cs.gone[tok] {
			cs.fatalf("the killed session listed %q (message %s); after the kill it is not listed", uid, tok)
		}
	}
	_, _ = c.Exchange("QUIT")
}
