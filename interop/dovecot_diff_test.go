package interop

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testserver"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
)

// The knobs of TestDovecotDifferential, read from the environment.
const (
	seedEnv     = "DOVECOT_DIFF_SEED"     // replay a run: the seed it printed
	sessionsEnv = "DOVECOT_DIFF_SESSIONS" // how many sessions (default 100)
)

// pop3dSets are the variations that make pop3d's rfc1939 profile behave
// like Dovecot 2.3's defaults. Each is a row of the spec table; the
// comment gives the Dovecot setting it stands for.
var pop3dSets = []string{
	"UIDLFormat=dovecot",      // pop3_uidl_format = %08Xu%08Xv
	"UserNameCase=lower",      // auth_username_format = %Lu
	"StickyUser=true",         // pop3-login keeps the last USER until the next
	"PassKeepsSpaces=true",    // pop3-login takes the rest of the PASS line
	"UserAlwaysOK=true",       // pop3-login answers USER +OK before any lookup
	"MaildropAccess=snapshot", // pop3_lock_session = no
	"APOP=false",              // no APOP without a plaintext passdb and auth_mechanisms apop
	"UTF8=false",              // Dovecot implements neither command of RFC 6856
	"LANG=false",
}

// allowed lists the divergences the spec table documents, keyed by the
// name of the variation whose value explains them (CAPA by the capability
// table). Anything else fails the test. The comment says what Dovecot does
// and why pop3d differs.
var allowed = map[string]string{
	// SpaceRuns: pop3d accepts SPACEs after the last argument (LIST 1 ),
	// Dovecot answers "-ERR Noise after message number"; before a user
	// name Dovecot keeps the SPACEs in the name, pop3d drops them.
	"SpaceRuns": "trailing or doubled SPACE around an argument",
	// IgnoreExtraArgs: QUIT never ignores arguments in pop3d, so QUIT extra
	// from TRANSACTION is refused instead of removing messages on an
	// unclear line; Dovecot ignores the argument and enters UPDATE. The
	// runner then sends pop3d a plain QUIT so that both maildrops stay
	// alike.
	"IgnoreExtraArgs": "QUIT with arguments",
	// CAPA: Dovecot announces a "CAPA" tag of its own, which RFC 2449 does
	// not define; every other tag Dovecot announces must be in pop3d's
	// list (pop3d may announce more: IMPLEMENTATION, EXPIRE by
	// configuration).
	"CAPA": "Dovecot's CAPA tag",
}

// TestDovecotDifferential runs seeded random sessions against a private
// Dovecot and pop3d on copies of one Maildir, in lockstep, and fails on any
// divergence of status (+OK/-ERR), multi-line bodies, sizes or unique-ids
// that is not in allowed. Commands come from the generated command table,
// in canonical form and in the hostile spellings a real client sends
// (doubled and trailing SPACEs, arguments to commands that take none,
// zero-padded numbers, TOP counts of 2^31 and more, user names in
// another case, PASS after USER and another command, a 255-octet PASS).
// It covers RFC1122-1.2.2, RFC1939-3-SPACE, RFC1939-3-KEYWORD,
// RFC2449-4-CMD255, RFC1939-7-TOP, RFC1939-7-USER, RFC1939-7-PASS and
// RFC1939-7-UIDL against a real server. The seed is printed; set
// DOVECOT_DIFF_SEED to replay a run.
func TestDovecotDifferential(t *testing.T) {
	clause.Covers(t,
		"RFC1122-1.2.2", "RFC1939-3-KEYWORD", "RFC1939-3-SPACE", "RFC1939-6-UPDATE",
		"RFC1939-7-PASS", "RFC1939-7-TOP", "RFC1939-7-UIDL", "RFC1939-7-USER", "RFC2449-4-CMD255")
	dovecot := findDovecot(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
	}
	sessions := 100
	if s := os.Getenv(sessionsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", sessionsEnv, s)
		}
		sessions = n
	}
	t.Logf("seed %d (replay: %s=%d go test -run TestDovecotDifferential ./interop)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	w := newWorld(t, rng)
	dv := w.startDovecot(t, dovecot)
	pd := w.startPop3d(t)

	st := stats{allowed: map[string]int{}}
	start := time.Now()
	for i := 0; i < sessions; i++ {
		if i > 0 && i%5 == 0 {
			w.deliver(t, rng) // a new message in both new/ directories
		}
		script := w.session(rng)
		if err := runSession(dv, pd, script, &st); err != nil {
			t.Fatalf("session %d of seed %d diverged: %v\nscript: %q", i+1, seed, err, script.lines)
		}
		st.sessions++
	}
	t.Logf("%d sessions, %d commands in %v; allowed divergences: %v", st.sessions, st.commands, time.Since(start).Round(time.Millisecond), st.allowed)
	// RFC1939-6-UPDATE: both removed exactly the same messages.
	if d, p := w.contents(t, w.dvMail), w.contents(t, w.pdMail); !slices.Equal(d, p) {
		t.Fatalf("seed %d: the maildrops differ after the run: dovecot keeps %d messages, pop3d %d", seed, len(d), len(p))
	}
}

