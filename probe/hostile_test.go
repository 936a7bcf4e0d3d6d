package probe

// The tests of this file come from a hostile review of the probe against
// fake servers (startFake): each one's comment says what the probe did
// before it was fixed; the test holds the fix.

// Review tests: the probe against fake, possibly hostile, servers.

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSess is one connection to a fakeServer.
type fakeSess struct {
	id      int
	user    string
	authed  bool
	cmds    []string // commands received
	replies []string // status line answered to each
}

// handler answers one command line: the reply (CRLFs included) and
// whether to close the connection after it. reply "" with closeAfter
// closes without a reply.
type handler func(s *fakeSess, line string) (reply string, closeAfter bool)

type fakeServer struct {
	t        *testing.T
	ln       net.Listener
	greeting string
	handle   handler
	mu       sync.Mutex
	sessions []*fakeSess
	conns    []net.Conn
}

func startFake(t *testing.T, greeting string, h handler) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{t: t, ln: ln, greeting: greeting, handle: h}
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) addr() string { return f.ln.Addr().String() }

func (f *fakeServer) close() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *fakeServer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		s := &fakeSess{id: len(f.sessions)}
		f.sessions = append(f.sessions, s)
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		go f.session(c, s)
	}
}

func (f *fakeServer) session(c net.Conn, s *fakeSess) {
	defer c.Close()
	if _, err := c.Write([]byte(f.greeting + "\r\n")); err != nil {
		return
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		reply, closeAfter := f.handle(s, line)
		f.mu.Lock()
		s.cmds = append(s.cmds, line)
		st, _, _ := strings.Cut(reply, "\r\n")
		s.replies = append(s.replies, st)
		f.mu.Unlock()
		if reply != "" {
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
		if closeAfter {
			return
		}
	}
}

func (f *fakeServer) snapshot() []fakeSess {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeSess
	for _, s := range f.sessions {
		cp := *s
		cp.cmds = append([]string(nil), s.cmds...)
		cp.replies = append([]string(nil), s.replies...)
		out = append(out, cp)
	}
	return out
}

// basic is a plain, well-behaved POP3 server: account alice/secret, one
// message of 10 octets, USER of any name, CAPA, and -ERR to the unknown.
func basic(s *fakeSess, line string) (string, bool) {
	kw, arg, _ := strings.Cut(line, " ")
	switch strings.ToUpper(kw) {
	case "CAPA":
		return "+OK\r\nUSER\r\nUIDL\r\n.\r\n", false
	case "USER":
		s.user = arg
		return "+OK\r\n", false
	case "PASS":
		if s.user == "alice" && arg == "secret" {
			s.authed = true
			return "+OK logged in\r\n", false
		}
		return "-ERR [AUTH] no\r\n", false
	case "STAT":
		return "+OK 1 10\r\n", false
	case "LIST":
		return "+OK\r\n1 10\r\n.\r\n", false
	case "UIDL":
		return "+OK\r\n1 1\r\n.\r\n", false
	case "RETR":
		return "+OK\r\n12345678\r\n.\r\n", false
	case "RSET", "NOOP", "DELE":
		return "+OK\r\n", false
	case "QUIT":
		return "+OK bye\r\n", true
	}
	return "-ERR unknown command\r\n", false
}

func runProbe(t *testing.T, addr string, o Options) *Report {
	t.Helper()
	o.Addr = addr
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func observation(t *testing.T, rep *Report, name string) Observation {
	t.Helper()
	ob, ok := rep.Observation(name)
	if !ok {
		t.Fatalf("no observation of %s", name)
	}
	return ob
}

// TestEveryLoginEndsWithRset: the package's promise is that every
// login ends with RSET and QUIT (or a close without QUIT). StickyUser and
// MaildropAccess's second login send QUIT straight after a successful PASS.
func TestEveryLoginEndsWithRset(t *testing.T) {
	f := startFake(t, "+OK ready", basic)
	runProbe(t, f.addr(), Options{User: "alice", Pass: "secret"})
	for _, s := range f.snapshot() {
		if !s.authed {
			continue
		}
		for i, c := range s.cmds {
			if c != "QUIT" {
				continue
			}
			if i == 0 || s.cmds[i-1] != "RSET" || !strings.HasPrefix(s.replies[i-1], "+OK") {
				t.Errorf("session %d: QUIT after a login without an accepted RSET before it: %q", s.id, s.cmds)
			}
		}
	}
}

// TestNoQuitAfterRefusedRset: a server that refuses RSET (or any
// failure of RSET) must get a close without QUIT: QUIT commits what the
// session holds marked. withMail's deferred `c.Rset(); c.Quit()` sends
// QUIT whatever RSET's answer.
func TestNoQuitAfterRefusedRset(t *testing.T) {
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if line == "RSET" {
			return "-ERR no\r\n", false
		}
		return basic(s, line)
	})
	runProbe(t, f.addr(), Options{User: "alice", Pass: "secret"})
	for _, s := range f.snapshot() {
		for i, c := range s.cmds {
			if c == "QUIT" && s.authed && i > 0 && s.cmds[i-1] == "RSET" {
				t.Errorf("session %d: QUIT sent although RSET was refused: %q", s.id, s.cmds)
			}
		}
	}
}

