package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// The SASL side of a session (pop3gen.AuthHandler): the mechanisms are
// package saslmech's, configured from pop3d's settings here; the session
// is their saslmech.Host, each exchange ending in the same timed check
// as USER/PASS (authflow.go).

var _ saslmech.Host = (*session)(nil)

// checkSASL checks sasl_mechanisms and the OAuth settings, builds the
// JWKS verifier when oauth_jwks is set and no TokenVerifier was given, so
// that a bad key file is reported at start, and configures the
// mechanisms (fillDefaults adds the host name).
func (c *Config) checkSASL() error {
	if err := c.checkGSSAPI(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, name := range c.SASLMechanisms {
		name = strings.ToUpper(strings.TrimSpace(name))
		c.SASLMechanisms[i] = name
		m, ok := saslmech.Find(name)
		if !ok {
			return fmt.Errorf("sasl mechanism %q is not one pop3d offers (%s)", name, strings.Join(saslmech.Names(), ", "))
		}
		if seen[name] {
			return fmt.Errorf("sasl mechanism %q listed twice", name)
		}
		seen[name] = true
		if m.Tokens && c.OAuthJWKS == "" && c.TokenVerifier == nil {
			return fmt.Errorf("sasl mechanism %s needs --oauth-jwks (a JWKS file to check tokens with)", name)
		}
		if m.Keytab && c.sasl.Acceptor == nil {
			return fmt.Errorf("sasl mechanism %s needs --gssapi-keytab (the service principal's keys)", name)
		}
		if m.TLSOnly && c.TLSCert == "" {
			return fmt.Errorf("sasl mechanism %s needs TLS: give --tls-cert and --tls-key", name)
		}
	}
	if c.OAuthJWKS != "" && c.TokenVerifier == nil {
		if c.OAuthIssuer == "" || c.OAuthAudience == "" {
			return errors.New("--oauth-jwks needs --oauth-issuer and --oauth-audience: a token for another issuer or service must not log in")
		}
		v, err := saslmech.NewJWKSVerifier(saslmech.JWKSConfig{Path: c.OAuthJWKS, Issuer: c.OAuthIssuer, Audience: c.OAuthAudience, UserClaim: c.OAuthUserClaim, Domains: c.OAuthDomains})
		if err != nil {
			return fmt.Errorf("oauth jwks: %v", err)
		}
		c.TokenVerifier = v
	}
	c.sasl.Mechanisms, c.sasl.OfferNTLM = c.SASLMechanisms, c.ntlmByDefault()
	c.sasl.NTLMDomain, c.sasl.NTLMAllowV1 = c.NTLMDomain, c.NTLMAllowV1
	c.sasl.TokenVerifier = c.TokenVerifier
	for tls := range 2 {
		for plain := range 2 {
			c.saslOffer[tls<<1|plain] = c.sasl.Offered(tls == 1, plain == 1)
		}
	}
	return nil
}

// checkGSSAPI reads the keytab when gssapi_keytab is set and checks that
// it holds the service principal's key: RFC 4752 §3.2 offers GSSAPI only
// with an acceptor credential.
func (c *Config) checkGSSAPI() error {
	c.sasl.Acceptor = nil
	if c.GSSAPIKeytab == "" {
		if c.GSSAPIServicePrincipal != "" || c.GSSAPIRealm != "" {
			return errors.New("gssapi_service_principal and gssapi_realm need gssapi_keytab")
		}
		return nil
	}
	spn := c.GSSAPIServicePrincipal
	if spn == "" {
		host := c.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		spn = "pop/" + host
	}
	a, err := saslmech.NewAcceptor(c.GSSAPIKeytab, spn, c.GSSAPIRealm)
	if err != nil {
		return fmt.Errorf("gssapi: %v", err)
	}
	c.sasl.Acceptor = a
	return nil
}

// checkNTLM checks ntlm_domain: a NetBIOS name (at most 15 letters,
// digits, '-' or '_'), kept upper case.
func (c *Config) checkNTLM() error {
	d := c.NTLMDomain
	if len(d) > 15 {
		return fmt.Errorf("ntlm domain %q: a NetBIOS name has at most 15 characters", d)
	}
	for i := 0; i < len(d); i++ {
		if ch := d[i]; !('A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
			return fmt.Errorf("ntlm domain %q: use letters, digits, '-' and '_'", d)
		}
	}
	c.NTLMDomain = strings.ToUpper(d)
	return nil
}

// ntlmByDefault says whether NTLM is in the offer without
// sasl_mechanisms: under the Exchange profiles, which offer it
// (MS-STANXPOP3 E0002), once ntlm_domain says NTLM is configured. Not
// before: clients such as curl pick NTLM over PLAIN when offered, and an
// account with a one-way hash (the default scheme) cannot answer it, so
// offering it unasked would lock those users out of such clients.
func (c *Config) ntlmByDefault() bool {
	return c.NTLMDomain != "" && strings.HasPrefix(strings.ToLower(c.Profile), "exchange")
}

// OfferedMechanisms are the SASL mechanisms offered on a connection with
// or without TLS where plaintext logins are or are not allowed, as Check
// computed them: Mechanisms' one source.
func (c *Config) OfferedMechanisms(tls, plaintext bool) []string {
	i := 0
	if tls {
		i |= 2
	}
	if plaintext {
		i |= 1
	}
	return c.saslOffer[i]
}

// Mechanisms are the SASL mechanisms offered now, as the configuration,
// the connection's TLS and PlaintextAuth say; none while RequireTLS waits
// for TLS. CAPA's SASL line and a bare AUTH list the same, and the core
// refuses any other: this is the one place that decides.
func (h *session) Mechanisms() []string {
	if h.tlsRequired() {
		return nil
	}
	return h.srv.cfg.OfferedMechanisms(h.conn.TLS() != nil, h.conn.Session().PlaintextAllowed())
}

// IsPlaintext tells the core which mechanisms carry a credential an
// eavesdropper could replay (PLAIN, LOGIN, the bearer tokens), from the
// mechanism table: the core neither lists nor runs them where plaintext
// logins are not allowed.
func (h *session) IsPlaintext(mech string) bool {
	m, ok := saslmech.Find(mech)
	return ok && m.Plaintext
}

// Auth starts a SASL exchange. The core runs it (base64, the initial
// response, continuations, "*" cancel, line limits); saslmech supplies
// the mechanism servers, each ending in the session's timed check.
func (h *session) Auth(mech string) (pop3.SASLServer, error) {
	h.saslUser = ""
	x, err := h.srv.cfg.sasl.Start(h, mech)
	if err == nil {
		h.mech = mech // for the login's log line and metrics
	}
	return x, err
}

// Authenticated opens the maildrop of the user the exchange named.
func (h *session) Authenticated() (pop3.Maildrop, error) {
	return h.open(h.saslUser)
}

// Lookup is the user's account, nil if there is none.
func (h *session) Lookup(user string) (*account.Account, error) {
	a, ok, err := h.srv.users.Lookup(user)
	if err != nil || !ok {
		return nil, err
	}
	return a, nil
}

// CheckPassword checks a PLAIN or LOGIN password as USER/PASS does.
func (h *session) CheckPassword(user string, password []byte) (bool, *pop3.Error) {
	return h.verify(user, password)
}

// Arrived starts the attempt of the SASL response that arrived now.
func (h *session) Arrived() { h.saslAt = h.arrive() }

// Admit names the user of the SASL response's attempt.
func (h *session) Admit(user string) { h.admit(&h.saslAt, user) }

// Failed answers the SASL response's failed attempt: reply nil is a
// wrong credential; saslmech.ErrUnavailable (errPasswdDown) says the
// passwd-file could not be read, so nothing was checked.
func (h *session) Failed(user, why string, reply *pop3.Error) error {
	switch reply {
	case nil:
		reply = errLogin
	case errPasswdDown:
		h.saslAt.passwdDown = true
	}
	return h.failed(&h.saslAt, user, why, reply)
}

// Succeeded ends the SASL response's attempt: the exchange proved it is
// user's, whose maildrop Authenticated opens.
func (h *session) Succeeded(user string) {
	h.saslUser = user
	h.succeeded(&h.saslAt)
}

// TLS is the connection's TLS state, nil without TLS.
func (h *session) TLS() *tls.ConnectionState { return h.conn.TLS() }

// RemoteAddr is the client's address.
func (h *session) RemoteAddr() net.Addr { return h.conn.RemoteAddr() }

// Context ends with the connection or when the server shuts down.
func (h *session) Context() context.Context { return h.conn.Context() }

// Certificate is the certificate the server presents on this connection:
// the one configured when it began (a reload changes the certificate for
// later connections only).
func (h *session) Certificate() *x509.Certificate {
	if h.tlsc == nil || len(h.tlsc.Certificates) == 0 {
		return nil
	}
	c := h.tlsc.Certificates[0]
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}
