package pop3gen

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

// passCount counts the PASS calls the recorders of rt received: how many
// logins the backend was asked to check.
func (rt *runtimeT) passCount() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	for _, r := range rt.hs {
		for _, c := range r.calls {
			if strings.HasPrefix(c, "PASS ") {
				n++
			}
		}
	}
	return n
}

// login sends USER and PASS on c and returns PASS's reply and how long it
// took.
func login(c *pop3test.Conn, user, pass string) (string, time.Duration) {
	c.T.Helper()
	c.OK("USER " + user)
	start := time.Now()
	reply := c.Cmd("PASS " + pass)
	return reply, time.Since(start)
}

// TestLoginPolicy: every server on the runtime gets the failed-login
// policy without a line of its own (RFC3206-5-AUTH replies, the
// MS-STANXPOP3 V0010 refusals aside): a wrong password is answered no
// sooner than FailDelay after it arrived; the MaxFailures-th failure on a
// connection closes it; after failures from an address its logins are
// checked one per penalty, however many connections they use, a success
// forgiving one failure; an attempt left without a turn is answered
// [SYS/TEMP] without being checked; verification slots are bounded.
func TestLoginPolicy(t *testing.T) {
	clause.Covers(t, "RFC3206-5-AUTH")
	const delay = 150 * time.Millisecond

	t.Run("failure delay and cap per connection", func(t *testing.T) {
		rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
			s.LoginPolicy = pop3.LoginPolicy{FailDelay: delay, PenaltyMax: -1, MaxFailures: 3}
		})
		c := rt.dial()
		c.Line()
		for i := 1; i <= 3; i++ {
			reply, took := login(c, "alice", "wrong")
			assert.GreaterOrEqual(t, took, delay, "failure %d is answered after FailDelay", i)
			if i < 3 {
				assert.Equal(t, "-ERR [AUTH] invalid login", reply)
			} else {
				assert.Equal(t, pop3.ErrLoginsCut.Error(), reply)
			}
		}
		assert.True(t, c.Closed(), "the third failure closes the connection")
		// A right password is not delayed, and other connections go on.
		d := rt.dial()
		d.Line()
		reply, _ := login(d, "alice", "secret")
		assert.True(t, strings.HasPrefix(reply, "+OK"), reply)
	})

	t.Run("penalties by address, shared by connections", func(t *testing.T) {
		rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
			s.LoginPolicy = pop3.LoginPolicy{FailDelay: delay, PenaltyMax: 4 * delay, MaxFailures: -1}
		})
		c := rt.dial()
		c.Line()
		login(c, "alice", "wrong") // the address has one failure: penalty = delay
		login(c, "alice", "wrong") // two: 2·delay
		// Three connections at once from the address: their checks are
		// booked one penalty apart, so the last waits three penalties.
		var wg sync.WaitGroup
		var slowest atomic.Int64
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := rt.dial()
				d.Line()
				reply, took := login(d, "alice", "secret")
				assert.True(t, strings.HasPrefix(reply, "+OK"), "a right password is never refused as wrong: %q", reply)
				for {
					old := slowest.Load()
					if int64(took) <= old || slowest.CompareAndSwap(old, int64(took)) {
						break
					}
				}
			}()
		}
		wg.Wait()
		assert.GreaterOrEqual(t, time.Duration(slowest.Load()), 3*2*delay-delay/2,
			"the third concurrent attempt waits its turn: one check per penalty")
	})

	t.Run("no turn in time: unchecked", func(t *testing.T) {
		rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
			s.LoginPolicy = pop3.LoginPolicy{FailDelay: delay, PenaltyMax: delay, MaxFailures: -1}
		})
		c := rt.dial()
		c.Line()
		login(c, "alice", "wrong")
		before := rt.passCount()
		// Booked one penalty apart, at most two PenaltyMax ahead: of five
		// at once, two get a turn and three are answered unchecked.
		var wg sync.WaitGroup
		var busy atomic.Int32
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := rt.dial()
				d.Line()
				reply, _ := login(d, "alice", "secret")
				if reply == pop3.ErrPenaltyBusy.Error() {
					busy.Add(1)
				} else {
					assert.True(t, strings.HasPrefix(reply, "+OK"), reply)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(3), busy.Load())
		assert.Equal(t, 2, rt.passCount()-before, "an attempt without a turn is never checked")
	})

	t.Run("bounded verification", func(t *testing.T) {
		release := make(chan struct{})
		var inPass atomic.Int32
		rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
			s.LoginPolicy = pop3.LoginPolicy{FailDelay: -1, MaxChecks: 1, CheckWait: delay}
			s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) {
				return blockingPass{recorder: newRecorder(), in: &inPass, release: release}, nil
			}
		})
		first := rt.dial()
		first.Line()
		require.True(t, strings.HasPrefix(first.Cmd("USER alice"), "+OK"))
		_, err := first.C.Write([]byte("PASS secret\r\n"))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return inPass.Load() == 1 }, 5*time.Second, time.Millisecond)
		second := rt.dial()
		second.Line()
		reply, took := login(second, "alice", "secret")
		assert.Equal(t, pop3.ErrChecksBusy.Error(), reply)
		assert.GreaterOrEqual(t, took, delay, "it waited CheckWait for a slot")
		close(release)
		assert.True(t, strings.HasPrefix(first.Line(), "+OK"))
	})

	t.Run("off", func(t *testing.T) {
		rt := newRuntime(t, RFC1939(), func(s *pop3.Server) { s.LoginPolicy = pop3.LoginPolicy{Off: true} })
		c := rt.dial()
		c.Line()
		for range 5 {
			reply, _ := login(c, "alice", "wrong")
			assert.Equal(t, "-ERR [AUTH] invalid login", reply)
		}
		assert.Equal(t, 5, rt.passCount(), "no cap: every attempt is checked")
	})
}

// blockingPass is a recorder whose PASS waits until release is closed.
type blockingPass struct {
	*recorder
	in      *atomic.Int32
	release chan struct{}
}

func (b blockingPass) Pass(user, secret []byte) (pop3.Maildrop, error) {
	b.in.Add(1)
	<-b.release
	return b.recorder.Pass(user, secret)
}
