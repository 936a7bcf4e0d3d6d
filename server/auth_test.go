package server_test

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
)

const (
	replyLogin  = "-ERR [AUTH] invalid user name or password"
	replyAPOP   = "-ERR [AUTH] invalid user name or digest"
	replyClosed = "-ERR [AUTH] invalid credentials; too many failed logins on this connection, closing it"
	replyQueue  = "-ERR [SYS/TEMP] too many logins are being checked right now, try again later"
	// replyPenaltyBusy answers an attempt whose address's failed logins
	// left it no turn for a check in time: nothing was checked.
	replyPenaltyBusy = "-ERR [SYS/TEMP] too many failed logins from your address are waiting to be checked, try again later"
)

// erinPassword is erin's password in the test passwd-file (harness_test.go).
const erinPassword = "open sesame"

// dialFrom connects to the plain port from a given loopback address
// (127.0.0.0/8 is all loopback on Linux), so one test can play several
// remote addresses.
func (e *env) dialFrom(local string) *pop3test.Conn {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", e.addr)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		// Linux routes all of 127.0.0.0/8 to loopback; other systems
		// configure 127.0.0.1 alone unless told otherwise.
		e.t.Skipf("this system has no loopback address %s to play a second client from: %v", local, err)
	}
	require.NoError(e.t, err)
	return e.wrap(c)
}

// apopDigest returns the APOP digest of secret for c's greeting.
func apopDigest(c *pop3test.Conn, secret string) string {
	i, j := strings.IndexByte(c.Greeting, '<'), strings.IndexByte(c.Greeting, '>')
	require.True(c.T, i > 0 && j > i, "greeting %q carries a timestamp", c.Greeting)
	sum := md5.Sum([]byte(c.Greeting[i:j+1] + secret))
	return hex.EncodeToString(sum[:])
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// wrongLogin is one way of sending a wrong password for user; it returns
// the reply to the line that carries the credentials.
type wrongLogin func(c *pop3test.Conn, user string) string

var wrongLogins = []struct {
	name string
	try  wrongLogin
}{
	{"USER/PASS", func(c *pop3test.Conn, user string) string {
		c.Cmd("USER " + user)
		return c.Cmd("PASS wrong")
	}},
	{"AUTH PLAIN", func(c *pop3test.Conn, user string) string {
		return c.Cmd("AUTH PLAIN " + b64("\x00"+user+"\x00wrong"))
	}},
	{"AUTH LOGIN", func(c *pop3test.Conn, user string) string {
		// An attempt that finds no turn is refused at AUTH, before the
		// client hands over the password.
		if r := c.Cmd("AUTH LOGIN " + b64(user)); strings.HasPrefix(r, "-ERR") {
			return r
		}
		return c.Cmd(b64("wrong"))
	}},
	{"APOP", func(c *pop3test.Conn, user string) string {
		return c.Cmd("APOP " + user + " " + apopDigest(c, "wrong"))
	}},
}

// TestFailedLoginCap: after MaxAuthFailures failed logins a connection is
// answered with a closing -ERR and closed, whatever the mechanism. Before,
// one connection took 50 wrong passwords without being closed.
func TestFailedLoginCap(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int // 0: the default, 3
	}{
		{name: "default"},
		{name: "one", max: 1},
		{name: "five", max: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "rfc1939", func(c *server.Config) {
				if tc.max > 0 {
					c.MaxAuthFailures = tc.max
				}
			})
			max := tc.max
			if max == 0 {
				max = 3
				assert.Equal(t, 3, server.DefaultConfig().MaxAuthFailures)
			}
			for _, m := range wrongLogins {
				c := e.dial()
				want := replyLogin
				if m.name == "APOP" {
					want = replyAPOP
				}
				for i := 1; i < max; i++ {
					assert.Equal(t, want, m.try(c, "alice"), "%s: failure %d of %d", m.name, i, max)
				}
				assert.Equal(t, replyClosed, m.try(c, "alice"), "%s: failure %d closes", m.name, max)
				assert.True(t, c.Closed(), "%s: the connection is closed after %d failures", m.name, max)
			}
			// A mix of mechanisms counts toward the same cap.
			c := e.dial()
			for i := 1; i < max; i++ {
				require.True(t, strings.HasPrefix(wrongLogins[i%len(wrongLogins)].try(c, "nobody"), "-ERR [AUTH]"))
			}
			assert.Equal(t, replyClosed, wrongLogins[0].try(c, "nobody"))
			assert.True(t, c.Closed())
			// A connection below the cap still logs in.
			if max > 1 {
				c = e.dial()
				assert.Equal(t, replyLogin, wrongLogins[0].try(c, "alice"))
				c.Cmd("USER alice")
				assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("PASS secret"))
			}
		})
	}
}

