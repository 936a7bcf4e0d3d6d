package pop3gen

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pop3kit/pop3kit/internal/sessionmodel"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3/memdrop"
)

// idleDrop counts the times the runtime told it its session idles.
type idleDrop struct {
	*memdrop.Maildrop
	idles atomic.Int32
}

func (d *idleDrop) Idle() { d.idles.Add(1) }

// idleHandler logs anyone in to its idleDrop.
type idleHandler struct {
	sessionmodel.Accept
	d *idleDrop
}

func (h idleHandler) Pass(_, _ []byte) (pop3.Maildrop, error) { return h.d, nil }

// TestMaildropIdle: a Maildrop with an Idle method is told, once per wait,
// when its session has waited a second for the client's next command, so
// that it may let go of what it holds; commands that come sooner never
// make it idle, and a session that has not logged in has no maildrop to
// tell.
func TestMaildropIdle(t *testing.T) {
	d := &idleDrop{Maildrop: sessionmodel.Maildrop()}
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) { return idleHandler{d: d}, nil }
	})
	c := rt.dial()
	c.Line()
	c.OK("USER alice")
	c.OK("PASS pw")
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		c.OK("NOOP")
	}
	assert.Zero(t, d.idles.Load(), "a client that keeps talking")
	assert.Eventually(t, func() bool { return d.idles.Load() == 1 }, 5*time.Second, 20*time.Millisecond, "told after a second")
	time.Sleep(1500 * time.Millisecond)
	assert.Equal(t, int32(1), d.idles.Load(), "once per wait")
	c.OK("STAT")
	assert.Eventually(t, func() bool { return d.idles.Load() == 2 }, 5*time.Second, 20*time.Millisecond, "and again after the next command")
	c.OK("QUIT")
}
