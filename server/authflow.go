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
	errPasswdDown = pop3gen.NewError(pop3gen.CodeSysTemp, "the account list cannot be read now, try again later")
)

// attempt is one login attempt, timed from the arrival of the command
// that carries the credentials: a failure is answered at a time fixed
// from its turn (its arrival, or the later time its penalties booked for
// its check), not from the end of the verification, so that how long a
// hash takes (or that there was none to check) does not show.
type attempt struct {
	start time.Time
	turn  time.Time // when its check may run; zero until admit
	addr  string    // the address group's penalty key; "" off TCP
	user  string    // the user name's penalty key; "" for a name no user can have
	// refused is set when the penalties' queue for addr or user was
	// full: nothing is checked and the reply is a failure.
	refused bool
	// passwdDown is set when the passwd-file could not be read, so
	// there was nothing to check against.
	passwdDown bool
}

// arrive starts an attempt now.
func (h *session) arrive() attempt {
	at := attempt{start: time.Now()}
	if h.addr.IsValid() {
		at.addr = h.addr.String()
	}
	return at
}

// admit names the user of at, books its turn with the penalties and
// waits for it before anything is checked — success or failure — as
// Dovecot's auth penalty does. An address or user name with recent
// failures has one check per current penalty: each attempt books the
// key's next turn when it arrives, so the k-th of concurrent attempts
// waits k penalties, and one that would wait more than maxPenaltyWait is
// refused unchecked (verify then checks nothing, and the reply is a
// failure). The user name's penalty counts whether or not the user
// exists, so it tells nothing either. The session keeps at as the
// attempt being checked, for verify (the SASL callback calls the two).
func (h *session) admit(at *attempt, user string) {
	h.at = at
	if CheckUserName(user) == nil {
		at.user = user
	}
	turn, ok := h.srv.book(at.addr, at.user)
	if !ok {
		at.refused = true
		return
	}
	at.turn = turn
	if turn.After(at.start) {
		h.srv.metrics.penalties.Inc()
	}
	h.srv.sleepUntil(turn)
}

// verify checks user's password in the bounded pool, after admit. An
// unknown user verifies the dummy hash, so the work is done either way.
// An attempt admit refused is not checked. err is errAuthQueue when no
// slot freed up in time, errPasswdDown when the passwd-file cannot be
// read.
func (h *session) verify(user string, password []byte) (bool, error) {
	if h.at != nil && h.at.refused {
		return false, nil
	}
	a, exists, err := h.srv.users.Lookup(user)
	if !exists && err == nil {
		a = h.srv.dummy
	}
	if err != nil {
		if h.at != nil {
			h.at.passwdDown = true
		}
		return false, errPasswdDown
	}
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
	h.at = nil
	h.srv.addrPenalty.clear(at.addr)
}

// penalty is the wait before a check after fails recent failures, 0 when
// penalties are off.
func (s *Server) penalty(fails int) time.Duration {
	if s.addrPenalty == nil {
		return 0
	}
	return penaltyDelay(fails, time.Duration(s.cfg.FailDelay), time.Duration(s.cfg.PenaltyMax))
}

// maxPenaltyWait is the longest an attempt may wait for its turn: two
// PenaltyMax. Beyond it an attempt is refused unchecked rather than
// queued, so that a flood of attempts books no turn further ahead, holds
// each connection no longer, and keeps the table's bookings within
// reach: a user name under attack is checked once per penalty, and its
// owner waits at most this long for a turn.
func (s *Server) maxPenaltyWait() time.Duration { return 2 * time.Duration(s.cfg.PenaltyMax) }

// book books the check of an attempt arriving now from address key addr
// for user name key user (either may be ""): its turn, and whether it got
// one (false: the wait would exceed maxPenaltyWait; nothing is booked).
func (s *Server) book(addr, user string) (time.Time, bool) {
	if s.addrPenalty == nil {
		return time.Now(), true
	}
	return book(s.addrPenalty, s.userPenalty, addr, user, s.penalty, s.maxPenaltyWait())
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
