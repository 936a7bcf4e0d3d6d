package pop3

import (
	"log/slog"
	"time"
)

// Session is the state machine of one POP3 connection, driven by the rows
// of its Protocol: it parses a line, checks that the command is on and
// allowed in the state, applies the row's guards, runs the command (the
// runtime's own answer, or the Handler's through the row's Call), writes
// the reply and takes the transition. It is not safe for concurrent use; a
// connection has one goroutine.
type Session struct {
	p        *Protocol
	d        Dialect
	v        Variations // the runtime's variations in force
	h        Handler
	w        *Writer
	state    State
	mode     Mode
	last     Cmd        // the last command that succeeded, for After
	sasl     bool       // inside an AUTH exchange
	saslCmd  Cmd        // the command whose exchange it is
	saslSrv  SASLServer // the exchange's server side
	saslBuf  []byte     // decoded responses, reused
	saslOut  []byte     // encoded challenges, reused
	offerTLS bool       // STLS can start TLS (setTLS)
	needTLS  bool       // no authentication before TLS (setTLS)
	bad      int        // consecutive rejected commands
	cmd      Command    // the command being parsed, kept here so that Feed does not allocate
	stay     bool       // the command succeeded without taking its edge
	done     uint64     // bit 1<<Cmd of each command that last succeeded in this state, for AfterAny
	off      uint64     // bit 1<<Cmd of each command off under the dialect or not served by the Handler
	alwaysOK uint64     // commands under AlwaysOK
	afterAny uint64     // commands under AfterAny
	lx       lexer      // the parser, with the dialect's masks
	user     []byte     // the argument a login gets from the command before it (USER's, for PASS)
	md       Maildrop   // the maildrop a login opened; nil before
	deleted  []bool     // the messages marked deleted, by index
	ev       Event      // the command being answered and how (Server.Observe)
	stats    SessionStats
	cr       countReader              // counts the octets of a message sent, reused
	log      *slog.Logger             // the connection's: backend errors are logged with their command
	admit    func(user string) *Error // the runtime's per-user limit; nil: none
	guard    *connGuard               // the LoginPolicy on this connection; nil: none
	closing  bool                     // the reply being written is the connection's last
}

// NewSession returns a session of dialect d in the initial state that
// answers through w. The greeting is the server's to write. A command the
// dialect switches off, or whose optional interface h does not implement,
// is neither served nor announced. Server runs sessions; a program calls
// NewSession to drive one without a connection (a test, a proxy).
func NewSession(h Handler, w *Writer, d Dialect) *Session {
	s := &Session{p: d.Protocol().prepare(), d: d, v: *d.Runtime(), h: h, w: w, state: StateAuthorization}
	for i := 1; i < len(s.p.Commands); i++ {
		r := &s.p.Commands[i]
		bit := uint64(1) << i
		_, sasl := h.(AuthHandler)
		if r.Enabled != nil && !r.Enabled(d) || r.Serves != nil && !r.Serves(h) || s.p.ops[i] == opSASL && !sasl {
			s.off |= bit
		}
		if r.AlwaysOK != nil && r.AlwaysOK(d) {
			s.alwaysOK |= bit
		}
		if r.AfterAny != nil && r.AfterAny(d) {
			s.afterAny |= bit
		}
	}
	s.lx = newLexer(s.p, d, &s.v)
	w.SetTerse(!s.v.InformativeErrors)
	return s
}

// Variations returns the runtime variations the session runs under. They
// must not be changed.
func (s *Session) Variations() *Variations { return &s.v }

// State returns the current state.
func (s *Session) State() State { return s.state }

// Mode returns the session's modes.
func (s *Session) Mode() Mode { return s.mode }

// SetMode switches modes on: ModeTLS for implicit TLS, ModeSecure for a
// connection the server trusts (loopback).
func (s *Session) SetMode(m Mode) { s.mode |= m }

// MaxLine returns the longest line, CRLF included, that the next Feed
// accepts: a reader needs to buffer no more than this.
func (s *Session) MaxLine() int {
	if s.sasl {
		return s.v.MaxSASLOctets
	}
	return max(s.v.MaxCommandOctets, s.v.MaxAuthLineOctets)
}

// IdleTimeout returns the inactivity timer in force: UnauthTimeout before
// login, AuthTimeout after (MS-STANXPOP3 V0002). Any line resets it.
func (s *Session) IdleTimeout() time.Duration {
	if s.state == StateAuthorization {
		return s.v.UnauthTimeout
	}
	return s.v.AuthTimeout
}

