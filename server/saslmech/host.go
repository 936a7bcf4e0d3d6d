package saslmech

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
)

// Host is the session an exchange runs in: what a mechanism needs of the
// server around it. pop3d's session is one; another server on the runtime
// implements it on its own handler. The exchange calls it from the
// session's goroutine only.
type Host interface {
	// UserName returns a name the client gave, normalised as every
	// login path of the server does (pop3d: UserNameCase).
	UserName(name string) string
	// Lookup returns user's account: nil, nil when there is no such
	// user, an error when the accounts cannot be read now.
	Lookup(user string) (*account.Account, error)
	// CheckPassword checks user's password for PLAIN and LOGIN, as the
	// server's USER/PASS does. A non-nil *pop3.Error says nothing was
	// checked (no verification slot, accounts unreadable); it is the
	// failure's reply.
	CheckPassword(user string, password []byte) (bool, *pop3.Error)
	// Arrived says a response that may carry credentials arrived: the
	// attempt is timed from now.
	Arrived()
	// Admit names the user whose credentials that response carries,
	// before they are checked, so that a failure counts against the
	// name as well as the address (as PASS after USER does). An
	// exchange that fails before it knows the user does not call it.
	Admit(user string)
	// Failed answers a failed attempt and returns the reply the client
	// is to get. user is the name the exchange named ("" if none), why
	// says what failed, for the log ("NTLM: wrong MIC"), and reply is
	// nil for wrong credentials, ErrUnavailable when the accounts could
	// not be read, or what CheckPassword returned. The host waits here
	// if a failure is answered late (pop3d: its arrival plus the
	// delay); the exchange goes on after it (OAUTHBEARER's error
	// challenge) only after wrong credentials.
	Failed(user, why string, reply *pop3.Error) error
	// Succeeded says the exchange proved it is user's.
	Succeeded(user string)
	// Mechanisms are the mechanisms offered on the connection now:
	// SCRAM asks whether SCRAM-SHA-256-PLUS is among them.
	Mechanisms() []string
	// TLS is the connection's TLS state, nil without TLS.
	TLS() *tls.ConnectionState
	// Certificate is the certificate the server presented on this
	// connection (tls-server-end-point binds to it), nil if none.
	Certificate() *x509.Certificate
	// RemoteAddr is the client's address: a Kerberos ticket's
	// addresses are checked against it.
	RemoteAddr() net.Addr
	// Context ends with the connection; a TokenVerifier is given it.
	Context() context.Context
}

// ErrUnavailable is the reply Host.Failed is given when the exchange
// could not read the accounts (Host.Lookup failed): nothing was checked,
// and the client should try again later.
var ErrUnavailable = pop3.NewError(pop3.CodeSysTemp, "the account list cannot be read now, try again later")
