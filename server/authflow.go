package server

import (
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// Replies of the login checks. None tells whether a user exists.
var (
	// errPasswdDown is the SASL mechanisms' reply too.
	errPasswdDown = saslmech.ErrUnavailable
)

// attempt is one login attempt, timed from the arrival of the command
// (or SASL step) that carries the credentials, which the runtime hands
// over at the address's turn (pop3.LoginPolicy): a failure is answered at
// a time fixed from then, not from the end of the verification, so that
// how long a hash takes (or that there was none to check) does not show.
type attempt struct {
	start time.Time
	user  string // the user name's penalty key; "" for a name no user can have
	// passwdDown is set when the passwd-file could not be read, so
	// there was nothing to check against.
	passwdDown bool
}

// arrive starts an attempt now.
func (h *session) arrive() attempt {
	return attempt{start: time.Now()}
}

// admit names the user of at. The runtime has already waited for the
// address's turn (its LoginPolicy: one check per current penalty from an
// address with recent failures, a success forgives one of them, an
// attempt left without a turn is answered [SYS/TEMP] unchecked). The user
// name's failures do not delay the check at all (see failureWait):
// guessing a name from other addresses neither slows nor refuses its
// owner. The session keeps at as the attempt being checked, for verify
// (PLAIN and LOGIN call the two, as Admit and CheckPassword).
func (h *session) admit(at *attempt, user string) {
	h.at = at
	if account.CheckUserName(user) == nil {
		at.user = user
	}
}

// verify checks user's password in the bounded pool, after admit. An
// unknown user verifies the dummy hash, so the work is done either way.
// err is pop3.ErrChecksBusy when no slot freed up in time, errPasswdDown when
// the passwd-file cannot be read: in neither was anything checked.
func (h *session) verify(user string, password []byte) (bool, *pop3.Error) {
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
	if a.Cost() > h.srv.auth.memCap && a.OverCapOnce() {
		h.log.Warn("a password hash needs more memory than auth_memory: it is verified alone",
			"user", user, "needs", Bytes(a.Cost()).String(), "auth_memory", Bytes(h.srv.auth.memCap).String())
	}
	ok, err := h.srv.auth.verify(h.conn.Context(), a, password)
	if err != nil {
		return false, pop3.ErrChecksBusy
	}
	return ok && exists, nil
}

// succeeded ends the attempt. The runtime forgives one of the address's
// failures; the user name's penalty stays until it expires: an attacker
// guessing from elsewhere must not have it reset.
func (h *session) succeeded(*attempt) {
	h.at = nil
}

// loginPolicy is the runtime's LoginPolicy from the configuration: the
// failure delay, penalties by address (penalties = false, or fail_delay
// 0, turns them off), max_auth_failures. Verification is bounded by
// pop3d's own pool (auth_workers, auth_memory), which charges each hash
// its memory, so the runtime's count of checks is off.
func loginPolicy(cfg *Config) pop3.LoginPolicy {
	p := pop3.LoginPolicy{FailDelay: time.Duration(cfg.FailDelay), PenaltyMax: time.Duration(cfg.PenaltyMax),
		MaxFailures: cfg.MaxAuthFailures, MaxChecks: -1, MaxAddresses: cfg.PenaltyEntries}
	if p.FailDelay <= 0 {
		p.FailDelay = -1
	}
	if !cfg.Penalties || p.PenaltyMax <= 0 {
		p.PenaltyMax = -1
	}
	return p
}

// penalty is the penalty after fails recent failures of a user name, 0
// when penalties are off.
func (s *Server) penalty(fails int) time.Duration {
	if s.userPenalty == nil {
		return 0
	}
	return s.core.LoginPolicy.Penalty(fails)
}

// failureWait is how long after its arrival a wrong password's reply
// waits: FailDelay, or the user name's penalty when it is longer. The
// runtime's LoginPolicy also holds a refusal to FailDelay after its turn;
// pop3d waits too because some of its refusals are answered mid-exchange
// (OAUTHBEARER's error challenge), before the runtime sees them. A user
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
