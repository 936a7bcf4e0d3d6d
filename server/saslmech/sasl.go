package saslmech

import (
	"errors"

	"github.com/emersion/go-sasl"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
)

// The mechanisms' shared part: which are offered, and the exchange that
// runs each one's server, all ending in the host's timed check (pop3d's
// is server/authflow.go).

// Config is what the mechanisms read of the server's configuration, set
// once before the server starts and not changed after.
type Config struct {
	// Hostname names the server in CRAM-MD5's challenges and NTLM's
	// CHALLENGE_MESSAGE.
	Hostname string
	// Mechanisms lists the mechanisms offered, upper case as Names
	// spells them; nil: each mechanism's default rule. Either way a
	// mechanism is offered only where it can work (see Offered).
	Mechanisms []string
	// OfferNTLM puts NTLM in the default offer (pop3d: under the
	// Exchange profiles, once ntlm_domain is set).
	OfferNTLM bool
	// NTLMDomain is the NetBIOS domain NTLM announces and accepts: at
	// most 15 ASCII letters, digits, '-' or '_', upper case; "": POP3KIT.
	// NTLMAllowV1 accepts NTLMv1 responses, which a captured exchange
	// lets anyone crack.
	NTLMDomain  string
	NTLMAllowV1 bool
	// TokenVerifier checks OAUTHBEARER's and XOAUTH2's bearer tokens;
	// nil: neither is offered.
	TokenVerifier TokenVerifier
	// Acceptor is GSSAPI's acceptor credential; nil: GSSAPI is not
	// offered.
	Acceptor *Acceptor
}

// offerRule says when a mechanism is offered without Config.Mechanisms.
type offerRule uint8

const (
	offerAlways     offerRule = iota // on every connection its other conditions allow
	offerOnTLS                       // only on TLS connections unless listed
	offerWithTokens                  // when a token verifier is configured
	offerIfListed                    // only when Config.Mechanisms lists it
	offerOnExchange                  // under the Exchange profiles once configured (Config.OfferNTLM)
)

// Mechanism describes one SASL mechanism the package serves, one row per
// mechanism: what a server checks its configuration against.
type Mechanism struct {
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
	// Config.Acceptor (RFC 4752 §3.2: not offered without one).
	Keytab bool
	// Clause cites the specifications; Doc says what it is.
	Clause string
	Doc    string
	// rule says when it is offered without Config.Mechanisms.
	rule offerRule
	// start returns the mechanism's server for exchange x.
	start func(x *exchange, name string) sasl.Server
}

// mechanismTable lists the mechanisms in the order they are offered:
// the stronger first, as clients pick the first they know.
var mechanismTable = []Mechanism{
	{Name: "GSSAPI", Keytab: true, rule: offerAlways, start: startGSSAPI,
		Clause: "RFC 4752; RFC 4121; MS-STANXPOP3 E0002", Doc: "Kerberos V5 tickets checked against gssapi_keytab; no security layer."},
	{Name: "SCRAM-SHA-256-PLUS", TLSOnly: true, rule: offerAlways, start: startSCRAM,
		Clause: "RFC 5802; RFC 7677; RFC 9266", Doc: "Salted challenge-response bound to the TLS channel (tls-exporter, tls-server-end-point)."},
	{Name: "SCRAM-SHA-256", rule: offerOnTLS, start: startSCRAM,
		Clause: "RFC 5802; RFC 7677", Doc: "Salted challenge-response: the password never crosses the wire."},
	{Name: "NTLM", rule: offerOnExchange, start: startNTLM,
		Clause: "MS-NLMP; MS-POP3; MS-STANXPOP3 E0002", Doc: "NTLMv2 challenge-response; needs a PLAIN or {NTLM} secret. Offered by the Exchange profiles once ntlm_domain is set."},
	{Name: "OAUTHBEARER", Plaintext: true, Tokens: true, rule: offerWithTokens, start: startOAuth,
		Clause: "RFC 7628", Doc: "An OAuth 2.0 bearer token, checked by the TokenVerifier."},
	{Name: "XOAUTH2", Plaintext: true, Tokens: true, rule: offerWithTokens, start: startOAuth,
		Clause: "Google XOAUTH2", Doc: "Google's older bearer-token format, checked like OAUTHBEARER."},
	{Name: "PLAIN", Plaintext: true, rule: offerAlways, start: startPlain,
		Clause: "RFC 4616", Doc: "User name and password in the clear."},
	{Name: "LOGIN", Plaintext: true, rule: offerAlways, start: startPlain,
		Clause: "draft-murchison-sasl-login", Doc: "User name and password in the clear, one challenge each."},
	{Name: "CRAM-MD5", rule: offerIfListed, start: startCRAM,
		Clause: "RFC 2195", Doc: "HMAC-MD5 of a challenge; needs a PLAIN or {CRAM-MD5} secret. Obsolete: off unless listed."},
}

// Names are the SASL mechanisms the package serves, in the order they
// are offered: for a configuration's help and its check.
func Names() []string {
	names := make([]string, len(mechanismTable))
	for i, m := range mechanismTable {
		names[i] = m.Name
	}
	return names
}

// Find returns the mechanism called name (upper case), and whether the
// package serves one.
func Find(name string) (Mechanism, bool) {
	if m := findMechanism(name); m != nil {
		return *m, true
	}
	return Mechanism{}, false
}

