package interop

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/pop3"
)

// TestDovecotSwitch: a real Dovecot and pop3d (UIDLFormat=dovecot) serve
// ONE Maildir, in turns, as an administrator who migrates, rolls back, or
// runs Dovecot's LDA beside pop3d would have them: messages arrive between
// turns (written into new/ as an MTA does, and through dovecot-lda),
// either server removes some, and at every switch both servers list the
// same unique-ids line for line, whichever of them saw the new messages
// first. mpop polls whichever server's turn it is with one UIDL memory
// (both accounts share its uidls file, as a client whose server was
// swapped behind one address), keeping the messages, and must download
// every message exactly once across all switches.
func TestDovecotSwitch(t *testing.T) {
	dovecot := findDovecot(t)
	mpop := findTool(t, "mpop", "mpop")
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	w := &world{dir: dir, dvMail: mail, pdMail: mail, uid: os.Getuid(), gid: os.Getgid()}
	testenv.Maildir(t, mail, bob.name)
	testenv.Maildir(t, mail, carol.name)
	must(t, os.MkdirAll(filepath.Join(dir, "pop3d"), 0o755))
	if os.Getuid() == 0 {
		w.runAsNobody(t)
	}
	dvAddr := w.startDovecot(t, dovecot)
	pdAddr := w.startPop3d(t)
	servers := map[string]string{"dovecot": dvAddr, "pop3d": pdAddr}
	poller := newMpop(t, mpop, dir, dvAddr, pdAddr)

	s := &switchRun{t: t, w: w, servers: servers, conf: filepath.Join(dir, "dovecot", "dovecot.conf")}
	// Each turn: deliveries, then the server whose turn it is lists first
	// (giving UIDs to what is new) and maybe removes a message, then the
	// other lists, and mpop polls the first.
	turns := []struct {
		first   string
		mta     int    // messages written into new/
		lda     int    // messages delivered through dovecot-lda
		dele    uint32 // message number the first server removes (0: none; last: the newest)
		restart bool   // pop3d's UIDL is read again after Dovecot's
	}{
		{first: "dovecot", mta: 3},
		{first: "pop3d", mta: 2},
		{first: "pop3d", mta: 1, dele: 2},
		{first: "dovecot", lda: 2},
		{first: "dovecot", mta: 1, dele: 1},
		{first: "pop3d", lda: 1, mta: 1},
		{first: "dovecot", mta: 2, dele: 3},
		{first: "pop3d", mta: 1},
		// pop3d gives the newest message a UID and removes it before
		// Dovecot ever sees it: the next message must not get that UID
		// from Dovecot and another from pop3d.
		{first: "pop3d", mta: 1, dele: last},
		{first: "dovecot", mta: 1},
		{first: "pop3d", lda: 1, mta: 1, dele: last},
		{first: "pop3d", mta: 2},
		{first: "dovecot", lda: 1},
	}
	for i, turn := range turns {
		for range turn.mta {
			s.deliverMTA()
		}
		for range turn.lda {
			s.deliverLDA()
		}
		other := "pop3d"
		if turn.first == "pop3d" {
			other = "dovecot"
		}
		a := s.uidl(turn.first, turn.dele)
		b := s.uidl(other, 0)
		c := s.uidl(turn.first, 0)
		if !slices.Equal(b, c) {
			t.Fatalf("turn %d: after %s listed first\n  %s: %q\n  %s: %q", i+1, turn.first, other, b, turn.first, c)
		}
		if turn.dele == 0 && !slices.Equal(a, b) {
			t.Fatalf("turn %d: %q then %q", i+1, a, b)
		}
		poller.poll(t, turn.first)
		t.Logf("turn %d (%s first): %d messages, unique-ids agree", i+1, turn.first, len(c))
	}
	poller.check(t, s.polledBodies)
}

// last, as the message to remove, is the newest.
const last = ^uint32(0)

// switchRun is the state of TestDovecotSwitch.
type switchRun struct {
	t            *testing.T
	w            *world
	servers      map[string]string
	conf         string
	n            int
	polledBodies map[string]bool // Message-IDs present when mpop polled
}

// deliverMTA writes a message into tmp/ and renames it into new/, as an
// MTA's Maildir delivery does.
func (s *switchRun) deliverMTA() {
	s.n++
	name := fmt.Sprintf("%d.M%dP9.mta", 1765000000+s.n, s.n)
	tmp := filepath.Join(s.w.dvMail, bob.name, "tmp", name)
	must(s.t, os.WriteFile(tmp, []byte(s.message("mta")), 0o600))
	must(s.t, os.Chown(tmp, s.w.uid, s.w.gid))
	must(s.t, os.Rename(tmp, filepath.Join(s.w.dvMail, bob.name, "new", name)))
}

// deliverLDA delivers a message through Dovecot's LDA, which takes
// dovecot-uidlist's lock and gives the message its UID at once.
func (s *switchRun) deliverLDA() {
	s.n++
	lda := "/usr/lib/dovecot/dovecot-lda"
	cmd := exec.Command(lda, "-c", s.conf, "-d", bob.name, "-f", "sender@example.org",
		"-o", "postmaster_address=postmaster@example.org")
	cmd.Stdin = strings.NewReader(s.message("lda"))
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(s.conf), "dovecot.log"))
		s.t.Fatalf("dovecot-lda: %v\n%s\n%s", err, out, log)
	}
}

