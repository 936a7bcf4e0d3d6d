package server

import (
	"fmt"
	"github.com/pop3kit/pop3kit/pop3"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPenaltyDelay: the schedule is FailDelay doubled per recent failure,
// capped; with the defaults Dovecot's 2, 4, 8, 15 s.
func TestPenaltyDelay(t *testing.T) {
	c := DefaultConfig()
	base, most := time.Duration(c.FailDelay), time.Duration(c.PenaltyMax)
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
	tb := newPenalties(3)
	tb.now = func() time.Time { return now }

	tb.fail("a")
	tb.fail("a")
	tb.fail("b")
	assert.Equal(t, 2, tb.fails("a"))
	assert.Equal(t, 1, tb.fails("b"))
	assert.Zero(t, tb.fails("c"))

	// Full: a new key evicts the entry whose last failure is oldest.
	now = now.Add(time.Minute)
	tb.fail("c")
	now = now.Add(time.Minute)
	tb.fail("a") // a is now the newest
	tb.fail("d") // evicts b
	assert.Equal(t, 3, tb.len())
	assert.Zero(t, tb.fails("b"), "b was oldest and gave way")
	assert.Equal(t, 3, tb.fails("a"))

	tb.forgive("a")
	assert.Equal(t, 2, tb.fails("a"), "a success forgives one failure")
	tb.forgive("a")
	tb.forgive("a")
	assert.Zero(t, tb.fails("a"))
	assert.Equal(t, 2, tb.len(), "the entry goes with its last failure")
	tb.fail("a")

	// An hour after its last failure an entry is gone.
	now = now.Add(penaltyTTL - time.Minute)
	assert.Zero(t, tb.fails("c"), "c's last failure was an hour ago")
	assert.Equal(t, 1, tb.fails("d"))
	now = now.Add(time.Minute)
	assert.Zero(t, tb.fails("d"))
	assert.Zero(t, tb.len())

	// A flood of keys keeps the table at its cap.
	for i := range 1000 {
		tb.fail(fmt.Sprint("flood", i))
	}
	assert.Equal(t, 3, tb.len())

	// A nil table (penalties off) and an empty key record nothing.
	var off *penalties
	off.fail("x")
	assert.Zero(t, off.fails("x"))
	tb.fail("")
	assert.Equal(t, 3, tb.len())
}

// TestPenaltyAddressKey: IPv6 addresses in one /64 share a penalty;
// IPv4-mapped addresses count as IPv4; net.Pipe has none.
func TestPenaltyAddressKey(t *testing.T) {
	key := func(ip string) string {
		h := &session{addr: pop3.AddrKey(&net.TCPAddr{IP: net.ParseIP(ip), Port: 1})}
		return h.arrive().addr
	}
	assert.Equal(t, key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:1:2:3"))
	assert.NotEqual(t, key("2001:db8:1:2::1"), key("2001:db8:1:3::1"))
	assert.Equal(t, key("192.0.2.7"), key("::ffff:192.0.2.7"))
	assert.NotEqual(t, key("192.0.2.7"), key("192.0.2.8"))
	a, _ := net.Pipe()
	defer a.Close()
	h := &session{addr: pop3.AddrKey(a.RemoteAddr())}
	assert.Empty(t, h.arrive().addr)
}

// TestBytes: sizes read with and without units; bad ones are refused.
func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Bytes
		bad  bool
	}{
		{in: "268435456", want: 256 << 20},
		{in: "256MiB", want: 256 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "500MB", want: 500e6},
		{in: "64 KiB", want: 64 << 10},
		{in: "12XB", bad: true},
		{in: "-1", bad: true},
		{in: "", bad: true},
		{in: "99999999999TiB", bad: true},
	} {
		var b Bytes
		err := b.UnmarshalText([]byte(tc.in))
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, b, tc.in)
	}
	assert.Equal(t, "256MiB", Bytes(256<<20).String())
}

// TestAuthConfigCheck: each setting's range check names the bad value.
func TestAuthConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{set: func(c *Config) { c.AuthWorkers = 0 }, want: "auth workers 0"},
		{set: func(c *Config) { c.AuthWorkers = 5000 }, want: "auth workers 5000"},
		{set: func(c *Config) { c.AuthMemory = 1 << 20 }, want: "auth memory 1MiB"},
		{set: func(c *Config) { c.AuthQueueTimeout = 0 }, want: "auth queue timeout 0s"},
		{set: func(c *Config) { c.MaxAuthFailures = 0 }, want: "max auth failures 0"},
		{set: func(c *Config) { c.PenaltyMax = Duration(-time.Second) }, want: "penalty max -1s"},
		{set: func(c *Config) { c.PenaltyEntries = 0 }, want: "penalty entries 0"},
	} {
		c := DefaultConfig()
		tc.set(&c)
		err := c.checkAuth()
		if assert.Error(t, err, tc.want) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
	c := DefaultConfig()
	assert.NoError(t, c.checkAuth())
	c.Penalties, c.PenaltyEntries = false, 0
	assert.NoError(t, c.checkAuth(), "the table's size does not matter when penalties are off")
}

// TestArgon2Cost: an argon2 verification is charged its m.
func TestArgon2Cost(t *testing.T) {
	c, ok := argon2Cost("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$a2V5")
	assert.True(t, ok)
	assert.Equal(t, int64(64<<20+smallHashCost), c)
	_, ok = argon2Cost("$argon2id$v=19$t=3,p=4$c2FsdA$a2V5")
	assert.False(t, ok)
	f, err := HashPassword("BLF-CRYPT", "pw")
	require.NoError(t, err)
	a, err := ParseAccount("u:" + f)
	require.NoError(t, err)
	assert.Equal(t, int64(smallHashCost), a.cost)
	assert.True(t, strings.HasPrefix(f, "{BLF-CRYPT}"))
}

// TestPenaltyBooking: an address with recent failures allows one check
// per penalty. Concurrent attempts book successive turns (the k-th waits
// k penalties); one that would wait more than the most is not booked;
// turns already passed do not add up; keys with no failures do not wait;
// a success forgives one failure and keeps the booked turns; the table stays within its
// cap.
func TestPenaltyBooking(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	addrs := newPenalties(3)
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
		addrs.fail("a") // a's penalty: 4 s
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
	addrs.forgive("a")
	d, delayed, ok = wait("a")
	assert.True(t, ok)
	assert.True(t, delayed)
	assert.Equal(t, 6*time.Second, d, "after the booked turn (4 s), 2 failures' penalty (2 s)")
	// Once every failure is forgiven, the address is checked at once.
	addrs.forgive("a")
	addrs.forgive("a")
	d, delayed, ok = wait("a")
	assert.True(t, ok)
	assert.False(t, delayed)
	assert.Zero(t, d, "forgiven: checked at once")

	// A flood of keys keeps the cap.
	for i := range 100 {
		addrs.fail(fmt.Sprint("flood", i))
		wait(fmt.Sprint("flood", i))
	}
	assert.Equal(t, 3, addrs.len())
}