// TestAPOPNeedsATimestamp: a greeting with a "<", an "@" and a ">"
// anywhere is taken for an APOP timestamp; pop3.Client finds none in it.
func TestAPOPNeedsATimestamp(t *testing.T) {
	greeting := "+OK POP3 ready. Questions: postmaster@example.org (see <https://example.org/help>)"
	f := startFake(t, greeting, basic)
	rep := runProbe(t, f.addr(), Options{})
	ob := observation(t, rep, "APOP")
	if ob.Told && ob.Value == "true" {
		t.Errorf("APOP told true from a greeting with no timestamp: %s", ob.How)
	}
}

// TestUIDLFormatFromNothing: an empty unique-id listing (LIST had a
// message) is reported as UIDLFormat=decimal: "0 unique-ids, all decimal".
func TestUIDLFormatFromNothing(t *testing.T) {
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if line == "UIDL" {
			return "+OK\r\n.\r\n", false
		}
		return basic(s, line)
	})
	rep := runProbe(t, f.addr(), Options{User: "alice", Pass: "secret"})
	ob := observation(t, rep, "UIDLFormat")
	if ob.Told {
		t.Errorf("UIDLFormat told %q with no unique-id seen: %s", ob.Value, ob.How)
	}
}

// TestMaxBadCommandsFirstClose: a server that drops the connection
// at the first unknown command is reported MaxBadCommands=0, which the
// table defines as "0 never closes".
func TestMaxBadCommandsFirstClose(t *testing.T) {
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if line == "XPROBE" {
			return "", true
		}
		return basic(s, line)
	})
	rep := runProbe(t, f.addr(), Options{})
	ob := observation(t, rep, "MaxBadCommands")
	if ob.Told && ob.Value == "0" {
		t.Errorf("MaxBadCommands told 0 (never closes) for a server that closed at the first: %s", ob.How)
	}
}

// TestIgnoreExtraArgsWithoutCapa: a server without CAPA refuses
// "CAPA extra" because CAPA is unknown; the probe reports
// IgnoreExtraArgs=false although it never saw an argument refused (this
// server ignores NOOP extra and STAT extra).
func TestIgnoreExtraArgsWithoutCapa(t *testing.T) {
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if strings.HasPrefix(line, "CAPA") {
			return "-ERR unknown command\r\n", false
		}
		return basic(s, line)
	})
	rep := runProbe(t, f.addr(), Options{User: "alice", Pass: "secret"})
	ob := observation(t, rep, "IgnoreExtraArgs")
	if ob.Told {
		t.Errorf("IgnoreExtraArgs told %q from a server that has no CAPA: %s", ob.Value, ob.How)
	}
}

// limitedUser accepts USER of any name of at most 20 octets.
func limitedUser(s *fakeSess, line string) (string, bool) {
	if kw, arg, _ := strings.Cut(line, " "); kw == "USER" {
		if len(arg) > 20 {
			return "-ERR name too long\r\n", false
		}
		s.user = arg
		return "+OK\r\n", false
	}
	return basic(s, line)
}

// TestMaxArgOctetsRunsBeforeUserAlwaysOK: MaxArgOctets needs
// ru.anyName, which the UserAlwaysOK probe sets, but the table (and so
// Run) puts MaxArgOctets first: it is never told, and the report says
// "USER refuses unknown names" beside UserAlwaysOK=true.
func TestMaxArgOctetsRunsBeforeUserAlwaysOK(t *testing.T) {
	f := startFake(t, "+OK ready", limitedUser)
	rep := runProbe(t, f.addr(), Options{})
	any := observation(t, rep, "UserAlwaysOK")
	ob := observation(t, rep, "MaxArgOctets")
	if any.Told && any.Value == "true" && strings.Contains(ob.How, "USER refuses unknown names") {
		t.Errorf("UserAlwaysOK=true (%s) but MaxArgOctets: %q", any.How, ob.How)
	}
}

// TestMaxArgOctetsValueNotSeen: once anyName is known, a server
// whose argument limit is 20 is reported MaxArgOctets=40: only a refusal
// of 41 octets was seen.
func TestMaxArgOctetsValueNotSeen(t *testing.T) {
	f := startFake(t, "+OK ready", limitedUser)
	ru := &run{ctx: context.Background(), o: Options{Addr: f.addr(), Timeout: 2 * time.Second}, r: &Report{}, seen: map[string]Observation{}, anyName: ptrTrue()}
	ob := probes["MaxArgOctets"](ru)
	if ob.Told && ob.Value != "20" {
		t.Errorf("MaxArgOctets told %q for a server whose limit is 20: %s", ob.Value, ob.How)
	}
}

