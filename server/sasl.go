package server

import (
	"errors"

	"github.com/emersion/go-sasl"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
)

// The SASL mechanisms: which are offered, and their servers, all ending
// in the same timed check as USER/PASS (authflow.go). The session's side
// is saslhost.go.

// offerRule says when a mechanism is offered without sasl_mechanisms.
type offerRule uint8

const (
	offerAlways     offerRule = iota // on every connection its other conditions allow
	offerOnTLS                       // only on TLS connections unless listed
	offerWithTokens                  // when a token verifier is configured
	offerIfListed                    // only when sasl_mechanisms lists it
	offerOnExchange                  // under the Exchange profiles once configured (ntlmByDefault)
)

// mechanism is one SASL mechanism pop3d serves, one row per mechanism.
type mechanism struct {
	Name string
	// Plaintext marks a mechanism whose exchange carries a credential an
	// eavesdropper can reuse (a password, a bearer token): it is offered
	// only where PlaintextAuth allows plaintext.
	Plaintext bool
	// TLSOnly marks a mechanism that needs the connection's TLS (channel
	// binding): it is never offered without TLS.
	TLSOnly bool
	// Tokens marks a mechanism that needs a TokenVerifier.
	Tokens bool
	// Keytab marks a mechanism that needs an acceptor credential,
	// gssapi_keytab (RFC 4752 §3.2: not offered without one).
	Keytab bool
	// Default says when it is offered without sasl_mechanisms.
	Default offerRule
	Clause  string
	Doc     string
	// start returns the mechanism's server for exchange x.
	start func(x *exchange, name string) sasl.Server
}

// mechanismTable lists the mechanisms in the order they are offered:
// the stronger first, as clients pick the first they know.
var mechanismTable = []mechanism{
	{Name: "GSSAPI", Keytab: true, Default: offerAlways, start: startGSSAPI,
		Clause: "RFC 4752; RFC 4121; MS-STANXPOP3 E0002", Doc: "Kerberos V5 tickets checked against gssapi_keytab; no security layer."},
	{Name: "SCRAM-SHA-256-PLUS", TLSOnly: true, Default: offerAlways, start: startSCRAM,
		Clause: "RFC 5802; RFC 7677; RFC 9266", Doc: "Salted challenge-response bound to the TLS channel (tls-exporter, tls-server-end-point)."},
	{Name: "SCRAM-SHA-256", Default: offerOnTLS, start: startSCRAM,
		Clause: "RFC 5802; RFC 7677", Doc: "Salted challenge-response: the password never crosses the wire."},
	{Name: "NTLM", Default: offerOnExchange, start: startNTLM,
		Clause: "MS-NLMP; MS-POP3; MS-STANXPOP3 E0002", Doc: "NTLMv2 challenge-response; needs a PLAIN or {NTLM} secret. Offered by the Exchange profiles once ntlm_domain is set."},
	{Name: "OAUTHBEARER", Plaintext: true, Tokens: true, Default: offerWithTokens, start: startOAuth,
		Clause: "RFC 7628", Doc: "An OAuth 2.0 bearer token, checked by the TokenVerifier."},
	{Name: "XOAUTH2", Plaintext: true, Tokens: true, Default: offerWithTokens, start: startOAuth,
		Clause: "Google XOAUTH2", Doc: "Google's older bearer-token format, checked like OAUTHBEARER."},
	{Name: "PLAIN", Plaintext: true, Default: offerAlways, start: startPlain,
		Clause: "RFC 4616", Doc: "User name and password in the clear."},
	{Name: "LOGIN", Plaintext: true, Default: offerAlways, start: startPlain,
		Clause: "draft-murchison-sasl-login", Doc: "User name and password in the clear, one challenge each."},
	{Name: "CRAM-MD5", Default: offerIfListed, start: startCRAM,
		Clause: "RFC 2195", Doc: "HMAC-MD5 of a challenge; needs a PLAIN or {CRAM-MD5} secret. Obsolete: off unless listed."},
}

// MechanismNames are the SASL mechanisms pop3d can offer, for
// --sasl-mechanisms' help.
func MechanismNames() []string {
	names := make([]string, len(mechanismTable))
	for i, m := range mechanismTable {
		names[i] = m.Name
	}
	return names
}

func findMechanism(name string) *mechanism {
	for i := range mechanismTable {
		if mechanismTable[i].Name == name {
			return &mechanismTable[i]
		}
	}
	return nil
}

// offer computes the mechanisms offered on a connection with or without
// TLS, where plaintext is or is not allowed.
func (c *Config) offer(tls, plaintext bool) []string {
	var out []string
	for _, m := range mechanismTable {
		if (m.Plaintext && !plaintext) || (m.TLSOnly && !tls) || (m.Tokens && c.TokenVerifier == nil) || (m.Keytab && c.gssapi == nil) {
			continue
		}
		if c.SASLMechanisms != nil {
			listed := false
			for _, n := range c.SASLMechanisms {
				listed = listed || n == m.Name
			}
			if !listed {
				continue
			}
		} else if m.Default == offerIfListed || (m.Default == offerOnTLS && !tls) ||
			(m.Default == offerOnExchange && !c.ntlmByDefault()) {
			continue
		}
		out = append(out, m.Name)
	}
	return out
}

