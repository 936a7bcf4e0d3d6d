package pop3

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"
)

// LoginPolicy is what the runtime does about failed logins, for every
// server built on it: on by default, each part switchable off. A login is
// a command whose row opens the maildrop (PASS, APOP) or a SASL exchange
// (AUTH); it fails when the Handler refuses it.
//
//   - A failure delay: a failed login is answered no sooner than
//     FailDelay after its turn, so that guessing is slow and the reply's
//     time does not tell whether the user exists.
//   - Penalties by address (Dovecot's anvil): after failures from an
//     address (an IPv4 address, an IPv6 /64), its next logins are checked
//     one per penalty — FailDelay doubled per recent failure, up to
//     PenaltyMax — so the k-th of concurrent attempts waits k penalties,
//     however many connections they use. A penalty delays a login, it
//     never changes a verdict: an attempt left without a turn within two
//     PenaltyMax is answered -ERR [SYS/TEMP] unchecked, and a success
//     forgives one of the address's failures.
//   - A cap on failed logins per connection: the MaxFailures-th is
//     answered and the connection closed.
//   - Bounded verification: at most MaxChecks logins are checked at once
//     (the Handler's login methods and the steps of SASL exchanges); a
//     login that finds no slot within CheckWait is answered -ERR
//     [SYS/TEMP] unchecked.
//
// A failure is a refusal of the credentials: an *Error with the [AUTH]
// code or none, or an error that is no *Error. An *Error with another
// code ([SYS/TEMP], [IN-USE], [LOGIN-DELAY]) says they were not the
// matter and costs the address nothing, but counts toward MaxFailures.
// A SASL exchange the client cancels after its server refused the
// credentials (see SASLRefusal) is the failure it was.
type LoginPolicy struct {
	// Off switches the whole policy off, for a server that keeps its own.
	Off bool
	// FailDelay is the least time between a failed login's turn and its
	// reply: 0 means 2 s; negative, none (and no penalties).
	FailDelay time.Duration
	// PenaltyMax caps an address's penalty: 0 means 15 s; negative, no
	// penalties by address.
	PenaltyMax time.Duration
	// MaxFailures is the number of failed logins after which a connection
	// is closed: 0 means 3; negative, no cap.
	MaxFailures int
	// MaxChecks is the number of logins checked at once: 0 means four per
	// CPU, at least 16; negative, no bound.
	MaxChecks int
	// CheckWait is how long a login waits for a slot: 0 means 10 s.
	CheckWait time.Duration
	// MaxAddresses bounds the addresses whose failures are remembered (an
	// hour after each's last): 0 means 100,000.
	MaxAddresses int
}

// withDefaults returns p with its zero values replaced by the defaults.
func (p LoginPolicy) withDefaults() LoginPolicy {
	if p.FailDelay == 0 {
		p.FailDelay = 2 * time.Second
	}
	if p.PenaltyMax == 0 {
		p.PenaltyMax = 15 * time.Second
	}
	if p.MaxFailures == 0 {
		p.MaxFailures = 3
	}
	if p.MaxChecks == 0 {
		p.MaxChecks = max(16, 4*runtime.GOMAXPROCS(0))
	}
	if p.CheckWait <= 0 {
		p.CheckWait = 10 * time.Second
	}
	if p.MaxAddresses <= 0 {
		p.MaxAddresses = 100_000
	}
	return p
}

// Penalty returns the wait after fails recent failures: FailDelay doubled
// with each, capped at PenaltyMax (with the defaults Dovecot's 2, 4, 8,
// 15 s); 0 without failures or with penalties off. A server that keeps
// penalties of its own (by user name) schedules them with it.
func (p LoginPolicy) Penalty(fails int) time.Duration {
	p = p.withDefaults()
	if p.Off || p.FailDelay < 0 || p.PenaltyMax < 0 {
		return 0
	}
	return penaltyDelay(fails, p.FailDelay, p.PenaltyMax)
}

// The replies of the policy. None tells whether a user exists: the first
// two say the login was not checked at all ([SYS/TEMP]), the last that the
// connection closes after its MaxFailures-th failure.
var (
	ErrPenaltyBusy = NewError(CodeSysTemp, "too many failed logins from your address are waiting to be checked, try again later")
	ErrChecksBusy  = NewError(CodeSysTemp, "too many logins are being checked right now, try again later")
	ErrLoginsCut   = NewError(CodeAuth, "invalid credentials; too many failed logins on this connection, closing it")
)

// loginGuard is the server-wide state of the policy.
type loginGuard struct {
	p      LoginPolicy
	byAddr *Penalties       // nil: no penalties
	checks chan struct{}    // nil: unbounded
	now    func() time.Time // time.Now; tests replace it
}

func newLoginGuard(p LoginPolicy) *loginGuard {
	if p.Off {
		return nil
	}
	p = p.withDefaults()
	g := &loginGuard{p: p, now: time.Now}
	if p.FailDelay > 0 && p.PenaltyMax > 0 {
		g.byAddr = NewPenalties(p.MaxAddresses)
	}
	if p.MaxChecks > 0 {
		g.checks = make(chan struct{}, p.MaxChecks)
	}
	return g
}

// attempt is the login a session is making: its arrival and its turn.
type attempt struct {
	active      bool
	start, turn time.Time
	unchecked   bool // no turn, or no slot: nothing was checked
}