// timeReply runs a wrong login on c and returns how long after the last
// line was sent (the one carrying the credentials) its reply came.
func timeReply(c *pop3test.Conn, m wrongLogin, user string) (time.Duration, string) {
	var start time.Time
	tc := *c
	tc.C = markConn{Conn: c.C, mark: func() { start = time.Now() }}
	r := m(&tc, user)
	d := time.Since(start)
	// Close at once: the tests open many, and MaxPreauthPerIP counts the
	// ones not logged in.
	_ = c.C.Close()
	return d, r
}

// markConn calls mark before each write.
type markConn struct {
	net.Conn
	mark func()
}

func (m markConn) Write(p []byte) (int, error) { m.mark(); return m.Conn.Write(p) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestFailureTimingHidesUsers: a wrong password is answered FailDelay
// after the command arrived, whether the user does not exist, has a
// BLF-CRYPT hash or an ARGON2ID one — for USER/PASS, AUTH PLAIN, AUTH
// LOGIN and APOP. Before, the reply came FailDelay after the verification
// ended, so the hash's cost showed (2003.6 ms for an unknown user against
// 2079.8 ms for BLF-CRYPT with the default 2 s).
func TestFailureTimingHidesUsers(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector argon2 and bcrypt take longer than the 400 ms delay, which is then no longer what the replies wait for")
	}
	if testing.Short() {
		t.Skip("17 s of timed logins; -short leaves it to the plain run")
	}
	// The claim holds while the delay exceeds the dearest verification.
	// On a loaded machine (the whole suite runs packages in parallel) an
	// argon2 check can take longer than 400 ms, so the delay is three
	// times the dearest check measured here and now, and at least 400 ms.
	delay := 400 * time.Millisecond
	field := strings.SplitN(strings.Split(passwdFile(t), "\ndave:")[1], ":", 2)[0]
	dave, err := account.ParseAccount("dave:" + field)
	require.NoError(t, err)
	for range 3 {
		start := time.Now()
		dave.Verify([]byte("wrong"))
		delay = max(delay, 3*time.Since(start))
	}
	t.Logf("delay %v", delay.Round(time.Millisecond))
	e := newEnv(t, "rfc1939", func(c *server.Config) {
		c.FailDelay = server.Duration(delay)
		c.Penalties = false // the penalty schedule is TestPenalties'
	})
	kinds := []string{"nobody", "carol", "dave"} // unknown, BLF-CRYPT, ARGON2ID
	for _, m := range wrongLogins {
		t.Run(m.name, func(t *testing.T) {
			tries := 3
			if m.name == "USER/PASS" {
				tries = 5
			}
			times := map[string][]time.Duration{}
			for range tries {
				for _, user := range kinds { // interleaved, so load hits all alike
					c := e.dial()
					d, r := timeReply(c, m.try, user)
					require.True(t, strings.HasPrefix(r, "-ERR [AUTH]"), r)
					times[user] = append(times[user], d)
				}
			}
			var medians []time.Duration
			for _, user := range kinds {
				md := median(times[user])
				t.Logf("%s %s: median %v of %v", m.name, user, md.Round(100*time.Microsecond), times[user])
				assert.GreaterOrEqual(t, md, delay, "%s: never sooner than the delay", user)
				medians = append(medians, md)
			}
			spread := slices.Max(medians) - slices.Min(medians)
			t.Logf("%s: spread of medians %v", m.name, spread.Round(100*time.Microsecond))
			assert.Less(t, spread, 60*time.Millisecond, "medians %v differ: the reply time tells the user's hash", medians)
		})
	}
}

