package server

import (
	"github.com/emersion/go-sasl"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// The SASL side of a session (pop3gen.AuthHandler): which mechanisms are
// offered, and their servers, all ending in the same timed check as
// USER/PASS.

// mechanisms are the SASL mechanisms offered where plaintext is allowed.
var mechanisms = []string{"PLAIN", "LOGIN"}

// Mechanisms are the SASL mechanisms offered now: PLAIN and LOGIN, both
// plaintext-equivalent, where plaintext logins are allowed and TLS is not
// required first; none otherwise. CAPA's SASL line and a bare AUTH list
// the same, and the core refuses any other.
func (h *session) Mechanisms() []string {
	if !h.conn.Session().PlaintextAllowed() || h.tlsRequired() {
		return nil
	}
	return mechanisms
}

// Auth starts a SASL exchange. The core runs it (base64, the initial
// response, continuations, "*" cancel, line limits); pop3d supplies the
// mechanism servers: go-sasl's PLAIN and its own LOGIN, both ending in
// the same check of user name and password.
func (h *session) Auth(mech string) (pop3gen.SASLServer, error) {
	h.saslUser, h.saslErr = "", nil
	// check is where both mechanisms end: the user name and password.
	check := func(username, password string) error {
		username = h.userName(username)
		h.saslUser = username
		h.admit(&h.saslAt, username)
		if CheckUserName(username) != nil {
			h.saslErr = errLogin
			return h.saslErr
		}
		ok, err := h.verify(username, []byte(password))
		switch {
		case err != nil:
			h.saslErr = errAuthQueue
		case !ok:
			h.saslErr = errLogin
		}
		return h.saslErr
	}
	var inner sasl.Server
	if mech == "LOGIN" {
		inner = &loginServer{auth: check}
	} else {
		inner = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				h.saslErr = errLogin // no proxy authorization
				return h.saslErr
			}
			return check(username, password)
		})
	}
	return timedSASL{h: h, inner: inner}, nil
}

// timedSASL runs a mechanism's server with pop3d's failed-login rules: a
// failure is answered, like USER/PASS's, at the response's arrival plus
// the delay and penalties, and counts toward the connection's cap.
type timedSASL struct {
	h     *session
	inner sasl.Server
}

func (t timedSASL) Next(response []byte) ([]byte, bool, error) {
	h := t.h
	// The attempt is timed from this response, the one that may carry
	// the credentials.
	h.saslAt = h.arrive()
	challenge, done, err := t.inner.Next(response)
	if err != nil || h.saslErr != nil {
		reply, why := errLogin, "SASL"
		if h.saslErr == errAuthQueue {
			reply, why = errAuthQueue, "verification queue full"
		}
		return nil, false, h.failed(&h.saslAt, h.saslUser, why, reply)
	}
	if done {
		h.succeeded(&h.saslAt)
	}
	return challenge, done, nil
}

// Authenticated opens the maildrop of the user the exchange named.
func (h *session) Authenticated() (pop3gen.Maildrop, error) {
	return h.open(h.saslUser)
}