// Autologout is called when the inactivity timer expires. It writes the
// notice where TimeoutNotice is on (MS-STANXPOP3 V0003) and nothing where
// it is off (RFC 1939 §3). The session does not enter UPDATE.
func (s *Session) Autologout() {
	if s.v.TimeoutNotice {
		s.w.Error(errAutologout)
	}
}

// PlaintextAllowed reports whether USER/PASS (and plaintext SASL) may be
// used on this connection (PlaintextAuth, MS-STANXPOP3 V0010).
func (s *Session) PlaintextAllowed() bool {
	switch s.v.PlaintextAuth {
	case PlaintextAuthAlways:
		return true
	case PlaintextAuthSecure:
		return s.mode&(ModeTLS|ModeSecure) != 0
	}
	return false
}

// PlaintextRefusal returns the refusal of plaintext authentication that
// fits PlaintextAuth: ErrPlaintextDisabled where it is never allowed,
// ErrPlaintextRefused where only secure connections may use it.
func (s *Session) PlaintextRefusal() *Error {
	if s.v.PlaintextAuth == PlaintextAuthNever {
		return ErrPlaintextDisabled
	}
	return ErrPlaintextRefused
}

// SetTLS tells the session what its connection offers: offer, that STLS
// can start TLS; required, that no authentication is accepted before TLS.
func (s *Session) SetTLS(offer, required bool) {
	s.offerTLS, s.needTLS = offer, required
}

// CapaInfo returns what CAPA announces that the session knows, for the
// current state (RFC 2449 §5: CAPA lists what applies now).
func (s *Session) CapaInfo() CapaInfo {
	var c CapaInfo
	if s.state != StateAuthorization {
		c.afterLogin = true
		return c
	}
	tls := s.mode&ModeTLS != 0
	auth := tls || !s.needTLS
	c.Plaintext = auth && s.PlaintextAllowed()
	c.STLS = s.offerTLS && !tls
	if h, ok := s.h.(AuthHandler); ok && auth && s.sasLOn() {
		c.SASL = s.offered(h)
	}
	return c
}

// sasLOn reports whether a command of the Mechanism grammar is on.
func (s *Session) sasLOn() bool {
	for i := 1; i < len(s.p.ops); i++ {
		if s.p.ops[i] == opSASL && s.off&(1<<i) == 0 {
			return true
		}
	}
	return false
}

// TLSStarted is called after the handshake that STLS began. The session
// forgets what it learned before TLS (RFC 2595 §4) and stays in
// AUTHORIZATION.
func (s *Session) TLSStarted() {
	s.mode |= ModeTLS | ModeSecure
	s.last = CmdNone
	s.done = 0
	s.state = StateAuthorization
}

// Feed processes one line as read from the client (with its CRLF, a bare
// LF or none) and writes the reply. Pipelined commands are fed one line at
// a time and answered in order. Feed never keeps line.
func (s *Session) Feed(line []byte) Action {
	s.w.markCommand()
	s.ev = Event{}
	if s.sasl {
		return s.saslStep(line)
	}
	if err := s.lx.parse(&s.cmd, line, s.mode); err != nil {
		return s.reject(err)
	}
	return s.dispatch(&s.cmd)
}