// TestPenalties: with penalties on, failures from one address make the
// next attempt from it wait longer for its check — FailDelay doubled per
// recent failure, capped at PenaltyMax (the defaults give Dovecot's 2, 4,
// 8, 15 s; here 100, 200, 400, 750 ms) — and a failure is answered
// FailDelay after its check's turn: 100, 200, 300, 500, 850 ms after
// arrival for the 1st to 5th failure in a row, whether or not the user
// exists; a successful login forgives one of its address's failures. Failures for
// one user name from any address lengthen only the replies to wrong
// passwords for that name (100, 100, 200, 400, 750 ms), never the check:
// the owner's right password from a clean address is answered at once.
// Before, 300 connections from one address made 1,501 guesses in 10 s.
func TestPenalties(t *testing.T) {
	const unit = 100 * time.Millisecond
	schedule := []time.Duration{unit, 2 * unit, 3 * unit, 5 * unit, 850 * time.Millisecond}
	e := newEnv(t, "exchange2010", func(c *server.Config) {
		c.FailDelay = server.Duration(unit)
		c.PenaltyMax = server.Duration(750 * time.Millisecond)
	})
	pass := wrongLogins[0].try
	// check asserts one failure's reply time against the schedule: never
	// sooner, and not much later (the machine may be busy).
	check := func(what string, d, want time.Duration) {
		t.Helper()
		t.Logf("%s: %v (schedule %v)", what, d.Round(time.Millisecond), want)
		assert.GreaterOrEqual(t, d, want, what)
		assert.Less(t, d, want+150*time.Millisecond, what)
	}

	t.Run("address", func(t *testing.T) {
		// A new connection and a new user name each time: only the
		// address is common.
		for i, want := range schedule {
			d, r := timeReply(e.dialFrom("127.0.0.2"), pass, fmt.Sprintf("guess%d", i))
			require.Equal(t, replyLogin, r)
			check(fmt.Sprintf("failure %d from 127.0.0.2", i+1), d, want)
		}
		// Another address is not affected.
		d, _ := timeReply(e.dialFrom("127.0.0.3"), pass, "guess-elsewhere")
		check("first failure from 127.0.0.3", d, unit)
		// A penalised address waits before a success too, then the
		// success forgives one failure: the next failure is answered as
		// the 5th was, not as a first.
		c := e.dialFrom("127.0.0.2")
		c.Cmd("USER alice")
		start := time.Now()
		assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("PASS secret"))
		ok := time.Since(start)
		t.Logf("success from the penalised address: %v", ok.Round(time.Millisecond))
		assert.GreaterOrEqual(t, ok, 750*time.Millisecond, "a penalised address learns of a success no sooner than of a failure")
		c.Cmd("QUIT")
		d, _ = timeReply(e.dialFrom("127.0.0.2"), pass, "guess-after-success")
		check("failure after a success from 127.0.0.2", d, schedule[4])
	})

	t.Run("user", func(t *testing.T) {
		// The same user name from a new address each time: only the name
		// is common. An existing user and an unknown one alike.
		// erin's PLAIN secret verifies at once, so a slow machine (or the
		// race detector, under which bcrypt takes over a second) cannot
		// push a verification past the schedule.
		userSchedule := []time.Duration{unit, unit, 2 * unit, 4 * unit, 750 * time.Millisecond}
		for _, user := range []string{"erin", "mallory"} {
			for i, want := range userSchedule {
				addr := fmt.Sprintf("127.0.%d.%d", len(user), 10+i)
				d, r := timeReply(e.dialFrom(addr), pass, user)
				require.Equal(t, replyLogin, r)
				check(fmt.Sprintf("failure %d for %s from %s", i+1, user, addr), d, want)
			}
		}
		// erin's name is at the top of its schedule; erin herself, from
		// a clean address, is not kept waiting for it.
		c := e.dialFrom("127.0.4.99")
		c.Cmd("USER erin")
		start := time.Now()
		assert.True(t, strings.HasPrefix(c.Cmd("PASS "+erinPassword), "+OK maildrop"), "the owner logs in")
		took := time.Since(start)
		t.Logf("erin's right password after five guesses at her name: %v", took.Round(time.Millisecond))
		assert.Less(t, took, 750*time.Millisecond, "the owner's login does not wait the name's penalty")
		c.Cmd("QUIT")
	})
}

// TestPenaltyDefaults: the production schedule is Dovecot's 2, 4, 8, 15 s.
func TestPenaltyDefaults(t *testing.T) {
	c := server.DefaultConfig()
	assert.True(t, c.Penalties)
	assert.Equal(t, server.Duration(2*time.Second), c.FailDelay)
	assert.Equal(t, server.Duration(15*time.Second), c.PenaltyMax)
	assert.Equal(t, runtime.NumCPU(), c.AuthWorkers)
	assert.GreaterOrEqual(t, int64(c.AuthMemory), int64(65<<20), "at least one ARGON2ID verification")
}