func findMechanism(name string) *Mechanism {
	for i := range mechanismTable {
		if mechanismTable[i].Name == name {
			return &mechanismTable[i]
		}
	}
	return nil
}

// Offered computes the mechanisms offered on a connection with or
// without TLS, where plaintext is or is not allowed: those Mechanisms
// lists (or, without a list, those whose default rule says so) that can
// work there. A server computes the four offers once, and offers none
// while it waits for TLS it requires.
func (c *Config) Offered(tls, plaintext bool) []string {
	var out []string
	for _, m := range mechanismTable {
		if (m.Plaintext && !plaintext) || (m.TLSOnly && !tls) || (m.Tokens && c.TokenVerifier == nil) || (m.Keytab && c.Acceptor == nil) {
			continue
		}
		if c.Mechanisms != nil {
			listed := false
			for _, n := range c.Mechanisms {
				listed = listed || n == m.Name
			}
			if !listed {
				continue
			}
		} else if m.rule == offerIfListed || (m.rule == offerOnTLS && !tls) ||
			(m.rule == offerOnExchange && !c.OfferNTLM) {
			continue
		}
		out = append(out, m.Name)
	}
	return out
}

// Start starts an exchange of mech, one of the host's offer, for
// pop3.AuthHandler's Auth: the runtime runs it (base64, the initial
// response, continuations, "*" cancel, line limits), and it ends in
// the host's Succeeded or Failed. The exchange implements
// pop3.SASLRefusal.
func (c *Config) Start(h Host, mech string) (pop3.SASLServer, error) {
	m := findMechanism(mech)
	if m == nil { // the core only passes mechanisms Mechanisms listed
		return nil, pop3.ErrUnknownMechanism
	}
	x := &exchange{h: h, cfg: c, mech: mech}
	x.inner = m.start(x, mech)
	return x, nil
}

// go-sasl's servers are pop3.SASLServers as they are: no adapter.
var _ pop3.SASLServer = sasl.NewPlainServer(nil)

// startPlain returns go-sasl's PLAIN or the package's LOGIN, both ending
// in the check of a user name and password that USER/PASS makes.
func startPlain(x *exchange, name string) sasl.Server {
	check := func(username, password string) error {
		x.name(username)
		if !x.admit() {
			return x.reject("bad user name")
		}
		ok, err := x.h.CheckPassword(x.user, []byte(password))
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

// exchange is one AUTH exchange: it runs a mechanism's server with the
// host's failed-login rules. A failure is answered, like USER/PASS's, at
// the arrival of the response that carried the credentials plus the delay
// and penalties, and counts toward the connection's cap.
type exchange struct {
	h     Host
	cfg   *Config
	mech  string
	inner sasl.Server
	user  string // the user the exchange named, normalised; "" until then
	// why is set by reject: the exchange failed, and the log says why.
	why string
	// reply is the failure's reply when it is not wrong credentials.
	reply *pop3.Error
	// down is set when the accounts could not be read at any step
	// (SCRAM's first message, say): the failure is ErrUnavailable.
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
	x.user = x.h.UserName(user)
	return x.user
}

// admit names the attempt's user to the host, before anything is
// checked. It is false when there is nothing to check: a name no user
// can have.
func (x *exchange) admit() bool {
	x.h.Admit(x.user)
	return account.CheckUserName(x.user) == nil
}

// lookup returns the account of x.user. An unknown user and unreadable
// accounts both return nil; the latter is remembered, so that the
// failure says [SYS/TEMP] rather than "invalid".
func (x *exchange) lookup() *account.Account {
	if account.CheckUserName(x.user) != nil {
		return nil
	}
	a, err := x.h.Lookup(x.user)
	if err != nil {
		x.down = true
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

// fail answers the failure through the host: ErrUnavailable once the
// accounts could not be read, whatever else went wrong.
func (x *exchange) fail(why string, reply *pop3.Error) error {
	if x.down {
		reply = ErrUnavailable
	}
	return x.h.Failed(x.user, why, reply)
}

// failNow answers the failure now (delay, penalties, the cap) and keeps
// the reply for the exchange's next step. It reports whether the exchange
// may go on to that step: only after wrong credentials, not when nothing
// could be checked.
func (x *exchange) failNow(why string) bool {
	x.reject(why)
	x.answered = x.fail(x.why, nil)
	return !x.down
}

// Refusal is the failure already answered while the exchange goes on (an
// error challenge), for the runtime's LoginPolicy when the client then
// cancels: the failed login stands.
func (x *exchange) Refusal() error { return x.answered }

func (x *exchange) Next(response []byte) ([]byte, bool, error) {
	if x.answered != nil {
		return nil, false, x.answered
	}
	// The attempt is timed from this response, the one that may carry
	// the credentials.
	x.h.Arrived()
	challenge, done, err := x.inner.Next(response)
	if x.answered != nil {
		if err != nil {
			return nil, false, x.answered
		}
		return challenge, false, nil // the error challenge; the reply comes next
	}
	if err != nil || x.why != "" {
		why := x.why
		if why == "" {
			why = x.mech + ": " + err.Error()
		}
		return nil, false, x.fail(why, x.reply)
	}
	if done {
		x.h.Succeeded(x.user)
	}
	return challenge, done, nil
}