// contents returns the messages left in bob's maildrop under root, sorted.
func (w *world) contents(t *testing.T, root string) []string {
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(root, bob.name, sub))
		must(t, err)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(root, bob.name, sub, e.Name()))
			must(t, err)
			out = append(out, string(b))
		}
	}
	slices.Sort(out)
	return out
}

// findDovecot returns the dovecot binary, or skips (fails under CI=true)
// saying how to install it.
func findDovecot(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr == nil {
			return "/usr/sbin/dovecot"
		}
		msg := "dovecot not found; install Debian's dovecot-pop3d (apt-get install dovecot-pop3d) to run the differential test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the test must run; .ci/run installs it)")
		}
		t.Skip(msg)
	}
	return p
}

// stats counts what a run did.
type stats struct {
	sessions, commands int
	allowed            map[string]int
}

// testUser is a user both servers know.
type testUser struct{ name, password string }

// The users: bob, and carol, whose 248-octet password makes a 255-octet
// PASS line (RFC 2449 §4), as a password manager's would.
var (
	bob   = testUser{"bob", "secret"}
	carol = testUser{"carol", strings.Repeat("Zq9!", 62)}
)

// world is the two copies of the Maildir tree and what the session
// generator knows about them.
type world struct {
	dir            string
	dvMail, pdMail string // mail roots: dovecot's copy, pop3d's copy
	uid, gid       int    // the owner of Dovecot's copy
	delivered      int
}

// newWorld writes one Maildir for bob (a few messages and a Dovecot
// uidlist, so that both servers start from the same unique-ids) and an
// empty one for carol, once for each server.
func newWorld(t *testing.T, rng *rand.Rand) *world {
	dir := t.TempDir()
	w := &world{dir: dir, dvMail: filepath.Join(dir, "dovecot", "mail"), pdMail: filepath.Join(dir, "pop3d", "mail"), uid: os.Getuid(), gid: os.Getgid()}
	n := 3 + rng.IntN(4)
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("17640%05d.M%dP1.diff", i, i))
	}
	uidlist := fmt.Sprintf("3 V1764000000 N%d\n", n+1)
	for i, name := range names {
		uidlist += fmt.Sprintf("%d :%s\n", i+1, name)
	}
	for _, root := range []string{w.dvMail, w.pdMail} {
		for _, u := range []string{bob.name, carol.name} {
			for _, sub := range []string{"cur", "new", "tmp"} {
				must(t, os.MkdirAll(filepath.Join(root, u, sub), 0o755))
			}
		}
	}
	for _, name := range names {
		body := message(rng)
		for _, root := range []string{w.dvMail, w.pdMail} {
			must(t, os.WriteFile(filepath.Join(root, bob.name, "cur", name+":2,"), []byte(body), 0o644))
		}
	}
	for _, root := range []string{w.dvMail, w.pdMail} {
		must(t, os.WriteFile(filepath.Join(root, bob.name, "dovecot-uidlist"), []byte(uidlist), 0o644))
	}
	if os.Getuid() == 0 {
		// Dovecot will not serve mail as root: its copy belongs to
		// nobody, and the tree above it must be searchable.
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root needs the user nobody for Dovecot's mail: %v", err)
		}
		w.uid, _ = strconv.Atoi(u.Uid)
		w.gid, _ = strconv.Atoi(u.Gid)
		chownTree(t, filepath.Join(dir, "dovecot"), w.uid, w.gid)
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
				must(t, os.Chmod(d, fi.Mode().Perm()|0o005))
			}
		}
	}
	return w
}

