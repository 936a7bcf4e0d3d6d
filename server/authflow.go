package server

import (
	"github.com/pop3kit/pop3kit/pop3"
	"time"
)

// Replies of the login checks. None tells whether a user exists.
var (
	errAuthQueue   = pop3.NewError(pop3.CodeSysTemp, "too many logins are being checked right now, try again later")
	errAuthClosed  = pop3.NewError(pop3.CodeAuth, "invalid credentials; too many failed logins on this connection, closing it")
	errPasswdDown  = pop3.NewError(pop3.CodeSysTemp, "the account list cannot be read now, try again later")
	errPenaltyBusy = pop3.NewError(pop3.CodeSysTemp, "too many failed logins from your address are waiting to be checked, try again later")
)

// attempt is one login attempt, timed from the arrival of the command
// that carries the credentials: a failure is answered at a time fixed
// from its turn (its arrival plus its address's penalty), not from the
// end of the verification, so that how long a hash takes (or that there
// was none to check) does not show.
type attempt struct {
	start time.Time
	turn  time.Time // when its check may run: start plus the address's penalty
	addr  string    // the address group's penalty key; "" off TCP
	user  string    // the user name's penalty key; "" for a name no user can have
	// passwdDown is set when the passwd-file could not be read, so
	// there was nothing to check against.
	passwdDown bool
	// busy is set when the address's penalties left no turn for the
	// check in time: nothing is checked, and the reply is [SYS/TEMP].
	busy bool
}

// arrive starts an attempt now.
func (h *session) arrive() attempt {
	at := attempt{start: time.Now()}
	at.turn = at.start
	if h.addr.IsValid() {
		at.addr = h.addr.String()
	}
	return at
}

// admit names the user of at and, when the client's address has recent
// failures, waits for the attempt's turn before anything is checked,
// success or failure alike, as Dovecot's auth penalty does. An address
// with recent failures has one check per current penalty: each attempt
// books the address's next turn when it arrives, so the k-th of
// concurrent attempts waits k penalties and a guesser's connections from
// one address share one schedule. A success from the address forgives one
// of its failures (an office behind NAT whose one user mistyped three
// times is back to no penalty after three logins), and an attempt already
// queued keeps its turn: a success never lets waiting guesses through
// early, nor wipes a guesser's record. An attempt whose turn would be more than
// maxPenaltyWait away waits that long and is answered -ERR [SYS/TEMP]
// unchecked (at.busy): a penalty delays, it never changes a verdict. The
// user name's failures do not delay the check at all (see failureWait):
// guessing a name from other addresses neither slows nor refuses its
// owner. The session keeps at as the attempt being
// checked, for verify (the SASL callback calls the two). It reports
// whether the attempt may be checked at all (not at.busy).
func (h *session) admit(at *attempt, user string) bool {
	h.at = at
	if CheckUserName(user) == nil {
		at.user = user
	}
	s := h.srv
	turn, delayed, ok := s.addrPenalty.book(at.addr, s.penalty, s.maxPenaltyWait())
	if !delayed {
		return true
	}
	s.metrics.penalties.Inc()
	if !ok {
		turn = at.start.Add(s.maxPenaltyWait())
	}
	ctx := h.conn.Context()
	timer := time.NewTimer(time.Until(turn))
	defer timer.Stop()
	select {
	case <-timer.C:
		at.turn = turn
		at.busy = !ok
	case <-ctx.Done():
		at.turn, at.busy = time.Now(), true
	}
	return !at.busy
}

// verify checks user's password in the bounded pool, after admit. An
// unknown user verifies the dummy hash, so the work is done either way.
// err is errAuthQueue when no slot freed up in time, errPasswdDown when
// the passwd-file cannot be read, errPenaltyBusy when the address's
// penalties left no turn: in none of these was anything checked.
func (h *session) verify(user string, password []byte) (bool, *pop3.Error) {
	if h.at != nil && h.at.busy {
		return false, errPenaltyBusy
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
	ok, err := h.srv.auth.verify(h.conn.Context(), a, password)
	if err != nil {
		return false, errAuthQueue
	}
	return ok && exists, nil
}

// succeeded forgives one of the address's failures, as a successful login
// shows the address is (also) a user's. The user name's penalty stays
// until it expires: an attacker guessing from elsewhere must not have it
// reset.
func (h *session) succeeded(at *attempt) {
	h.at = nil
	h.srv.addrPenalty.forgive(at.addr)
}

// penalty is the wait before a check after fails recent failures, 0 when
// penalties are off.
func (s *Server) penalty(fails int) time.Duration {
	if s.addrPenalty == nil {
		return 0
	}
	return penaltyDelay(fails, time.Duration(s.cfg.FailDelay), time.Duration(s.cfg.PenaltyMax))
}

// maxPenaltyWait is the longest an attempt waits for its turn: two
// PenaltyMax. Beyond it the attempt is answered [SYS/TEMP] unchecked
// rather than queued further, so that a flood of attempts from one
// address books no turn further ahead and holds each connection no
// longer.
func (s *Server) maxPenaltyWait() time.Duration { return 2 * time.Duration(s.cfg.PenaltyMax) }

// failureWait is how long after its turn a wrong password's reply
// waits: FailDelay, or the user name's penalty when it is longer. A user
// name's failures lengthen only the replies to wrong passwords for it: a
// correct password is answered as soon as it is checked, so an attacker
// guessing the name from elsewhere delays its owner by nothing.
func (s *Server) failureWait(userFails int) time.Duration {
	return max(time.Duration(s.cfg.FailDelay), s.penalty(userFails))
}

// sleepUntil sleeps in the session's goroutine (other sessions go on)
// until t, or until its connection ends or the server starts shutting
// down (the connection's context).
func (h *session) sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-h.conn.Context().Done():
	}
}