// heapPeak samples the heap's objects every 2 ms until stop is closed
// and returns the most seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestLoginStormMemory: 40 concurrent wrong passwords for an ARGON2ID
// user (64 MiB a verification) with AuthMemory set to two verifications'
// worth: the pool never charges more than the cap, and the heap stays
// under the cap plus 64 MiB. Before, the same storm took RSS from 8.8 MB
// to 2.6 GB.
func TestLoginStormMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector 40 argon2 verifications take minutes; the plain run measures the heap")
	}
	const storm = 40
	field := strings.SplitN(strings.Split(passwdFile(t), "\ndave:")[1], ":", 2)[0]
	cost, err := server.AccountCost(field)
	require.NoError(t, err)
	require.Equal(t, int64(65<<20), cost, "RFC 9106 low memory: m = 64 MiB, plus 1 MiB")
	limit := 2 * cost
	e := newEnv(t, "exchange2010", func(c *server.Config) {
		c.AuthMemory = server.Bytes(limit)
		c.AuthWorkers = storm // memory, not CPUs, is the bound under test
		c.AuthQueueTimeout = server.Duration(2 * time.Minute)
		c.MaxPreauthPerIP = storm
	})
	runtime.GC()
	var base [1]metrics.Sample
	base[0].Name = "/memory/classes/heap/objects:bytes"
	metrics.Read(base[:])
	stop := make(chan struct{})
	peakc := heapPeak(stop)

	var wg sync.WaitGroup
	var refused, other atomic.Int64
	start := time.Now()
	for range storm {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.dial()
			// Forty verifications two at a time: on a loaded machine the
			// last ones wait longer than the harness's 30 s read deadline.
			_ = c.C.SetDeadline(time.Now().Add(3 * time.Minute))
			c.Cmd("USER dave")
			switch r := c.Cmd("PASS wrong"); r {
			case replyLogin:
				refused.Add(1)
			default:
				other.Add(1)
				t.Errorf("reply %q", r)
			}
		}()
	}
	wg.Wait()
	close(stop)
	heap := <-peakc
	took := time.Since(start)
	charged, capacity := e.srv.AuthPoolPeak()
	t.Logf("%d logins in %v: pool peak %d MiB of %d MiB; heap %d MiB at start, peak %d MiB",
		storm, took.Round(time.Millisecond), charged>>20, capacity>>20, base[0].Value.Uint64()>>20, heap>>20)
	assert.Equal(t, int64(storm), refused.Load(), "every wrong password verified and refused")
	assert.Equal(t, limit, capacity)
	assert.LessOrEqual(t, charged, limit, "charged memory within the cap")
	assert.Equal(t, limit, charged, "two verifications ran at once: the cap, not something else, was the bound")
	assert.Less(t, heap, uint64(limit+64<<20), "heap peak within the cap plus 64 MiB")
}

// TestAuthQueueTimeout: a login that waits longer than AuthQueueTimeout
// for a verification slot is answered -ERR [SYS/TEMP] and counts as a
// failed login.
func TestAuthQueueTimeout(t *testing.T) {
	e := newEnv(t, "exchange2010", func(c *server.Config) {
		c.AuthWorkers = 1
		c.AuthQueueTimeout = server.Duration(time.Millisecond)
		c.MaxAuthFailures = 1
	})
	const n = 8
	replies := make(chan string, 2*n) // a reply and whether closed, each
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.dial()
			c.Cmd("USER dave")
			replies <- c.Cmd("PASS wrong")
			replies <- fmt.Sprint(c.Closed())
		}()
	}
	wg.Wait()
	close(replies)
	counts := map[string]int{}
	for r := range replies {
		counts[r]++
	}
	t.Logf("replies: %v", counts)
	assert.Equal(t, n, counts["true"], "each failure (the queue's too) reached MaxAuthFailures=1 and closed")
	assert.Positive(t, counts[replyClosed], "some were verified")
	assert.Positive(t, counts[replyQueue], "with one worker and a 1 ms wait, some found no slot")
	assert.Equal(t, n, counts[replyClosed]+counts[replyQueue])
}

// passwdPath is the path of the env's passwd-file.
func (e *env) passwdPath() string { return filepath.Join(e.dir, "passwd") }

// TestPasswdReloadSkipsBadLines: a passwd-file changed to remove a user
// and, at the same time, to hold a malformed line is reloaded without
// that line: the removed user stops working, the others go on. Before,
// the whole reload was refused and the removed user kept working.
func TestPasswdReloadSkipsBadLines(t *testing.T) {
	e := newEnv(t, "exchange2010")
	e.login("bob", "hunter2").Cmd("QUIT")
	var kept []string
	for _, l := range strings.Split(passwdFile(t), "\n") {
		if !strings.HasPrefix(l, "bob:") {
			kept = append(kept, l)
		}
	}
	text := strings.Join(kept, "\n") + "this line has no colon\nzed:{NOSUCH}x\n"
	require.NoError(t, os.WriteFile(e.passwdPath(), []byte(text), 0o600))
	time.Sleep(1100 * time.Millisecond) // the reload looks once a second
	c := e.dial()
	c.Cmd("USER bob")
	assert.Equal(t, replyLogin, c.Cmd("PASS hunter2"), "bob was removed")
	e.login("alice", "secret").Cmd("QUIT")
	e.login("carol", "correct horse").Cmd("QUIT")
}

