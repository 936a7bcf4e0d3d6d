package server

import (
	"context"
	"time"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// Replies of the login checks. None tells whether a user exists.
var (
	errAuthQueue  = pop3gen.NewError(pop3gen.CodeSysTemp, "too many logins are being checked right now, try again later")
	errAuthClosed = pop3gen.NewError(pop3gen.CodeAuth, "invalid credentials; too many failed logins on this connection, closing it")
)

// attempt is one login attempt, timed from the arrival of the command
// that carries the credentials: every reply to it is sent at a time fixed
// from that arrival, not from the end of the verification, so that how
// long a hash takes (or that there was none to check) does not show.
type attempt struct {
	start time.Time
	addr  string // the address group's penalty key; "" off TCP
	user  string // the user name's penalty key; "" for a name no user can have
	fails int    // recent failures of addr or user, whichever more
}

// arrive starts an attempt now.
func (h *session) arrive() attempt {
	at := attempt{start: time.Now()}
	if h.addr.IsValid() {
		at.addr = h.addr.String()
	}
	return at
}

// admit names the user of at and, when its address or user name has
// recent failures, waits out their penalty before anything is checked —
// success or failure — as Dovecot's auth penalty does: a guesser learns
// nothing from a penalised source sooner than the penalty. The user's
// penalty counts whether or not the user exists, so it tells nothing
// either.
func (h *session) admit(at *attempt, user string) {
	if CheckUserName(user) == nil {
		at.user = user
	}
	at.fails = max(h.srv.addrPenalty.fails(at.addr), h.srv.userPenalty.fails(at.user))
	if d := h.srv.penalty(at.fails); d > 0 {
		h.srv.sleepUntil(at.start.Add(d))
	}
}

// verify checks user's password in the bounded pool, after admit. An
// unknown user verifies the dummy hash, so the work is done either way.
// err is errAuthQueue when no slot freed up in time.
func (h *session) verify(user string, password []byte) (bool, error) {
	a, exists := h.srv.passwd.account(user)
	if a.cost > h.srv.auth.memCap && !a.overCap.Swap(true) {
		h.log.Warn("a password hash needs more memory than auth_memory: it is verified alone",
			"user", user, "needs", Bytes(a.cost).String(), "auth_memory", Bytes(h.srv.auth.memCap).String())
	}
	ctx, cancel := h.srv.untilClosing()
	defer cancel()
	ok, err := h.srv.auth.verify(ctx, a, password)
	if err != nil {
		return false, errAuthQueue
	}
	return ok && exists, nil
}

// succeeded clears the address's penalty, as a successful login shows the
// address is a user's. The user name's penalty stays until it expires: an
// attacker guessing from elsewhere must not have it reset.
func (h *session) succeeded(at *attempt) {
	h.srv.addrPenalty.clear(at.addr)
}

// penalty is the failure delay after fails recent failures, 0 when
// penalties are off.
func (s *Server) penalty(fails int) time.Duration {
	if s.addrPenalty == nil {
		return 0
	}
	return penaltyDelay(fails, time.Duration(s.cfg.FailDelay), time.Duration(s.cfg.PenaltyMax))
}

// closingPoll is how often a waiting login looks whether the server is
// shutting down: Shutdown signals with a flag, not a channel, and 50 ms
// is short beside its deadline.
const closingPoll = 50 * time.Millisecond

// untilClosing returns a context cancelled when the server starts
// shutting down, so that no delay or queue holds up Shutdown.
func (s *Server) untilClosing() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(closingPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s.core.Closing() {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// sleepUntil sleeps in the calling session's goroutine (other sessions go
// on) until t, or until the server starts shutting down.
func (s *Server) sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	ctx, cancel := s.untilClosing()
	defer cancel()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