// deliver puts one new message into bob's new/ in both copies, as an MDA
// does; both servers must give it the same next unique-id.
func (w *world) deliver(t *testing.T, rng *rand.Rand) {
	w.delivered++
	name := fmt.Sprintf("17650%05d.M%dP2.diff", w.delivered, w.delivered)
	body := message(rng)
	for _, root := range []string{w.dvMail, w.pdMail} {
		tmp := filepath.Join(root, bob.name, "tmp", name)
		must(t, os.WriteFile(tmp, []byte(body), 0o644))
		if root == w.dvMail {
			must(t, os.Chown(tmp, w.uid, w.gid))
		}
		must(t, os.Rename(tmp, filepath.Join(root, bob.name, "new", name)))
	}
}

// message returns a random message with LF line ends: a header, a blank
// line and a body with empty lines and lines that start with a dot.
func message(rng *rand.Rand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: sender%d@example.org\nSubject: test %d\n", rng.IntN(100), rng.IntN(1e6))
	for range rng.IntN(3) {
		fmt.Fprintf(&b, "X-Header-%d: value %d\n", rng.IntN(10), rng.IntN(1000))
	}
	b.WriteString("\n")
	for range rng.IntN(12) {
		switch rng.IntN(6) {
		case 0:
			b.WriteString("\n")
		case 1:
			b.WriteString(".\n")
		case 2:
			fmt.Fprintf(&b, ".dot line %d\n", rng.IntN(100))
		default:
			fmt.Fprintf(&b, "body line %d %s\n", rng.IntN(1000), strings.Repeat("x", rng.IntN(80)))
		}
	}
	return b.String()
}

// startDovecot writes a configuration into the test's directory and runs a
// private Dovecot on a free loopback port: its own base_dir, passwd-file
// passdb and userdb, Maildir, the UIDL format pop3d's dovecot format
// produces, no SSL. Started as root it runs its login processes as
// dovenull and its internal ones as dovecot (the package creates both);
// otherwise everything runs as the current user.
func (w *world) startDovecot(t *testing.T, bin string) string {
	t.Helper()
	dir := filepath.Join(w.dir, "dovecot")
	base := filepath.Join(dir, "run")
	must(t, os.MkdirAll(base, 0o755))
	port := freePort(t)
	passwd := ""
	for _, a := range []testUser{bob, carol} {
		// nodelay: no penalty on the next login from the address after a
		// wrong password (Dovecot's auth penalty grows 2, 4, 8 s), as
		// pop3d runs with Penalties off.
		passwd += fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s::nodelay=yes\n", a.name, a.password, w.uid, w.gid, filepath.Join(w.dvMail, a.name))
	}
	must(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644))
	internal, login, group := "", "", ""
	if os.Getuid() == 0 {
		internal, login, group = "dovecot", "dovenull", "dovecot"
	} else {
		u, err := user.Current()
		must(t, err)
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		must(t, err)
		internal, login, group = u.Username, u.Username, g.Name
	}
	conf := fmt.Sprintf(`# Written by interop.TestDovecotDifferential.
base_dir = %[1]s
state_dir = %[1]s/state
instance_name = pop3kit-diff-%[2]d
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_internal_user = %[3]s
default_internal_group = %[5]s
default_login_user = %[4]s
first_valid_uid = %[6]d
last_valid_uid = 0
first_valid_gid = %[7]d
log_path = %[8]s/dovecot.log
mail_location = maildir:%[9]s/%%u
pop3_uidl_format = %%08Xu%%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[8]s/passwd
}
userdb {
  driver = passwd-file
  args = %[8]s/passwd
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[2]d
  }
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
`, base, port, internal, login, group, min(w.uid, 1000), min(w.gid, 1000), dir, w.dvMail)
	confPath := filepath.Join(dir, "dovecot.conf")
	must(t, os.WriteFile(confPath, []byte(conf), 0o644))
	cmd := exec.Command(bin, "-F", "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "dovecot.log")); err == nil {
				t.Logf("dovecot.log:\n%s", b)
			}
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot did not listen on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startPop3d serves pop3d's copy with the rfc1939 profile and pop3dSets.
func (w *world) startPop3d(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(w.dir, "pop3d")
	pw := fmt.Sprintf("%s:{PLAIN}%s::::::\n%s:{PLAIN}%s::::::\n", bob.name, bob.password, carol.name, carol.password)
	must(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw), 0o600))
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.ListenTLS = []string{"127.0.0.1:0"}, nil
	cfg.MailRoot, cfg.Passwd, cfg.Profile = w.pdMail, filepath.Join(dir, "passwd"), "rfc1939"
	cfg.FailDelay = 0
	cfg.Penalties = false // Dovecot's penalties are off for trusted networks too
	cfg.TrustedNetworks = []string{"127.0.0.0/8"}
	for _, kv := range pop3dSets {
		must(t, cfg.AddSet(kv))
	}
	_, addrs := testserver.Serve(t, cfg)
	return addrs[0].String()
}