// TestPasswdReloadSameSizeMtimeRestored: a same-size change with the
// modification time put back (cp -p, rsync -t) is noticed by its change
// time. Before, it was never picked up.
func TestPasswdReloadSameSizeMtimeRestored(t *testing.T) {
	e := newEnv(t, "exchange2010")
	e.login("alice", "secret").Cmd("QUIT")
	st, err := os.Stat(e.passwdPath())
	require.NoError(t, err)
	// Past the window in which the content is compared anyway, so that
	// only the stamp can tell.
	time.Sleep(2100 * time.Millisecond)
	text := strings.Replace(passwdFile(t), "alice:{PLAIN}secret:", "alice:{PLAIN}secreT:", 1)
	require.Len(t, text, len(passwdFile(t)))
	require.NoError(t, os.WriteFile(e.passwdPath(), []byte(text), 0o600))
	require.NoError(t, os.Chtimes(e.passwdPath(), st.ModTime(), st.ModTime()))
	st2, err := os.Stat(e.passwdPath())
	require.NoError(t, err)
	require.Equal(t, st.Size(), st2.Size())
	require.True(t, st.ModTime().Equal(st2.ModTime()))
	time.Sleep(1100 * time.Millisecond)
	c := e.dial()
	c.Cmd("USER alice")
	assert.Equal(t, replyLogin, c.Cmd("PASS secret"), "the old password no longer works")
	e.login("alice", "secreT").Cmd("QUIT")
}

// TestBruteForceOneAddress: guessing from one address in parallel gets
// one guess checked per penalty, after the first wave (the attempts that
// arrive before any failure is recorded). Here the schedule is 100, 200,
// 400, 750 ms and 10 connections guess for 3 s; without penalties they
// make one guess per 100 ms each. Guesses are counted where they are
// checked, in the server: an attempt left without a turn is answered -ERR
// [SYS/TEMP], unchecked, never as a wrong password. Before, 300 connections from one address made
// 1,501 guesses in 10 s; and before turns were booked, each connection
// here had a guess checked per penalty (233 in 3 s).
func TestBruteForceOneAddress(t *testing.T) {
	const (
		unit     = 100 * time.Millisecond
		most     = 750 * time.Millisecond
		parallel = 10
		window   = 3 * time.Second
	)
	guesses := func(penalties bool, from string) int64 {
		e := newEnv(t, "exchange2010", func(c *server.Config) {
			c.FailDelay, c.PenaltyMax, c.Penalties = server.Duration(unit), server.Duration(most), penalties
			// Room for connections the client closed and the server has
			// not yet seen end.
			c.MaxPreauthPerIP = 2 * parallel
		})
		before := e.srv.AuthVerified()
		checked := make(chan int64, 1)
		time.AfterFunc(window, func() { checked <- e.srv.AuthVerified() - before })
		deadline := time.Now().Add(window)
		var wg sync.WaitGroup
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					c := e.dialFrom(from)
					c.Cmd("USER alice")
					r := c.Cmd(fmt.Sprintf("PASS guess%d", i))
					_ = c.C.Close()
					assert.True(t, strings.HasPrefix(r, "-ERR [AUTH]") || r == replyPenaltyBusy, r)
				}
			}()
		}
		wg.Wait()
		return <-checked
	}
	free := guesses(false, "127.0.9.1")
	slowed := guesses(true, "127.0.9.2")
	// The first wave is checked at once; then the address has a turn
	// per 750 ms.
	bound := int64(parallel + int(window/most) + 2)
	t.Logf("guesses in %v from one address with %d connections: %d without penalties, %d with (bound %d)", window, parallel, free, slowed, bound)
	assert.LessOrEqual(t, slowed, bound)
	assert.Less(t, slowed*3, free, "penalties cut the rate to well under a third")
}