// dispatch runs a parsed command: it checks that the command is on and
// allowed in the current state, applies the row's guards, runs it and
// takes the transition.
func (s *Session) dispatch(c *Command) Action {
	s.ev.Cmd, s.ev.Command = c.Cmd, s.p.Name(c.Cmd)
	bit := uint64(1) << c.Cmd
	if s.off&bit != 0 {
		return s.reject(errNotSupported)
	}
	r := &s.p.Commands[c.Cmd]
	if r.In&s.state == 0 {
		if s.state == StateAuthorization {
			return s.reject(errNeedAuth)
		}
		return s.reject(errAlreadyAuth)
	}
	if r.After != CmdNone && s.last != r.After && !(s.afterAny&bit != 0 && s.done&(1<<r.After) != 0) {
		return s.reject(errNeedUser)
	}
	switch r.Guard {
	case NotTLS:
		if s.mode&ModeTLS != 0 {
			return s.reject(errTLSActive)
		}
	case Plaintext:
		if !s.PlaintextAllowed() {
			return s.reject(s.PlaintextRefusal())
		}
	}
	if s.p.keeps&bit != 0 {
		// Kept for the login that follows (USER's argument, for PASS).
		s.user = append(s.user[:0], c.Arg1...)
	}
	var err error
	switch s.p.ops[c.Cmd] {
	case opHandler:
		_, err = r.Call(s.h, s.w, c, s.user)
		if s.alwaysOK&bit != 0 && err != nil && s.w.lines() == 0 {
			// AlwaysOK (USER under UserAlwaysOK): the refusal comes later.
			err = nil
		}
	case opLogin:
		if busy := s.begin(); busy != nil {
			err = busy
		} else {
			var md Maildrop
			var e error
			if busy := s.check(func() { md, e = r.Call(s.h, s.w, c, s.user) }); busy != nil {
				e = busy
			}
			err = s.open(md, e)
		}
		err = s.end(err)
	case opSASL:
		h, ok := s.h.(AuthHandler)
		if !ok {
			return s.reject(errNotSupported)
		}
		return s.auth(c.Cmd, h, c.Arg1, c.Arg2)
	case opSTLS:
		err = s.stls()
	case opCAPA:
		err = s.capa()
	case opQUIT:
		// The edge leads to a final state: enter it, and run it there.
		if s.state = r.next(s.state); s.state == StateUpdate {
			err = s.update()
		} else {
			err = s.quit()
		}
	case opSTAT:
		err = s.stat()
	case opLIST:
		err = s.list(c.Msg)
	case opRETR:
		err = s.retr(c.Msg)
	case opDELE:
		err = s.dele(c.Msg)
	case opNOOP:
		err = s.noop()
	case opRSET:
		err = s.rset()
	case opTOP:
		err = s.top(c.Msg, c.Count)
	case opUIDL:
		err = s.uidl(c.Msg)
	}
	if err == nil {
		s.mode |= r.Sets
	}
	return s.finish(c.Cmd, err)
}

// finish writes the outcome of a command and takes the transition. A
// command that fails after its reply has begun cannot have -ERR written
// after it: that would corrupt the client's stream, so the connection
// closes instead. A handler's own refusal (no such message, a wrong
// password) does not count toward MaxBadCommands; the core's plaintext
// refusal does, wherever it comes from.
func (s *Session) finish(c Cmd, err error) Action {
	s.sasl = false
	s.logFailure(err)
	if err != nil && s.w.lines() > 0 {
		return ActionClose
	}
	r := &s.p.Commands[c]
	if err != nil {
		s.stay = false
		// A command that failed is no longer one that succeeded (a failed USER forgets the name).
		s.done &^= 1 << c
		if r.After != CmdNone {
			// A failed login needs its first step again (StickyUser).
			s.done &^= 1 << r.After
		}
		e, ok := err.(*Error)
		if !ok {
			e = errInternal
		}
		s.ev.Err = e
		var a Action
		if e == ErrPlaintextRefused || e == ErrPlaintextDisabled {
			a = s.reject(s.PlaintextRefusal())
		} else {
			s.last = CmdNone
			s.w.Error(e)
		}
		if r.Then == ActionClose || s.closing {
			return ActionClose
		}
		return a
	}
	s.bad = 0
	if s.w.continued() {
		s.sasl = true
		return ActionContinue
	}
	if s.w.lines() == 0 {
		s.w.OK("")
	}
	s.last = c
	s.done |= 1 << c
	if next := r.next(s.state); !s.stay && next != s.state {
		s.state, s.done = next, 0
	}
	s.stay = false
	return r.Then
}

// reject answers -ERR and counts the failure; after MaxBadCommands in a row
// it answers errTooManyErrors instead and closes (MS-STANXPOP3 C0005).
func (s *Session) reject(e *Error) Action {
	s.last = CmdNone
	s.bad++
	s.ev.Err = e
	if s.v.MaxBadCommands > 0 && s.bad >= s.v.MaxBadCommands {
		s.w.Error(errTooManyErrors)
		s.ev.Err = errTooManyErrors
		return ActionClose
	}
	s.w.Error(e)
	return ActionContinue
}

// InSASL reports whether the next line answers a SASL challenge.
func (s *Session) InSASL() bool { return s.sasl }

// idler returns the maildrop's Idle, when it has one.
func (s *Session) idler() interface{ Idle() } {
	i, _ := s.md.(interface{ Idle() })
	return i
}

// idle tells the maildrop that the session waits for its client. A panic
// in it is the backend's bug: it is logged, and the session goes on.
func (s *Session) idle() {
	if i := s.idler(); i != nil {
		_ = protect(s.log, "Maildrop.Idle", func() error { i.Idle(); return nil })
	}
}