// script is one session: the lines to send; the last is QUIT, QUIT extra
// or "" (drop the connection without QUIT).
type script struct{ lines []string }

// session generates a session: at most two commands before login, a login
// by one of the forms Dovecot accepts, up to twelve commands drawn from
// the generated command table in canonical and hostile spellings, and an
// end. Dovecot's pop3-login closes after three bad commands and its pop3
// after twenty, pop3d after MaxBadCommands (20): sessions stay below.
func (w *world) session(rng *rand.Rand) script {
	var s script
	add := func(l ...string) { s.lines = append(s.lines, l...) }
	// Before login: one command at most, refused ones included; Dovecot's
	// pop3-login closes at its third bad command, so a refused one rules
	// out the wrong password below.
	bad := false
	if rng.IntN(2) == 0 {
		l := []string{"CAPA", "CAPA extra", "NOOP", "STLS", "STAT"}[rng.IntN(5)]
		bad = !strings.HasPrefix(l, "CAPA")
		add(l)
	}
	a := bob
	if rng.IntN(5) == 0 {
		a = carol // the 255-octet PASS
	}
	// Dovecot answers a wrong password after half a second whatever
	// auth_failure_delay says: keep them rare.
	form := rng.IntN(6)
	if form == 2 && (bad || rng.IntN(3) != 0) || form == 3 && a == carol {
		form = 5 // AUTH PLAIN with carol's password is longer than 255 octets
	}
	switch form {
	case 0: // RFC1939-7-USER: another case (UserNameCase=lower)
		add("USER "+strings.ToUpper(a.name), "PASS "+a.password)
	case 1: // RFC1939-7-PASS: another command between (StickyUser)
		add("USER "+a.name, "CAPA", "PASS "+a.password)
	case 2: // a wrong password first: both forget the name
		add("USER "+a.name, "PASS wrong", "USER "+a.name, "PASS "+a.password)
	case 3: // RFC5034-4-AUTH with an initial response
		add("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+a.name+"\x00"+a.password)))
	default:
		add("USER "+a.name, "PASS "+a.password)
	}
	msgs := 3 + 6 + w.delivered // an upper bound is enough: numbers beyond it are -ERR on both
	for range rng.IntN(13) {
		add(command(rng, msgs))
	}
	switch r := rng.IntN(10); {
	case r < 7:
		add("QUIT")
	case r < 8:
		add("QUIT extra")
	default:
		add("")
	}
	return s
}

// command draws a command of the TRANSACTION state from the generated
// table (QUIT is the session's end), with its arguments, sometimes in a
// hostile spelling.
func command(rng *rand.Rand, msgs int) string {
	var infos []pop3.CommandRow
	for _, c := range (*pop3gen.Variations)(nil).Protocol().Commands[1:] {
		if c.Name != "QUIT" && (c.In&pop3.StateTransaction != 0 || rng.IntN(4) == 0) {
			infos = append(infos, c)
		}
	}
	c := infos[rng.IntN(len(infos))]
	kw := c.Name
	num := func() string { return strconv.Itoa(rng.IntN(msgs + 1)) } // 0 and one past the end too
	var args []string
	switch c.Args {
	case pop3.MsgNum:
		args = []string{num()}
	case pop3.OptMsgNum, pop3.OptWord:
		if rng.IntN(2) == 0 {
			args = []string{num()}
		}
	case pop3.MsgNumCount:
		k := strconv.Itoa(rng.IntN(8))
		switch rng.IntN(5) {
		case 0: // RFC1939-7-TOP: 2^31 and more, up to Dovecot's 2^64-1
			k = strconv.FormatUint(1<<31+rng.Uint64N(1<<63), 10)
		case 1:
			k = "18446744073709551615"
		}
		args = []string{num(), k}
	case pop3.Word, pop3.Secret:
		args = []string{"bob"}
	case pop3.NameDigest:
		args = []string{"bob", strings.Repeat("0", 32)}
	case pop3.Mechanism:
		args = []string{"PLAIN"}
	}
	switch rng.IntN(8) {
	case 0: // SpaceRuns: a doubled SPACE
		if len(args) > 0 {
			return kw + "  " + strings.Join(args, " ")
		}
		return kw + " "
	case 1: // SpaceRuns: a trailing SPACE, only where nothing changes state
		if c.Name != "DELE" {
			return strings.TrimSpace(kw+" "+strings.Join(args, " ")) + " "
		}
	case 2: // IgnoreExtraArgs: an argument to a command that takes none
		if len(args) == 0 {
			return kw + " extra"
		}
	case 3: // RFC2449-4-CMD255: a number zero-padded beyond 40 octets
		if len(args) > 0 && (c.Args == pop3.MsgNum || c.Args == pop3.OptMsgNum || c.Args == pop3.MsgNumCount) {
			args[0] = strings.Repeat("0", 45) + args[0]
		}
	case 4: // a keyword in lower case
		kw = strings.ToLower(kw)
	}
	return strings.TrimSpace(kw + " " + strings.Join(args, " "))
}

// conn is one side of the lockstep, spoken through the shared test client
// (internal/pop3test): both servers' replies are read by the core's reply
// parser, which holds each status line to CRLF, 512 octets and +OK, -ERR
// or "+ ".
type conn struct {
	name string
	c    net.Conn
	p    *pop3test.Conn
}

func dial(name, addr string) (*conn, error) {
	p, err := pop3test.Open(addr, 20*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &conn{name: name, c: p.C, p: p}, nil
}

func (k *conn) line() (string, error) {
	l, err := k.p.ReadStatus()
	if err != nil {
		return "", fmt.Errorf("%s: %w", k.name, err)
	}
	return l, nil
}

// reply is what a server answered to one command.
type reply struct {
	status string   // the status line
	body   []string // a multi-line body, dot-unstuffed; nil when single-line
	closed bool     // the server closed the connection after it
}

func (r reply) ok() bool { return strings.HasPrefix(r.status, "+OK") }

// do sends line and reads the reply; multi says whether a +OK reply has a
// body.
func (k *conn) do(line string, multi bool) (reply, error) {
	if err := k.p.WriteLine(line); err != nil {
		return reply{}, fmt.Errorf("%s: %w", k.name, err)
	}
	var r reply
	var err error
	if r.status, err = k.line(); err != nil {
		return r, err
	}
	if multi && r.ok() {
		lines, err := k.p.ReadLines()
		if err != nil {
			return r, fmt.Errorf("%s: %w", k.name, err)
		}
		r.body = append([]string{}, lines...)
	}
	return r, nil
}

// multiLine reports whether the positive reply to line is multi-line, from
// the command table: CAPA, RETR, TOP always; LIST and UIDL without an
// argument.
func multiLine(line string) bool {
	kw, rest, _ := strings.Cut(strings.ToUpper(line), " ")
	for _, c := range (*pop3gen.Variations)(nil).Protocol().Commands[1:] {
		if c.Name != kw || !c.Multi {
			continue
		}
		if c.Args == pop3.OptMsgNum || c.Args == pop3.OptWord {
			return strings.TrimSpace(rest) == ""
		}
		return true
	}
	return false
}

// runSession plays s against both servers and compares every reply.
func runSession(dvAddr, pdAddr string, s script, st *stats) error {
	dv, err := dial("dovecot", dvAddr)
	if err != nil {
		return err
	}
	defer dv.c.Close()
	pd, err := dial("pop3d", pdAddr)
	if err != nil {
		return err
	}
	defer pd.c.Close()
	for _, line := range s.lines {
		if line == "" {
			return nil // drop both connections without QUIT
		}
		st.commands++
		multi := multiLine(line)
		rd, err := dv.do(line, multi)
		if err != nil {
			return fmt.Errorf("%q: %w", line, err)
		}
		rp, err := pd.do(line, multi)
		if err != nil {
			return fmt.Errorf("%q: %w", line, err)
		}
		if key, err := compare(line, rd, rp); err != nil {
			return err
		} else if key != "" {
			st.allowed[key]++
			if key == "IgnoreExtraArgs" {
				// Dovecot took QUIT extra and closed; bring pop3d to
				// the same end so both maildrops stay alike.
				if r, err := pd.do("QUIT", false); err != nil || !r.ok() {
					return fmt.Errorf("pop3d: QUIT after QUIT extra: %q %v", r.status, err)
				}
				return nil
			}
		}
		if strings.EqualFold(line, "QUIT") {
			return nil
		}
	}
	return nil
}

// compare returns nil when the replies agree, the allowlist key when they
// differ as a documented variation says, and an error otherwise.
func compare(line string, d, p reply) (string, error) {
	fail := func(what string) (string, error) {
		return "", fmt.Errorf("%q: %s\n  dovecot: %q %q\n  pop3d:   %q %q", line, what, d.status, d.body, p.status, p.body)
	}
	kw, rest, _ := strings.Cut(strings.ToUpper(line), " ")
	if d.ok() != p.ok() {
		switch {
		case kw == "QUIT" && rest != "" && d.ok():
			return "IgnoreExtraArgs", nil
		case p.ok() && (strings.HasSuffix(line, " ") || strings.Contains(line, "  ")) &&
			(strings.HasPrefix(d.status, "-ERR Noise after") || kw == "USER" || kw == "PASS"):
			return "SpaceRuns", nil
		}
		return fail("status differs")
	}
	if !d.ok() {
		return "", nil // both refused; the texts are each server's own
	}
	switch kw {
	case "STAT", "RETR":
		// "+OK count size", "+OK size octets": sizes must agree.
		if d.status != p.status {
			return fail("sizes differ")
		}
	case "LIST", "UIDL":
		if d.body == nil && d.status != p.status {
			return fail("listing differs")
		}
	}
	if kw == "CAPA" {
		var missing []string
		for _, tag := range d.body {
			if tag != "CAPA" && !slices.Contains(p.body, tag) {
				missing = append(missing, tag)
			}
		}
		if len(missing) > 0 {
			return fail(fmt.Sprintf("pop3d does not announce %q", missing))
		}
		if slices.Contains(d.body, "CAPA") {
			return "CAPA", nil
		}
		return "", nil
	}
	if !slices.Equal(d.body, p.body) {
		return fail("bodies differ")
	}
	return "", nil
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func chownTree(t *testing.T, root string, uid, gid int) {
	must(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
