package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dialFrom connects to addr from a given loopback address (Linux routes
// all of 127.0.0.0/8 to loopback), so that one test plays several
// clients, and reads the greeting.
func dialFrom(t *testing.T, local, addr string) (*pop3test.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Skipf("this system has no loopback address %s to play another client from: %v", local, err)
	}
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	c := pop3test.New(t, nc)
	if _, err := c.ReadStatus(); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// login logs user in over a new connection from local and returns PASS's
// status line and how long it took to come.
func login(t *testing.T, local, addr, user, password string) (string, time.Duration) {
	c, err := dialFrom(t, local, addr)
	if err != nil {
		return "connect: " + err.Error(), 0
	}
	defer c.C.Close()
	if r, err := c.Exchange("USER " + user); err != nil || !strings.HasPrefix(r, "+OK") {
		return fmt.Sprintf("USER: %q %v", r, err), 0
	}
	start := time.Now()
	r, err := c.Exchange("PASS " + password)
	took := time.Since(start)
	if err != nil {
		return "PASS: " + err.Error(), took
	}
	if strings.HasPrefix(r, "+OK") {
		_, _ = c.Exchange("QUIT")
	}
	return r, took
}

// p99 returns the 99th percentile of ds.
func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}

// guess keeps a connection from local guessing user's password against
// addr until stop, reconnecting when pop3d closes it, and counts the
// replies; any reply but a failure is an error.
func guess(t *testing.T, local, addr, user string, stop <-chan struct{}, n *atomic.Int64) {
	for i := 0; ; {
		c, err := dialFrom(t, local, addr)
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			t.Errorf("guesser from %s: %v", local, err)
			return
		}
		for {
			select {
			case <-stop:
				_ = c.C.Close()
				return
			default:
			}
			i++
			if _, err := c.Exchange("USER " + user); err != nil {
				break
			}
			r, err := c.Exchange(fmt.Sprintf("PASS guess%d", i))
			if err != nil {
				break
			}
			n.Add(1)
			if !strings.HasPrefix(r, "-ERR [AUTH]") && !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
				t.Errorf("a guess was answered %q", r)
			}
		}
		_ = c.C.Close()
	}
}

// TestBuiltOwnerNotLockedOut: the built pop3d, 20 connections guessing
// alice's password from two addresses, and alice logging in from a third
// with her right password 15 times meanwhile: all 15 succeed, none waits
// for the guessers' penalties. (The schedule is shortened to 200 ms–1 s
// so the test takes seconds; with the defaults the same happens at 2–15 s.)
// Before, the penalty booked turns per user name and refused a login
// whose turn was more than two penalty maxima away with "-ERR [AUTH]
// invalid user name or password": the owner failed 15 of 15 times.
func TestBuiltOwnerNotLockedOut(t *testing.T) {
	s := newSite(t)
	s.addUser("alice", "right", "Subject: hello\r\n\r\nhi\r\n")
	srv := s.serve("--trusted-networks", "127.0.0.0/8", "--fail-delay", "200ms", "--penalty-max", "1s",
		"--max-preauth-per-ip", "40")
	addr := srv.addrs[0]

	stop := make(chan struct{})
	var guesses atomic.Int64
	var wg sync.WaitGroup
	for _, from := range []string{"127.0.60.1", "127.0.60.2"} {
		for range 10 {
			wg.Add(1)
			go func() { defer wg.Done(); guess(t, from, addr, "alice", stop, &guesses) }()
		}
	}
	time.Sleep(2 * time.Second) // the name's penalty reaches its top
	var took []time.Duration
	ok := 0
	for range 15 {
		r, d := login(t, "127.0.60.3", addr, "alice", "right")
		took = append(took, d)
		if assert.True(t, strings.HasPrefix(r, "+OK maildrop has 1 message"), "the owner's login: %q", r) {
			ok++
		}
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("owner's logins during %d guesses from 20 connections on 2 addresses: %d/15 succeeded, PASS latency p99 %v, max %v",
		guesses.Load(), ok, p99(took).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond))
	assert.Positive(t, guesses.Load(), "the guessers ran")
	assert.Regexp(t, `msg="login failed" remote=127\.0\.60\.[12]:\d+ user=alice`, srv.log.String(), "the guesses were checked and logged")
}

// TestBuiltNATAfterMistakes: behind one address (an office's NAT) a user
// mistyped three times; then 200 users log in at once from that address
// with their right passwords. None is answered as a wrong password: the
// address's penalty delays the first attempts, those that would wait past
// its limit are answered -ERR [SYS/TEMP] unchecked, and each success
// forgives one of the address's failures, so every user who tries again
// (as a mail client does at its next poll) gets in, the first retries
// after at most one short penalty. A success does not let the queued
// attempts through early, nor wipe the address's record: otherwise one
// good login would wave a guesser's queue past its penalty. Before the
// penalty redesign, 185 of 200 were answered "invalid user name or
// password".
func TestBuiltNATAfterMistakes(t *testing.T) {
	const users = 200
	s := newSite(t)
	for i := range users {
		s.addUser(fmt.Sprintf("u%d", i), fmt.Sprintf("pw%d", i))
	}
	srv := s.serve("--trusted-networks", "127.0.0.0/8", "--fail-delay", "200ms", "--penalty-max", "1s",
		"--max-preauth-per-ip", "256", "--max-auth-failures", "10")
	addr := srv.addrs[0]
	const office = "127.0.61.1"

	c, err := dialFrom(t, office, addr)
	require.NoError(t, err)
	for range 3 {
		c.OK("USER u0")
		require.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd("PASS typo"))
	}
	_ = c.C.Close()

	replies := make([]string, users)
	took := make([]time.Duration, users)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i], took[i] = login(t, office, addr, fmt.Sprintf("u%d", i), fmt.Sprintf("pw%d", i))
		}()
	}
	wg.Wait()
	ok, busy := 0, 0
	for i, r := range replies {
		switch {
		case strings.HasPrefix(r, "+OK maildrop"):
			ok++
		case strings.HasPrefix(r, "-ERR [SYS/TEMP]"):
			busy++
			// The retry: the address was cleared by the first success.
			again, _ := login(t, office, addr, fmt.Sprintf("u%d", i), fmt.Sprintf("pw%d", i))
			assert.True(t, strings.HasPrefix(again, "+OK maildrop"), "u%d again: %q", i, again)
		default:
			t.Errorf("u%d with the right password: %q", i, r)
		}
	}
	t.Logf("after 3 mistakes, %d concurrent logins from one address: %d succeeded, %d told to try later (all got in on retry); PASS latency p99 %v",
		users, ok, busy, p99(took).Round(time.Millisecond))
	assert.Positive(t, ok, "the booked turns are checked")
	assert.Equal(t, users, ok+busy)
}
