package pop3

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestPenaltyDelay: the schedule is FailDelay doubled per recent failure,
// capped; with LoginPolicy's defaults Dovecot's 2, 4, 8, 15 s.
func TestPenaltyDelay(t *testing.T) {
	c := LoginPolicy{}.withDefaults()
	base, most := c.FailDelay, c.PenaltyMax
	for _, tc := range []struct {
		fails int
		want  time.Duration
	}{
		{fails: 0, want: 0},
		{fails: 1, want: 2 * time.Second},
		{fails: 2, want: 4 * time.Second},
		{fails: 3, want: 8 * time.Second},
		{fails: 4, want: 15 * time.Second},
		{fails: 5, want: 15 * time.Second},
		{fails: 64, want: 15 * time.Second},
	} {
		assert.Equal(t, tc.want, penaltyDelay(tc.fails, base, most), "after %d failures", tc.fails)
	}
	assert.Zero(t, penaltyDelay(3, 0, most), "FailDelay 0 turns penalties off")
}

// TestPenaltyTable: failures count per key, expire an hour after the last
// one, are forgiven one per success, and the table never holds more than its
// cap: the entry with the oldest failure gives way.
func TestPenaltyTable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tb := NewPenalties(3)
	tb.now = func() time.Time { return now }

	tb.Fail("a")
	tb.Fail("a")
	tb.Fail("b")
	assert.Equal(t, 2, tb.Fails("a"))
	assert.Equal(t, 1, tb.Fails("b"))
	assert.Zero(t, tb.Fails("c"))

	// Full: a new key evicts the entry whose last failure is oldest.
	now = now.Add(time.Minute)
	tb.Fail("c")
	now = now.Add(time.Minute)
	tb.Fail("a") // a is now the newest
	tb.Fail("d") // evicts b
	assert.Equal(t, 3, tb.len())
	assert.Zero(t, tb.Fails("b"), "b was oldest and gave way")
	assert.Equal(t, 3, tb.Fails("a"))

	tb.Forgive("a")
	assert.Equal(t, 2, tb.Fails("a"), "a success forgives one failure")
	tb.Forgive("a")
	tb.Forgive("a")
	assert.Zero(t, tb.Fails("a"))
	assert.Equal(t, 2, tb.len(), "the entry goes with its last failure")
	tb.Fail("a")

	// An hour after its last failure an entry is gone.
	now = now.Add(penaltyTTL - time.Minute)
	assert.Zero(t, tb.Fails("c"), "c's last failure was an hour ago")
	assert.Equal(t, 1, tb.Fails("d"))
	now = now.Add(time.Minute)
	assert.Zero(t, tb.Fails("d"))
	assert.Zero(t, tb.len())

	// A flood of keys keeps the table at its cap.
	for i := range 1000 {
		tb.Fail(fmt.Sprint("flood", i))
	}
	assert.Equal(t, 3, tb.len())

	// A nil table (penalties off) and an empty key record nothing.
	var off *Penalties
	off.Fail("x")
	assert.Zero(t, off.Fails("x"))
	tb.Fail("")
	assert.Equal(t, 3, tb.len())
}

// TestPenaltyBooking: an address with recent failures allows one check
// per penalty. Concurrent attempts book successive turns (the k-th waits
// k penalties); one that would wait more than the most is not booked;
// turns already passed do not add up; keys with no failures do not wait;
// a success forgives one failure and keeps the booked turns; the table stays within its
// cap.
func TestPenaltyBooking(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	addrs := NewPenalties(3)
	addrs.now = func() time.Time { return now }
	delay := func(fails int) time.Duration { return penaltyDelay(fails, time.Second, 4*time.Second) }
	const most = 8 * time.Second
	wait := func(addr string) (time.Duration, bool, bool) {
		turn, delayed, ok := addrs.book(addr, delay, most)
		return turn.Sub(now), delayed, ok
	}

	d, delayed, ok := wait("a")
	assert.True(t, ok)
	assert.False(t, delayed, "no failures: nothing to wait for")
	assert.Zero(t, d, "no failures: checked at once")

	for range 3 {
		addrs.Fail("a") // a's penalty: 4 s
	}
	for k := 1; k <= 2; k++ {
		d, delayed, ok = wait("a")
		assert.True(t, ok)
		assert.True(t, delayed)
		assert.Equal(t, time.Duration(k)*4*time.Second, d, "concurrent attempt %d from a", k)
	}
	_, delayed, ok = wait("a")
	assert.False(t, ok, "a third would wait 12 s, more than 8: not booked")
	assert.True(t, delayed)

	// Past turns do not add up: 10 s later a's next check is one
	// penalty away again.
	now = now.Add(10 * time.Second)
	d, _, ok = wait("a")
	assert.True(t, ok)
	assert.Equal(t, 4*time.Second, d)

	// A success forgives one of a's failures, and keeps the turns
	// booked: the next arrival waits for them and its own (shorter)
	// penalty. A guesser cannot wipe its record with one good login.
	addrs.Forgive("a")
	d, delayed, ok = wait("a")
	assert.True(t, ok)
	assert.True(t, delayed)
	assert.Equal(t, 6*time.Second, d, "after the booked turn (4 s), 2 failures' penalty (2 s)")
	// Once every failure is forgiven, the address is checked at once.
	addrs.Forgive("a")
	addrs.Forgive("a")
	d, delayed, ok = wait("a")
	assert.True(t, ok)
	assert.False(t, delayed)
	assert.Zero(t, d, "forgiven: checked at once")

	// A flood of keys keeps the cap.
	for i := range 100 {
		addrs.Fail(fmt.Sprint("flood", i))
		wait(fmt.Sprint("flood", i))
	}
	assert.Equal(t, 3, addrs.len())
}

// TestPenaltyAddressKey: penalties and the per-address limits count an
// IPv6 client by its /64 and an IPv4-mapped address as the IPv4 one; a
// connection without an IP address has no key.
func TestPenaltyAddressKey(t *testing.T) {
	key := func(ip string) string { return addrKey(&net.TCPAddr{IP: net.ParseIP(ip), Port: 1}).String() }
	assert.Equal(t, key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:1:2:3"))
	assert.NotEqual(t, key("2001:db8:1:2::1"), key("2001:db8:1:3::1"))
	assert.Equal(t, key("192.0.2.7"), key("::ffff:192.0.2.7"))
	assert.NotEqual(t, key("192.0.2.7"), key("192.0.2.8"))
	a, _ := net.Pipe()
	defer a.Close()
	assert.False(t, addrKey(a.RemoteAddr()).IsValid())
}