// startPlain returns go-sasl's PLAIN or pop3d's LOGIN, both ending in the
// check of a user name and password that USER/PASS makes.
func startPlain(x *exchange, name string) sasl.Server {
	h := x.h
	check := func(username, password string) error {
		x.name(username)
		if !x.admit() {
			return x.reject("bad user name")
		}
		ok, err := h.verify(x.user, []byte(password))
		switch {
		case err != nil:
			x.reply = err
			return x.reject(err.Text)
		case !ok:
			return x.reject("wrong password or unknown user")
		}
		return nil
	}
	if name == "LOGIN" {
		return &loginServer{auth: check}
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			x.name(username)
			return x.reject("PLAIN: proxy authorization is not offered")
		}
		return check(username, password)
	})
}

// exchange is one AUTH exchange: it runs a mechanism's server with
// pop3d's failed-login rules. A failure is answered, like USER/PASS's, at
// the arrival of the response that carried the credentials plus the delay
// and penalties, and counts toward the connection's cap.
type exchange struct {
	h     *session
	mech  string
	inner sasl.Server
	user  string // the user the exchange named, normalised; "" until then
	// why is set by reject: the exchange failed, and the log says why.
	why string
	// reply is the failure's reply when it is not errLogin.
	reply *pop3.Error
	// down is set when the accounts could not be read at an earlier
	// step (SCRAM's first message): the failure is [SYS/TEMP].
	down bool
	// answered is a failure already answered (delay waited, penalties
	// and cap counted) while the exchange goes on, as OAUTHBEARER's
	// error challenge does (RFC 7628 §3.2.2): the next step returns it.
	answered error
}

// errRejected is what a mechanism's server returns after reject.
var errRejected = errors.New("SASL exchange rejected")

// name records the user name the client gave, normalised as every login
// path does.
func (x *exchange) name(user string) string {
	x.user = x.h.userName(user)
	return x.user
}

// admit waits for the attempt's turn (authflow.go), before anything is
// checked. It is false when there is nothing to check: a name no user can
// have, or no turn came in time.
func (x *exchange) admit() bool {
	h := x.h
	may := h.admit(&h.saslAt, x.user)
	if x.down {
		h.saslAt.passwdDown = true
	}
	return account.CheckUserName(x.user) == nil && may
}

// lookup returns the account of x.user. An unknown user and an unreadable
// passwd-file both return nil; the latter is remembered, so that the
// failure says [SYS/TEMP] rather than "invalid".
func (x *exchange) lookup() *account.Account {
	if account.CheckUserName(x.user) != nil {
		return nil
	}
	a, ok, err := x.h.srv.users.Lookup(x.user)
	if err != nil {
		x.down = true
		if x.h.at != nil {
			x.h.at.passwdDown = true
		}
		return nil
	}
	if !ok {
		return nil
	}
	return a
}

// reject marks the exchange failed for the log's reason why.
func (x *exchange) reject(why string) error {
	if x.why == "" {
		x.why = x.mech + ": " + why
	}
	return errRejected
}

// failNow answers the failure now (delay, penalties, the cap) and keeps
// the reply for the exchange's next step. It reports whether the exchange
// may go on to that step: not when the reply closes the connection or is
// not the plain failed login.
func (x *exchange) failNow(why string) bool {
	x.reject(why)
	h := x.h
	x.answered = h.failed(&h.saslAt, x.user, x.why, errLogin)
	return x.answered == errLogin
}

// Refusal is the failure already answered while the exchange goes on (an
// error challenge), for the runtime's LoginPolicy when the client then
// cancels: the failed login stands.
func (x *exchange) Refusal() error { return x.answered }

func (x *exchange) Next(response []byte) ([]byte, bool, error) {
	h := x.h
	if x.answered != nil {
		return nil, false, x.answered
	}
	// The attempt is timed from this response, the one that may carry
	// the credentials.
	h.saslAt = h.arrive()
	challenge, done, err := x.inner.Next(response)
	if x.answered != nil {
		if err != nil {
			return nil, false, x.answered
		}
		return challenge, false, nil // the error challenge; the reply comes next
	}
	if err != nil || x.why != "" {
		reply := errLogin
		if x.reply != nil {
			reply = x.reply
		}
		why := x.why
		if why == "" {
			why = x.mech + ": " + err.Error()
		}
		if x.down {
			h.saslAt.passwdDown = true
		}
		return nil, false, h.failed(&h.saslAt, x.user, why, reply)
	}
	if done {
		h.saslUser = x.user
		h.succeeded(&h.saslAt)
	}
	return challenge, done, nil
}
