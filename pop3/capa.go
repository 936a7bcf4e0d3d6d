package pop3

import "strconv"

// CapaInfo carries what only the server knows for the CAPA reply; a
// CapaHandler adds to it.
type CapaInfo struct {
	// Plaintext: USER/PASS is allowed on this connection.
	Plaintext bool
	// SASL lists the mechanisms AUTH accepts here; none leaves SASL out.
	SASL []string
	// LoginDelay is the LOGIN-DELAY in seconds; 0 leaves it out.
	LoginDelay int
	// Expire is the EXPIRE value ("NEVER" or days); empty leaves it out.
	Expire string
	// Implementation names the server; empty leaves it out.
	Implementation string
	// STLS: TLS is configured and not active yet.
	STLS bool
	// Lines are lines of the server's own, written after the table's.
	Lines      []string
	afterLogin bool // past AUTHORIZATION: commands valid only before login are not announced
}

// serverTags are the CAPA tags only the server knows when to announce
// (spec.Capability.When "server"), from CapaInfo.
var serverTags = []string{"USER", "SASL", "LOGIN-DELAY", "EXPIRE", "IMPLEMENTATION", "STLS"}

// ServerTags returns the CAPA tags a table may mark as the server's to
// announce: the runtime writes each from CapaInfo.
func ServerTags() []string { return append([]string(nil), serverTags...) }

// writeCapa writes the CAPA reply (RFC 2449 §5) from the capability rows,
// the session's dialect and state, and what the server says in c. A tag
// that advertises a command is left out where the command is off or not
// served, and, for a command valid only before login, after login.
func (s *Session) writeCapa(c *CapaInfo) {
	w := s.w
	w.Begin("Capability list follows")
	for _, r := range s.p.Capabilities {
		switch r.Tag {
		case "USER":
			if c.Plaintext {
				w.Line("USER")
			}
			continue
		case "SASL":
			if len(c.SASL) > 0 {
				w.Words("SASL", c.SASL...)
			}
			continue
		case "LOGIN-DELAY":
			if c.LoginDelay > 0 {
				w.Words("LOGIN-DELAY", strconv.Itoa(c.LoginDelay))
			}
			continue
		case "EXPIRE":
			if c.Expire != "" {
				w.Words("EXPIRE", c.Expire)
			}
			continue
		case "IMPLEMENTATION":
			if c.Implementation != "" {
				w.Words("IMPLEMENTATION", c.Implementation)
			}
			continue
		case "STLS":
			if c.STLS {
				w.Line("STLS")
			}
			continue
		}
		if r.When != nil && !r.When(s.d) || !s.announces(r.Tag, c.afterLogin) {
			continue
		}
		w.Line(r.Line)
	}
	for _, l := range c.Lines {
		w.Line(l)
	}
	w.End()
}

// announces reports whether every command that tag advertises is on in
// the session and, after login, valid after it.
func (s *Session) announces(tag string, afterLogin bool) bool {
	for i := 1; i < len(s.p.Commands); i++ {
		r := &s.p.Commands[i]
		if r.Capability != tag {
			continue
		}
		if s.off&(1<<i) != 0 || afterLogin && r.In == StateAuthorization {
			return false
		}
	}
	return true
}
