package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testpg"
	"github.com/pop3kit/pop3kit/server"
)

// TestSharedLimitsAcrossFrontEnds: on one database, the per-user session
// limit and LOGIN-DELAY hold for all front ends together, not for each:
// under Exchange's snapshot semantics (no lock) a second session of alice
// on another front end is refused at a limit of 1, and is let in once the
// first ends; a login within LOGIN-DELAY of one on another front end is
// refused with [LOGIN-DELAY].
func TestSharedLimitsAcrossFrontEnds(t *testing.T) {
	dsn := testpg.DB(t)
	stA, stB := open(t, dsn), open(t, dsn)
	deliver(t, stA, "alice", "one\n")
	one := func(c *server.Config) { c.MaxSessionsPerUser = 1 }
	a, b := frontEnd(t, stA, "exchange2010", one), frontEnd(t, stB, "exchange2010", one)

	ca := pop3test.LoggedIn(t, a, "alice", "pw")
	cb := pop3test.Dial(t, b)
	cb.OK("USER alice")
	assert.Contains(t, cb.Cmd("PASS pw"), "-ERR [IN-USE] too many sessions for this user on this site")
	ca.OK("QUIT")
	require.Eventually(t, func() bool {
		c := pop3test.Dial(t, b)
		defer c.C.Close()
		c.OK("USER alice")
		return c.Cmd("PASS pw")[:3] == "+OK"
	}, 10*time.Second, 50*time.Millisecond, "the slot is free once alice's first session ended")

	delay := func(c *server.Config) { c.LoginDelay = server.Duration(time.Minute) }
	c, d := frontEnd(t, stA, "exchange2010", delay), frontEnd(t, stB, "exchange2010", delay)
	cc := pop3test.LoggedIn(t, c, "bob", "pw")
	cc.OK("QUIT")
	cd := pop3test.Dial(t, d)
	cd.OK("USER bob")
	assert.Contains(t, cd.Cmd("PASS pw"), "-ERR [LOGIN-DELAY]", "bob logged in on the other front end a moment ago")
}

// TestSessionLeaseLapses: a session whose front end died (stopped renewing
// its lease) stops counting once the lease lapses; a live one keeps its
// slot.
func TestSessionLeaseLapses(t *testing.T) {
	dsn := testpg.DB(t)
	st := open(t, dsn)
	ctx := context.Background()
	release, err := st.BeginSession(ctx, "alice", 1)
	require.NoError(t, err)
	_, err = st.BeginSession(ctx, "alice", 1)
	assert.ErrorIs(t, err, server.ErrTooManySessions)
	// The front end "dies": its lease is not renewed and runs out.
	_, err = st.Pool().Exec(ctx, "UPDATE sessions SET expires = now() - interval '1 second' WHERE name = 'alice'")
	require.NoError(t, err)
	rel2, err := st.BeginSession(ctx, "alice", 1)
	require.NoError(t, err, "the lapsed lease frees the slot")
	rel2()
	release() // ending a lapsed lease is harmless
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&n))
	assert.Zero(t, n)
}
