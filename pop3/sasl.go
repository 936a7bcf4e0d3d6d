package pop3

import (
	"encoding/base64"
	"strings"
)

// SASLServer is the server side of one SASL exchange (RFC 4422), the
// method set of github.com/emersion/go-sasl's sasl.Server, so that a
// go-sasl server is one as it is. Next gets the client's response (nil
// when the client sent none yet, empty for an empty one) and returns the
// next challenge, or done. An error ends the exchange with -ERR: an *Error
// is sent as it is, anything else as errInternal.
type SASLServer interface {
	Next(response []byte) (challenge []byte, done bool, err error)
}

// SASLRefusal is implemented by a SASLServer whose mechanism goes on after
// it refused the credentials — OAUTHBEARER's error challenge (RFC 7628
// §3.2.2), to which the client answers before it gets -ERR. Refusal
// returns that refusal, nil before there is one: a client that cancels
// ("*") or sends a malformed line then has the failed login it had, for
// the LoginPolicy, rather than an exchange that never reached a verdict.
type SASLRefusal interface {
	Refusal() error
}

// AuthHandler is implemented by a Handler that serves AUTH (a command of
// the Mechanism grammar), which runs a SASL exchange (RFC 5034). It is
// optional: without it AUTH is refused as not supported and not announced.
type AuthHandler interface {
	// Mechanisms lists the SASL mechanisms AUTH offers on this connection
	// now, upper case: CAPA's SASL line and a bare AUTH (AuthListing) list
	// them, and any other is refused before Auth is called.
	Mechanisms() []string
	// Auth starts an exchange of mechanism, upper case, one that
	// Mechanisms lists, and returns its server side. The runtime runs it:
	// base64, the initial response and "=", challenges and continuations,
	// "*" cancel, line limits. An error refuses the exchange.
	Auth(mechanism string) (SASLServer, error)
	// Authenticated is called when the exchange succeeded. Return the
	// user's maildrop; the runtime writes the +OK with its totals. An
	// error refuses the login: an *Error as it is, any other as errInternal.
	Authenticated() (Maildrop, error)
}

// PlaintextMechanisms is implemented by an AuthHandler that says which of
// its mechanisms are plaintext-equivalent: the password itself, or what
// stands for it, crosses the wire (PLAIN, LOGIN, XOAUTH2's bearer token).
// Where plaintext logins are not allowed (PlaintextAuth, the Server's
// AllowInsecureAuth) the core neither lists nor runs them, and refuses
// them as it refuses USER and PASS (MS-STANXPOP3 V0010). Without it, PLAIN
// and LOGIN are taken to be the plaintext ones.
type PlaintextMechanisms interface {
	IsPlaintext(mechanism string) bool
}

// isPlaintext reports whether h says mechanism is plaintext-equivalent.
func isPlaintext(h AuthHandler, mechanism string) bool {
	if p, ok := h.(PlaintextMechanisms); ok {
		return p.IsPlaintext(mechanism)
	}
	return mechanism == "PLAIN" || mechanism == "LOGIN"
}

// offered returns the mechanisms h lists that may run on this connection
// now: not the plaintext ones where plaintext logins are not allowed.
func (s *Session) offered(h AuthHandler) []string {
	all := h.Mechanisms()
	if s.PlaintextAllowed() {
		return all
	}
	out := make([]string, 0, len(all))
	for _, m := range all {
		if !isPlaintext(h, m) {
			out = append(out, m)
		}
	}
	return out
}