// TestBruteForceEveryMechanism: the address's schedule of one check per
// penalty holds for every way of logging in, not just USER/PASS: APOP,
// AUTH PLAIN, AUTH LOGIN and an OAUTHBEARER token that names no user, and
// with the guesser's own logins in between. A
// checked guess is answered -ERR [AUTH], one left without a turn -ERR
// [SYS/TEMP]; only the former count. Before, APOP and a nameless token
// were checked after waiting out a refused turn, every connection a check
// each two PenaltyMax (about 30 in 3 s here against a bound of 16).
func TestBruteForceEveryMechanism(t *testing.T) {
	const (
		unit     = 100 * time.Millisecond
		most     = 750 * time.Millisecond
		parallel = 10
		window   = 3 * time.Second
	)
	is := newIssuer(t)
	badToken := is.token(claims{}, "RS256", true)
	mechanisms := append(wrongLogins[1:len(wrongLogins):len(wrongLogins)], struct {
		name string
		try  wrongLogin
	}{"OAUTHBEARER", func(c *pop3test.Conn, _ string) string {
		r := c.Cmd("AUTH OAUTHBEARER " + b64("n,,\x01auth=Bearer "+badToken+"\x01\x01"))
		if strings.HasPrefix(r, "+ ") {
			return c.Cmd(b64("\x01"))
		}
		return r
	}})
	// The last case guesses while the guesser's own account (bob) logs in
	// from the same address between bursts: a success forgives one
	// failure, never the address's whole record. Before, each success
	// wiped it and the next burst was checked at once (20 checked here).
	mechanisms = append(mechanisms, struct {
		name string
		try  wrongLogin
	}{"USER/PASS with logins", wrongLogins[0].try})
	for _, m := range mechanisms {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, "rfc1939", is.config, func(c *server.Config) {
				c.FailDelay, c.PenaltyMax = server.Duration(unit), server.Duration(most)
				c.MaxPreauthPerIP = 2 * parallel
			})
			var checked, busy atomic.Int64
			deadline := time.Now().Add(window)
			var wg sync.WaitGroup
			guess := func() bool {
				c := e.dialFrom("127.0.9.3")
				r := m.try(c, "alice")
				_ = c.C.Close()
				switch {
				case strings.HasPrefix(r, "-ERR [AUTH]"):
					if time.Now().Before(deadline) {
						checked.Add(1)
					}
				case r == replyPenaltyBusy:
					busy.Add(1)
				default:
					t.Errorf("%s: %q", m.name, r)
					return false
				}
				return true
			}
			if strings.HasSuffix(m.name, "with logins") {
				// Rounds: a burst of guesses, then the guesser's own login.
				for time.Now().Before(deadline) {
					for range parallel {
						wg.Go(func() { guess() })
					}
					wg.Wait()
					c := e.dialFrom("127.0.9.3")
					c.Cmd("USER bob")
					if r := c.Cmd("PASS hunter2"); strings.HasPrefix(r, "+OK") {
						c.Cmd("QUIT")
					}
					_ = c.C.Close()
				}
			}
			for range parallel {
				if strings.HasSuffix(m.name, "with logins") {
					break
				}
				wg.Go(func() {
					for time.Now().Before(deadline) && guess() {
					}
				})
			}
			wg.Wait()
			bound := int64(parallel + int(window/most) + 2)
			t.Logf("%s: %d guesses checked in %v from one address with %d connections, %d told to wait (bound %d)",
				m.name, checked.Load(), window, parallel, busy.Load(), bound)
			assert.LessOrEqual(t, checked.Load(), bound)
			assert.Positive(t, busy.Load(), "some attempts found no turn")
		})
	}
}

// TestBusyIsUnchecked: an attempt left without a turn by its address's
// penalty is answered -ERR [SYS/TEMP] even with the right credentials,
// whatever the mechanism: nothing was checked, so nothing is granted (or
// a guesser would get one free check per refused turn). Here two
// failures give the address a 200 ms penalty and a 400 ms limit, so of 5
// attempts arriving at once 2 are booked and 3 are told to wait. Before,
// APOP and a token naming no user were checked anyway and let in.
func TestBusyIsUnchecked(t *testing.T) {
	is := newIssuer(t)
	good := is.token(claims{}, "RS256", false)
	rightLogins := map[string]func(c *pop3test.Conn) string{
		"USER/PASS": func(c *pop3test.Conn) string { c.Cmd("USER alice"); return c.Cmd("PASS secret") },
		"APOP":      func(c *pop3test.Conn) string { return c.Cmd("APOP alice " + apopDigest(c, "secret")) },
		"OAUTHBEARER": func(c *pop3test.Conn) string {
			return c.Cmd("AUTH OAUTHBEARER " + b64("n,,\x01auth=Bearer "+good+"\x01\x01"))
		},
	}
	for name, try := range rightLogins {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, "rfc1939", is.config, func(c *server.Config) {
				c.FailDelay, c.PenaltyMax = server.Duration(100*time.Millisecond), server.Duration(200*time.Millisecond)
			})
			const from = "127.0.9.4"
			c := e.dialFrom(from)
			for range 2 {
				c.Cmd("USER alice")
				require.Equal(t, replyLogin, c.Cmd("PASS wrong"))
			}
			_ = c.C.Close()
			replies := make([]string, 5)
			var wg sync.WaitGroup
			for i := range replies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := e.dialFrom(from)
					defer c.C.Close()
					replies[i] = try(c)
					if strings.HasPrefix(replies[i], "+OK") {
						c.Cmd("QUIT")
					}
				}()
			}
			wg.Wait()
			busy := 0
			for _, r := range replies {
				switch {
				case r == replyPenaltyBusy:
					busy++
				case strings.HasPrefix(r, "+OK"), strings.HasPrefix(r, "-ERR [IN-USE]"):
				default:
					t.Errorf("%s: %q", name, r)
				}
			}
			assert.Equal(t, 3, busy, "%s: %q", name, replies)
		})
	}
}