// TestMaildropAccessLoginDelay: a snapshot server that refuses a
// login too soon after the last one ([LOGIN-DELAY], RFC 2449 §8.1.2) is
// reported MaildropAccess=lock: any refusal of the second login counts.
func TestMaildropAccessLoginDelay(t *testing.T) {
	var mu sync.Mutex
	var last time.Time
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if kw, _, _ := strings.Cut(line, " "); kw == "PASS" {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) < 200*time.Millisecond {
				return "-ERR [LOGIN-DELAY] wait\r\n", false
			}
			r, c := basic(s, line)
			if s.authed {
				last = time.Now()
			}
			return r, c
		}
		return basic(s, line)
	})
	rep := runProbe(t, f.addr(), Options{User: "alice", Pass: "secret", Progress: func(string) { time.Sleep(250 * time.Millisecond) }})
	ob := observation(t, rep, "MaildropAccess")
	if ob.Told && ob.Value == "lock" {
		t.Errorf("MaildropAccess told lock from a [LOGIN-DELAY] refusal: %s", ob.How)
	}
}

// TestRunHonoursContext: Ctrl-C (the context) is looked at only
// between variations; MaxBadCommands sends up to 1001 commands, each
// given the whole reply timeout, so a server that answers each slowly
// holds the probe (and pop3probe, whose SIGINT the context swallows) for
// 1001 × 15 s, over four hours.
func TestRunHonoursContext(t *testing.T) {
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if line == "XPROBE" {
			time.Sleep(300 * time.Millisecond)
		}
		return basic(s, line)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = Run(ctx, Options{Addr: f.addr(), Timeout: 2 * time.Second, Progress: func(what string) {
			if what == "MaxBadCommands" {
				once.Do(func() { time.AfterFunc(500*time.Millisecond, cancel) })
			}
		}})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Errorf("Run still running 20 s after start (context cancelled during MaxBadCommands); it would take 1001 × 0.3 s")
		f.close()
		<-done
	}
}

// TestHostileCapaMemory: the CAPA listing before login is kept
// whole, however long (Client.Capa, then Report.Capabilities), split into
// one string a word: 16 MiB sent is well over 16 MiB held. Only the reply
// deadline bounds it; on a loopback a server sends gigabytes in 15 s.
func TestHostileCapaMemory(t *testing.T) {
	const total = 16 << 20
	line := "SASL" + strings.Repeat(" a", 250) + "\r\n"
	body := "+OK\r\n" + strings.Repeat(line, total/len(line)) + ".\r\n"
	f := startFake(t, "+OK ready", func(s *fakeSess, l string) (string, bool) {
		if l == "CAPA" && s.id == 0 {
			return body, false
		}
		return "", true // every later connection: closed
	})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	rep, _ := Run(context.Background(), Options{Addr: f.addr(), Timeout: 10 * time.Second})
	close(stop)
	<-sampled
	growth := int64(peak) - int64(base.HeapAlloc)
	t.Logf("capabilities kept: %d; heap growth at peak: %d MiB for %d MiB sent", len(rep.Capabilities), growth>>20, total>>20)
	if growth > total {
		t.Errorf("a %d MiB CAPA listing took the heap up by %d MiB (%d capabilities kept)", total>>20, growth>>20, len(rep.Capabilities))
	}
}

// TestStickyUserWaitsOutRefusedCapa: StickyUser reads CAPA's
// listing (c.Lines) whatever CAPA's answer; after a "-ERR" no listing
// comes and the probe sits out the whole reply timeout.
func TestStickyUserWaitsOutRefusedCapa(t *testing.T) {
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if line == "CAPA" {
			return "-ERR unknown command\r\n", false
		}
		return basic(s, line)
	})
	const timeout = 2 * time.Second
	ru := &run{ctx: context.Background(), o: Options{Addr: f.addr(), User: "alice", Pass: "secret", Timeout: timeout}, r: &Report{}, seen: map[string]Observation{}}
	start := time.Now()
	ob := probes["StickyUser"](ru)
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("StickyUser took %v (timeout %v) against a server that refuses CAPA: %+v", d.Round(time.Millisecond), timeout, ob)
	}
}

// TestHowQuotesTheReplySeen: a Reply's Text aliases the client's
// read buffer and is valid until the next command, but StickyUser,
// UserNameCase and MaildropAccess format it after QUIT (and RSET) have
// been read: the How reports a reply the server never sent to PASS,
// with QUIT's CRLF inside it.
func TestHowQuotesTheReplySeen(t *testing.T) {
	f := startFake(t, "+OK ready", func(s *fakeSess, line string) (string, bool) {
		if kw, arg, _ := strings.Cut(line, " "); kw == "USER" {
			s.user = strings.ToLower(arg) // names ignore case
			return "+OK\r\n", false
		}
		return basic(s, line)
	})
	rep := runProbe(t, f.addr(), Options{User: "alice", Pass: "secret"})
	for _, name := range []string{"StickyUser", "UserNameCase", "MaildropAccess"} {
		ob := observation(t, rep, name)
		if !strings.Contains(ob.How, "+OK logged in") {
			t.Errorf("%s: the server answered PASS \"+OK logged in\"; the probe says %q", name, ob.How)
		}
	}
}

func ptrTrue() *bool { b := true; return &b }