// connGuard is one connection's side of the policy.
type connGuard struct {
	g        *loginGuard
	ctx      context.Context
	key      string // the address group; "" off TCP
	failures int
	at       attempt
}

// begin starts a login attempt: it waits for the address's turn and
// returns ErrPenaltyBusy when there is none in time.
func (s *Session) begin() *Error {
	c := s.guard
	if c == nil {
		return nil
	}
	g := c.g
	c.at = attempt{active: true, start: g.now()}
	c.at.turn = c.at.start
	most := 2 * g.p.PenaltyMax
	turn, delayed, ok := g.byAddr.book(c.key, g.p.Penalty, most)
	if !delayed {
		return nil
	}
	if !ok {
		turn = c.at.start.Add(most)
	}
	s.ev.Penalty = turn.Sub(c.at.start)
	if !c.sleepUntil(turn) || !ok {
		c.at.unchecked = true
		return ErrPenaltyBusy
	}
	c.at.turn = turn
	return nil
}

// check runs f, which checks credentials, in one of the server's
// verification slots; ErrChecksBusy when none freed up in time.
func (s *Session) check(f func()) *Error {
	c := s.guard
	if c == nil || c.g.checks == nil {
		aside(f)
		return nil
	}
	select {
	case c.g.checks <- struct{}{}:
		// A free slot: no timer, and the connection's context makes no
		// Done channel that the session would keep.
	default:
		t := time.NewTimer(c.g.p.CheckWait)
		defer t.Stop()
		select {
		case c.g.checks <- struct{}{}:
		case <-t.C:
			c.at.unchecked = true
			return ErrChecksBusy
		case <-c.ctx.Done():
			c.at.unchecked = true
			return ErrChecksBusy
		}
	}
	defer func() { <-c.g.checks }()
	aside(f)
	return nil
}

// aside runs f on a goroutine of its own and waits for it. A check of
// credentials and the login it leads to (a password hash, a maildrop's
// scan, a store's queries, the log lines a handler writes through a text
// or JSON handler) grow a goroutine's stack to 8 KiB and more; on the
// session's goroutine that stack would stay with the session for as long
// as it idles, where its read loop needs a fraction of it. A panic in f
// is carried back, with f's stack, and raised again here, so that the
// session's recovery sees it as before.
func aside(f func()) {
	var p *asidePanic
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				p = &asidePanic{v: r, stack: debug.Stack()}
			}
		}()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}

// asidePanic is a panic of a function run aside, with the stack it
// happened on.
type asidePanic struct {
	v     any
	stack []byte
}

func (p *asidePanic) String() string { return fmt.Sprintf("%v\n%s", p.v, p.stack) }

// end ends the login attempt with its outcome: a success forgives one of
// the address's failures; a verdict on the credentials is answered no
// sooner than FailDelay after its turn and counts against the address;
// any failure counts toward MaxFailures, whose last reply closes the
// connection. A refusal that is no verdict ([SYS/TEMP], [IN-USE]) is
// answered at once: the credentials were not the matter. It returns the
// reply to send.
func (s *Session) end(err error) error {
	c := s.guard
	if c == nil || !c.at.active {
		return err
	}
	at := c.at
	c.at = attempt{}
	g := c.g
	if err == nil {
		g.byAddr.Forgive(c.key)
		return nil
	}
	verdict := isVerdict(err) && !at.unchecked
	if verdict {
		if g.p.FailDelay > 0 {
			c.sleepUntil(at.turn.Add(g.p.FailDelay))
		}
		g.byAddr.Fail(c.key)
	}
	if c.failures++; g.p.MaxFailures > 0 && c.failures >= g.p.MaxFailures {
		s.closing = true
		if s.log != nil {
			s.log.Info("too many failed logins: closing", "failures", c.failures)
		}
		if verdict {
			return ErrLoginsCut
		}
	}
	return err
}

// isVerdict reports whether a login's error refuses the credentials: an
// *Error with the [AUTH] code or none, or an error of any other type (a
// go-sasl server's, which the reply turns into [SYS/TEMP] but which may
// well be a wrong password: it gets the delay and the penalty, so that
// no refusal is answered faster than another). An *Error with another
// code ([SYS/TEMP], [IN-USE], [LOGIN-DELAY]) says the credentials were
// not the matter.
func isVerdict(err error) bool {
	e, ok := err.(*Error)
	return !ok || e.Code == "" || e.Code == CodeAuth
}

// arrived marks the arrival of a step of the login that may carry
// credentials (a SASL response): a refusal is answered FailDelay after
// the later of its turn and this, so that a client that waits before it
// sends its credentials still cannot time their check.
func (s *Session) arrived() {
	if c := s.guard; c != nil && c.at.active {
		if now := c.g.now(); now.After(c.at.turn) {
			c.at.turn = now
		}
	}
}

// abandon ends the login attempt without a verdict (a cancelled or
// malformed SASL exchange): it costs the address nothing.
func (s *Session) abandon() {
	if s.guard != nil {
		s.guard.at = attempt{}
	}
}

// sleepUntil waits until t or until the connection ends; false if it
// ended first.
func (c *connGuard) sleepUntil(t time.Time) bool {
	d := t.Sub(c.g.now())
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}