// TestGuessingSparesTheOwner: many connections from several addresses
// guessing one user's password at once do not delay or refuse the owner
// coming from a clean address: a user name's failures lengthen only the
// replies to wrong passwords for it. The guessers are slowed by their own
// addresses' penalties, each a schedule of one check per penalty (after
// each address's first wave), and any attempt left without a turn is
// answered [SYS/TEMP], never as a wrong password. Here 4 addresses × 10
// connections guess erin's password for 3 s on a 100–400 ms schedule
// while erin logs in from a fifth address again and again. Before, a turn
// was booked per user name: the owner queued behind the guessers and,
// once the name's turns were more than two PenaltyMax away, was answered
// "invalid user name or password" with the right password (15 of 15
// with the defaults, 20 guessing connections from 2 addresses).
func TestGuessingSparesTheOwner(t *testing.T) {
	const (
		unit   = 100 * time.Millisecond
		most   = 400 * time.Millisecond
		addrs  = 4
		conns  = 10
		window = 3 * time.Second
	)
	e := newEnv(t, "exchange2010", func(c *server.Config) {
		c.FailDelay, c.PenaltyMax = server.Duration(unit), server.Duration(most)
		c.MaxPreauthPerIP = 2 * conns // room for closed connections not yet seen to end
	})
	// erin's name reaches the cap: 100, 100, 200, 400 ms.
	for i := range 4 {
		_, r := timeReply(e.dialFrom(fmt.Sprintf("127.0.30.%d", i+1)), wrongLogins[0].try, "erin")
		require.Equal(t, replyLogin, r)
	}
	before := e.srv.AuthVerified()
	var replies, other atomic.Int64
	atDeadline := make(chan int64, 1)
	time.AfterFunc(window, func() { atDeadline <- e.srv.AuthVerified() })
	deadline := time.Now().Add(window)
	var wg sync.WaitGroup
	for a := range addrs {
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					c := e.dialFrom(fmt.Sprintf("127.0.31.%d", a+1))
					for open := true; open && time.Now().Before(deadline); {
						c.Cmd("USER erin")
						switch r := c.Cmd(fmt.Sprintf("PASS guess%d", i)); r {
						case replyClosed, replyPenaltyBusy:
							// The cap's last reply closes; one left
							// without a turn may be that last too.
							open = false
							replies.Add(1)
						case replyLogin:
							replies.Add(1)
						default:
							other.Add(1)
							t.Errorf("reply %q", r)
						}
					}
					_ = c.C.Close()
				}
			}()
		}
	}
	// The owner, from a clean address, while the guessing goes on.
	var owner []time.Duration
	for time.Now().Before(deadline) {
		c := e.dialFrom("127.0.32.1")
		c.Cmd("USER erin")
		start := time.Now()
		r := c.Cmd("PASS " + erinPassword)
		owner = append(owner, time.Since(start))
		assert.True(t, strings.HasPrefix(r, "+OK maildrop"), "the owner's login during the guessing: %s", r)
		c.Cmd("QUIT")
		_ = c.C.Close()
		time.Sleep(20 * time.Millisecond) // a mail client polls; it does not spin
	}
	wg.Wait()
	checked := <-atDeadline - before - int64(len(owner))
	bound := int64(addrs * (conns + int(window/unit)))
	t.Logf("%d connections from %d addresses guessing erin for %v: %d replies, %d passwords checked (bound %d); the owner logged in %d times, slowest %v",
		addrs*conns, addrs, window, replies.Load(), checked, bound, len(owner), slices.Max(owner).Round(time.Millisecond))
	assert.Zero(t, other.Load())
	assert.LessOrEqual(t, checked, bound, "each address's guesses wait for its own turns")
	assert.Positive(t, checked, "guesses are still checked")
	assert.GreaterOrEqual(t, len(owner), 3)
}

const replyPasswdDown = "-ERR [SYS/TEMP] the account list cannot be read now, try again later"