// auth runs AUTH (RFC 5034 §4) for command c: a bare AUTH lists the
// mechanisms (MS-POP3 §2.2.1, where AuthListing is on); otherwise the
// mechanism must be one the handler lists, the handler starts the
// exchange, and the core runs it — the initial response ("=" for an empty
// one), base64 both ways, challenges and continuation lines, "*" cancel
// and the line limits — and opens the maildrop Authenticated returns when it succeeds.
func (s *Session) auth(c Cmd, h AuthHandler, mech, initial []byte) Action {
	if mech == nil {
		s.w.Begin("SASL mechanisms follow")
		for _, m := range s.offered(h) {
			s.w.Line(m)
		}
		s.w.End()
		s.stay = true // a listing logs no one in
		return s.finish(c, nil)
	}
	name := strings.ToUpper(string(mech))
	if !s.PlaintextAllowed() && isPlaintext(h, name) {
		// A plaintext-equivalent mechanism where plaintext is not
		// allowed: say so, as USER and PASS do (MS-STANXPOP3 V0010),
		// whether or not the handler lists it.
		return s.reject(s.PlaintextRefusal())
	}
	offered := false
	for _, m := range h.Mechanisms() {
		if m == name {
			offered = true
			break
		}
	}
	if !offered {
		return s.finish(c, ErrUnknownMechanism)
	}
	// A login attempt from here (LoginPolicy): the address's turn first.
	if busy := s.begin(); busy != nil {
		return s.finish(c, s.end(busy))
	}
	srv, err := h.Auth(name)
	if err != nil {
		return s.finish(c, s.end(err))
	}
	s.saslCmd, s.saslSrv = c, srv
	var resp []byte
	switch {
	case initial == nil:
	case len(initial) == 1 && initial[0] == '=':
		resp = []byte{} // RFC 5034 §4: an empty initial response
	default:
		var ok bool
		if resp, ok = s.decode(initial); !ok {
			s.saslSrv = nil
			s.abandon()
			return s.finish(c, errBadBase64)
		}
	}
	return s.saslNext(resp)
}

// saslNext gives resp to the exchange and answers what it returns.
func (s *Session) saslNext(resp []byte) Action {
	c := s.saslCmd
	s.arrived()
	var challenge []byte
	var done bool
	var err error
	if busy := s.check(func() { challenge, done, err = s.saslSrv.Next(resp) }); busy != nil {
		err = busy
	}
	if err != nil {
		s.saslSrv = nil
		return s.finish(c, s.end(err))
	}
	if !done {
		n := base64.StdEncoding.EncodedLen(len(challenge))
		if cap(s.saslOut) < n {
			s.saslOut = make([]byte, n)
		}
		b := s.saslOut[:n]
		base64.StdEncoding.Encode(b, challenge)
		s.w.Challenge(b)
		s.ev.Continued = true
		return s.finish(c, nil) // finish sees the challenge: the exchange goes on
	}
	s.saslSrv = nil
	// Only an AuthHandler gets here (auth was given it).
	return s.finish(c, s.end(s.open(s.h.(AuthHandler).Authenticated())))
}

// saslStep handles a line inside an AUTH exchange (RFC 5034 §4): "*"
// cancels (the server MUST answer -ERR), anything else must be base64
// within MaxSASLOctets.
func (s *Session) saslStep(line []byte) Action {
	s.sasl = false
	s.ev.Cmd, s.ev.Command = s.saslCmd, s.p.Name(s.saslCmd)
	resp, err := cutLine(line, s.v.MaxSASLOctets, errSASLTooLong)
	if err == nil && len(resp) == 1 && resp[0] == '*' {
		err = errAuthCancelled
	}
	var decoded []byte
	if err == nil {
		var ok bool
		if decoded, ok = s.decode(resp); !ok {
			err = errBadBase64
		}
	}
	if err != nil {
		if r, ok := s.saslSrv.(SASLRefusal); ok {
			if refused := r.Refusal(); refused != nil {
				// The credentials were refused already (an error
				// challenge): cancelling does not undo the failure.
				s.saslSrv = nil
				s.ev.Err = nil
				return s.finish(s.saslCmd, s.end(refused))
			}
		}
		s.saslSrv = nil
		s.abandon() // a cancel or a malformed line: no verdict on the credentials
		return s.reject(err)
	}
	return s.saslNext(decoded)
}

// decode decodes base64 text into the session's buffer: the response a
// SASLServer gets is valid only during its Next.
func (s *Session) decode(text []byte) ([]byte, bool) {
	if !validBase64(text) {
		return nil, false
	}
	if len(text) == 0 {
		return []byte{}, true // an empty response, not none
	}
	n := base64.StdEncoding.DecodedLen(len(text))
	if cap(s.saslBuf) < n {
		s.saslBuf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(s.saslBuf[:n], text)
	if err != nil {
		return nil, false
	}
	return s.saslBuf[:n], true
}
