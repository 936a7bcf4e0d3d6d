package property

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanovate/gopter"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testserver"
	"github.com/pop3kit/pop3kit/server"
)

// parameters returns gopter parameters with a logged, replayable seed.
func parameters(t *testing.T) *gopter.TestParameters {
	p := gopter.DefaultTestParameters()
	seed := time.Now().UnixNano()
	if s := os.Getenv("POP3KIT_PROPERTY_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("POP3KIT_PROPERTY_SEED=%q: %v", s, err)
		}
		seed = n
	}
	p.SetSeed(seed)
	p.MinSuccessfulTests = 60
	if s := os.Getenv("POP3KIT_PROPERTY_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("POP3KIT_PROPERTY_RUNS=%q: %v", s, err)
		}
		p.MinSuccessfulTests = n
	}
	p.MaxShrinkCount = 200
	t.Logf("seed %d (replay: POP3KIT_PROPERTY_SEED=%d go test ./property -run '^%s$')", seed, seed, t.Name())
	return p
}

// check runs properties and fails the test on a falsified one.
func check(t *testing.T, props *gopter.Properties) {
	t.Helper()
	var out strings.Builder
	ok := props.Run(gopter.NewFormatedReporter(true, 100, &out))
	if !ok {
		t.Fatalf("%s", out.String())
	}
}

// pop3d is a running server with PLAIN users whose maildrops a property
// resets between cases.
type pop3d struct {
	t    *testing.T
	srv  *server.Server
	addr string
	root string
}

// users are the accounts of every property server, password "pw".
var users = []string{"u", "a", "b"}

func start(t *testing.T, profile string, sets ...string) *pop3d {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "mail")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	var pw strings.Builder
	for _, u := range users {
		pw.WriteString(u + ":{PLAIN}pw\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.MailRoot, cfg.Passwd, cfg.Profile, cfg.FailDelay = root, filepath.Join(dir, "passwd"), profile, 0
	// Clients come from loopback, which is trusted only when it is said
	// (issue 11, trust): the properties log in with USER/PASS over it.
	cfg.TrustedNetworks = []string{"127.0.0.0/8", "::1"}
	for _, s := range sets {
		if err := cfg.AddSet(s); err != nil {
			t.Fatal(err)
		}
	}
	srv, addrs := testserver.Serve(t, cfg)
	return &pop3d{t: t, srv: srv, addr: addrs[0].String(), root: root}
}

var serial atomic.Int64

// reset empties user's maildrop and delivers msgs, in order, as an MDA
// does (tmp/, then new/). It waits for the sessions of earlier cases to end
// so that no lock or snapshot of theirs is in the way.
func (p *pop3d) reset(user string, msgs [][]byte) error {
	deadline := time.Now().Add(10 * time.Second)
	for p.srv.Sessions() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("sessions of an earlier case did not end")
		}
		time.Sleep(time.Millisecond)
	}
	md := filepath.Join(p.root, user)
	if err := os.RemoveAll(md); err != nil {
		return err
	}
	return p.deliver(user, msgs)
}

func (p *pop3d) deliver(user string, msgs [][]byte) error {
	md := filepath.Join(p.root, user)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		name := fmt.Sprintf("%d.M%d.prop", 1700000000+serial.Add(1), serial.Load())
		if err := os.WriteFile(filepath.Join(md, "tmp", name), m, 0o600); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(md, "tmp", name), filepath.Join(md, "new", name)); err != nil {
			return err
		}
	}
	return nil
}

// contents returns the message files left in user's maildrop, in name
// (delivery) order.
func (p *pop3d) contents(user string) ([]string, error) {
	var names []string
	byName := map[string]string{}
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(p.root, user, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(p.root, user, sub, e.Name()))
			if err != nil {
				return nil, err
			}
			base, _, _ := strings.Cut(e.Name(), ":")
			names = append(names, base)
			byName[base] = string(b)
		}
	}
	sortStrings(names)
	var out []string
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// dial connects with the tests' one client (internal/pop3test), used in
// its error-returning forms (ReadRaw, Exchange, ReadData, ReadLines),
// since a property reports a failure as a value rather than failing the
// test.
func (p *pop3d) dial() (*pop3test.Conn, error) {
	return pop3test.Open(p.addr, 20*time.Second)
}

// login dials and logs user in.
func (p *pop3d) login(user string) (*pop3test.Conn, error) {
	c, err := p.dial()
	if err != nil {
		return nil, err
	}
	for _, l := range []string{"USER " + user, "PASS pw"} {
		r, err := c.Exchange(l)
		if err != nil {
			c.C.Close()
			return nil, err
		}
		if !strings.HasPrefix(r, "+OK") {
			c.C.Close()
			return nil, fmt.Errorf("%s: %s", l, r)
		}
	}
	return c, nil
}