// TestPasswdUnreadableFailsClosed: once the passwd-file has changed in a
// way pop3d cannot read — removed, or replaced by something that is not a
// file — every login is refused with -ERR [SYS/TEMP], by USER/PASS, AUTH
// PLAIN, AUTH LOGIN and APOP alike, until a reload succeeds: a user the
// change may have removed never logs in on the accounts last read. Before,
// the reload failed, the log said "keeping the accounts last read", and
// every user removed from the unreadable file went on logging in.
func TestPasswdUnreadableFailsClosed(t *testing.T) {
	// Exchange's snapshot rather than rfc1939's lock, so that one login
	// follows another at once; APOP on, so that all four are tried.
	e := newEnv(t, "exchange2010", set("APOP=true"), func(c *server.Config) { c.MaxAuthFailures = 10 })
	right := []struct {
		name  string
		login func(c *pop3test.Conn) string
	}{
		{"USER/PASS", func(c *pop3test.Conn) string { c.Cmd("USER alice"); return c.Cmd("PASS secret") }},
		{"AUTH PLAIN", func(c *pop3test.Conn) string { return c.Cmd("AUTH PLAIN " + b64("\x00alice\x00secret")) }},
		{"AUTH LOGIN", func(c *pop3test.Conn) string { c.Cmd("AUTH LOGIN " + b64("alice")); return c.Cmd(b64("secret")) }},
		{"APOP", func(c *pop3test.Conn) string { return c.Cmd("APOP alice " + apopDigest(c, "secret")) }},
	}
	loginsAre := func(want string) {
		t.Helper()
		for _, m := range right {
			c := e.dial()
			r := m.login(c)
			if want == "+OK" {
				assert.True(t, strings.HasPrefix(r, "+OK maildrop"), "%s: %s", m.name, r)
			} else {
				assert.Equal(t, want, r, m.name)
			}
			c.Cmd("QUIT")
			_ = c.C.Close()
		}
	}
	loginsAre("+OK")
	for _, change := range []struct {
		name string
		do   func()
	}{
		{"removed", func() { require.NoError(t, os.Remove(e.passwdPath())) }},
		{"replaced by a directory", func() { require.NoError(t, os.Mkdir(e.passwdPath(), 0o700)) }},
	} {
		change.do()
		time.Sleep(1100 * time.Millisecond) // the reload looks once a second
		t.Logf("passwd-file %s", change.name)
		loginsAre(replyPasswdDown)
		require.NoError(t, os.RemoveAll(e.passwdPath()))
	}
	// Readable again: logins work at the next look.
	require.NoError(t, os.WriteFile(e.passwdPath(), []byte(passwdFile(t)), 0o600))
	time.Sleep(1100 * time.Millisecond)
	loginsAre("+OK")
}

// TestPenaltyTimingHidesUsers: from a penalised address, at the top of the
// schedule, a wrong password is still answered at the same time for an
// unknown user, a BLF-CRYPT user and an ARGON2ID user: FailDelay after
// the check's turn, not after the check. Before, once the penalty had
// reached PenaltyMax the check started at the reply's time, so the reply
// came after the check and showed the hash's cost (with a 1.08 s delay:
// medians 1083.7 ms for an unknown user, 1160.8 ms BLF-CRYPT, 1241.6 ms
// ARGON2ID).
func TestPenaltyTimingHidesUsers(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector argon2 and bcrypt take longer than the delay, which is then no longer what the replies wait for")
	}
	if testing.Short() {
		t.Skip("15 s of timed logins; -short leaves it to the plain run")
	}
	delay := 400 * time.Millisecond
	field := strings.SplitN(strings.Split(passwdFile(t), "\ndave:")[1], ":", 2)[0]
	dave, err := account.ParseAccount("dave:" + field)
	require.NoError(t, err)
	for range 3 {
		start := time.Now()
		dave.Verify([]byte("wrong"))
		delay = max(delay, 3*time.Since(start))
	}
	t.Logf("delay and penalty max %v", delay.Round(time.Millisecond))
	e := newEnv(t, "exchange2010", func(c *server.Config) {
		// The schedule's top from the first failure on.
		c.FailDelay, c.PenaltyMax = server.Duration(delay), server.Duration(delay)
	})
	const from = "127.0.40.1"
	_, r := timeReply(e.dialFrom(from), wrongLogins[0].try, "nobody") // the address is penalised from here on
	require.Equal(t, replyLogin, r)
	kinds := []string{"nobody", "carol", "dave"} // unknown, BLF-CRYPT, ARGON2ID
	times := map[string][]time.Duration{}
	for range 3 {
		for _, user := range kinds {
			d, r := timeReply(e.dialFrom(from), wrongLogins[0].try, user)
			require.Equal(t, replyLogin, r)
			times[user] = append(times[user], d)
		}
	}
	var medians []time.Duration
	for _, user := range kinds {
		md := median(times[user])
		t.Logf("%s: median %v of %v", user, md.Round(100*time.Microsecond), times[user])
		assert.GreaterOrEqual(t, md, 2*delay, "%s: the penalty, then the delay", user)
		medians = append(medians, md)
	}
	spread := slices.Max(medians) - slices.Min(medians)
	t.Logf("spread of medians %v", spread.Round(100*time.Microsecond))
	assert.Less(t, spread, 60*time.Millisecond, "medians %v differ: the reply time tells the user's hash", medians)
}