func (s *switchRun) message(via string) string {
	return fmt.Sprintf("From: sender@example.org\nMessage-ID: <%d.%s@switch.test>\nSubject: %d via %s\n\nbody %d\n", s.n, via, s.n, via, s.n)
}

// uidl logs in to server, removes message dele (if not 0), and returns
// the UIDL listing, each line "n unique-id"; it records the Message-IDs
// present for the mpop check.
func (s *switchRun) uidl(server string, dele uint32) []string {
	s.t.Helper()
	c, err := pop3.Dial(s.servers[server])
	if err != nil {
		s.t.Fatalf("%s: %v", server, err)
	}
	defer c.Close()
	_ = c.Conn().SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.User(bob.name); err != nil {
		s.t.Fatalf("%s: USER: %v", server, err)
	}
	if err := c.Pass(bob.password); err != nil {
		s.t.Fatalf("%s: PASS: %v", server, err)
	}
	if dele == last {
		n, _, err := c.Stat()
		if err != nil {
			s.t.Fatalf("%s: STAT: %v", server, err)
		}
		dele = uint32(n)
	}
	if dele != 0 {
		if err := c.Dele(dele); err != nil {
			s.t.Fatalf("%s: DELE %d: %v", server, dele, err)
		}
	}
	u, err := c.UIDL()
	if err != nil {
		s.t.Fatalf("%s: UIDL: %v", server, err)
	}
	var out []string
	for _, e := range u {
		out = append(out, fmt.Sprintf("%d %s", e.Msg, e.UID))
	}
	if err := c.Quit(); err != nil {
		s.t.Fatalf("%s: QUIT: %v", server, err)
	}
	if dele == 0 {
		if s.polledBodies == nil {
			s.polledBodies = map[string]bool{}
		}
		for _, b := range s.w.messageIDs(s.t) {
			s.polledBodies[b] = true
		}
	}
	return out
}

// messageIDs returns the Message-IDs of bob's messages.
func (w *world) messageIDs(t *testing.T) []string {
	var out []string
	for _, body := range w.contents(t, w.dvMail) {
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, "Message-ID: "); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// runAsNobody gives the shared Maildir to nobody, whom Dovecot serves it
// as; pop3d, running as root in the test, keeps dovecot-uidlist's owner.
func (w *world) runAsNobody(t *testing.T) {
	u, err := lookupNobody()
	if err != nil {
		t.Fatalf("running as root needs the user nobody for Dovecot's mail: %v", err)
	}
	w.uid, w.gid = u[0], u[1]
	chownTree(t, w.dvMail, w.uid, w.gid)
	for d := w.dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			must(t, os.Chmod(d, fi.Mode().Perm()|0o005))
		}
	}
}

// findTool returns the program name, or skips (fails under CI=true)
// saying which package installs it.
func findTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s not found; install Debian's %s (apt-get install %s)", name, pkg, pkg)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the test must run; .ci/run installs it)")
		}
		t.Skip(msg)
	}
	return p
}

// mpopRun is mpop with a private configuration: one account for each
// server, both on 127.0.0.1, sharing one uidls file, keeping messages and
// delivering into a Maildir of its own.
type mpopRun struct {
	bin, conf, out string
}

func newMpop(t *testing.T, bin, dir, dvAddr, pdAddr string) *mpopRun {
	m := &mpopRun{bin: bin, conf: filepath.Join(dir, "mpoprc"), out: filepath.Join(dir, "fetched")}
	testenv.Maildir(t, dir, "fetched")
	conf := "defaults\nauth user\ntls off\nkeep on\nonly_new on\nreceived_header off\n" +
		"uidls_file " + filepath.Join(dir, "mpop-uidls") + "\n" +
		"delivery maildir " + m.out + "\n"
	for name, addr := range map[string]string{"dovecot": dvAddr, "pop3d": pdAddr} {
		host, port, _ := strings.Cut(addr, ":")
		conf += fmt.Sprintf("\naccount %s\nhost %s\nport %s\nuser %s\npassword %s\n", name, host, port, bob.name, bob.password)
	}
	must(t, os.WriteFile(m.conf, []byte(conf), 0o600))
	return m
}

// poll runs mpop on account.
func (m *mpopRun) poll(t *testing.T, account string) {
	t.Helper()
	out, err := exec.Command(m.bin, "-C", m.conf, "-q", account).CombinedOutput()
	if err != nil {
		t.Fatalf("mpop %s: %v\n%s", account, err, out)
	}
}

// check asserts that mpop fetched every message present at a poll once.
func (m *mpopRun) check(t *testing.T, present map[string]bool) {
	t.Helper()
	got := map[string]int{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(m.out, sub))
		must(t, err)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(m.out, sub, e.Name()))
			must(t, err)
			for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
				if v, ok := strings.CutPrefix(l, "Message-ID: "); ok {
					got[v]++
				}
			}
		}
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("mpop downloaded %s %d times", id, n)
		}
	}
	for id := range present {
		if got[id] == 0 {
			t.Errorf("mpop never downloaded %s", id)
		}
	}
	t.Logf("mpop downloaded %d messages, each once", len(got))
}

// lookupNobody returns the uid and gid of the user nobody.
func lookupNobody() ([2]int, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return [2]int{}, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return [2]int{}, fmt.Errorf("nobody: uid %q gid %q", u.Uid, u.Gid)
	}
	return [2]int{uid, gid}, nil
}
