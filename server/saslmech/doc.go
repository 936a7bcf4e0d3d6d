// Package saslmech is pop3kit's SASL mechanisms as a package that any
// server on the runtime (package pop3) can serve AUTH with: GSSAPI
// (Kerberos V5, RFC 4752), SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC
// 5802, 7677, 9266), NTLM (MS-NLMP), OAUTHBEARER and XOAUTH2 (RFC 7628),
// PLAIN, LOGIN and CRAM-MD5, checked against the accounts of package
// account. pop3d (package server) is one such server.
//
// A server fills a Config once, before it starts: its host name, the
// mechanisms to offer (nil: each one's default), NTLM's domain, a
// TokenVerifier for the bearer tokens (NewJWKSVerifier builds one from a
// JWKS file), an Acceptor for GSSAPI (NewAcceptor reads a keytab). Find
// and Names describe the mechanisms, to check a configuration against.
// Its connection handler implements Host, which gives an exchange the
// accounts, the connection and the server's failed-login rules, and
// serves pop3.AuthHandler in a few lines:
//
//	func (h *handler) Mechanisms() []string { // also Host's
//		return h.sasl.Offered(h.conn.TLS() != nil, h.conn.Session().PlaintextAllowed())
//	}
//
//	func (h *handler) IsPlaintext(mech string) bool { // pop3.PlaintextMechanisms
//		m, ok := saslmech.Find(mech)
//		return ok && m.Plaintext
//	}
//
//	func (h *handler) Auth(mech string) (pop3.SASLServer, error) {
//		return h.sasl.Start(h, mech)
//	}
//
//	func (h *handler) Authenticated() (pop3.Maildrop, error) {
//		return h.open(h.user) // the user Succeeded named
//	}
//
// The runtime runs each exchange (base64, the initial response,
// continuations, "*" cancel, line limits); the mechanism parses and
// checks the messages; every exchange ends in the host, in Succeeded with
// the user it proved or in Failed with why and the reply. The host
// applies its rules there: pop3d answers a failure at the arrival of the
// response that carried the credentials (Arrived) plus its delay, and
// counts it against the address and the user name (Admit). No reply says
// whether a user exists: an unknown user fails as wrong credentials do.
//
// The parsers of the client messages (ParseNTLMAuthenticate,
// ParseGSSToken, ParseGSSWrap, ParseOAuthBearer, ParseXOAUTH2) are
// exported for fuzzing and for tests that build such messages.
package saslmech
