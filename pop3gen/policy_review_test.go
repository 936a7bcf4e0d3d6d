package pop3gen

// The login policy against what a security review found in it: each test
// failed on the policy as it first landed.

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
)

// base64Of is s in base64, as a SASL line carries it.
func base64Of(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// errChallengeHandler offers XTOKEN, which answers a bad token with an
// error challenge first and the refusal on the next step, as RFC 7628
// §3.2.2 has OAUTHBEARER (and pop3d's oauthServer) do.
type errChallengeHandler struct{ *recorder }

func (h errChallengeHandler) Mechanisms() []string { return []string{"XTOKEN"} }
func (h errChallengeHandler) Auth(string) (pop3.SASLServer, error) {
	return &errChallengeSASL{}, nil
}

type errChallengeSASL struct{ failed bool }

// Refusal says that the token was refused, from the error challenge on.
func (s *errChallengeSASL) Refusal() error {
	if s.failed {
		return errBadLogin
	}
	return nil
}

func (s *errChallengeSASL) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case s.failed:
		return nil, false, errBadLogin // the verdict, one step late
	case resp == nil:
		return nil, false, nil
	case string(resp) == "good":
		return nil, true, nil
	}
	s.failed = true
	return []byte(`{"status":"invalid_token"}`), false, nil
}

// TestLoginPolicyCancelAfterRefusal: a client that cancels ("*") after
// the error challenge of a refused token (RFC 7628 §3.2.2; pop3d's
// OAUTHBEARER and XOAUTH2) has failed a login all the same: it counts
// toward MaxFailures and against the address.
func TestLoginPolicyCancelAfterRefusal(t *testing.T) {
	const delay = 50 * time.Millisecond
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.LoginPolicy = pop3.LoginPolicy{FailDelay: delay, PenaltyMax: 8 * delay, MaxFailures: 3}
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) { return errChallengeHandler{newRecorder()}, nil }
	})
	c := rt.dial()
	c.Line()
	closedAt := 0
	for i := 1; i <= 6; i++ {
		r := c.Cmd("AUTH XTOKEN " + base64Of("bad"))
		require.True(t, strings.HasPrefix(r, "+ "), "attempt %d: %q", i, r)
		r = c.Cmd("*")
		require.True(t, strings.HasPrefix(r, "-ERR"), r)
		_ = c.C.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.R.Peek(1); err != nil && !isTimeout(err) {
			closedAt = i
			break
		}
		_ = c.C.SetDeadline(time.Now().Add(10 * time.Second))
	}
	assert.Equal(t, 3, closedAt, "the third refused token should close the connection (MaxFailures)")
	// Six refusals from the address: its next login should wait a penalty.
	d := rt.dial()
	d.Line()
	_, took := login(d, "alice", "secret")
	assert.GreaterOrEqual(t, took, 4*delay, "refused tokens should cost the address a penalty")
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// slowPlain is PLAIN sent without an initial response: "alice" costs a
// hash (hashTime), any other name is refused at once.
type slowPlainHandler struct {
	*recorder
	hashTime time.Duration
}

func (h slowPlainHandler) Auth(string) (pop3.SASLServer, error) {
	return slowPlainSASL{h.hashTime}, nil
}

type slowPlainSASL struct{ hash time.Duration }

func (s slowPlainSASL) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return nil, false, nil
	}
	if strings.Contains(string(resp), "alice") {
		time.Sleep(s.hash)
	}
	return nil, false, errBadLogin
}

// TestLoginPolicyDelayFromCredentials: the failure delay runs from the
// arrival of the step that carried the credentials, not from AUTH's turn:
// a client that waits FailDelay before it answers "+ " still cannot time
// the check (whether the user exists, how long the hash takes).
func TestLoginPolicyDelayFromCredentials(t *testing.T) {
	const delay = 200 * time.Millisecond
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.LoginPolicy = pop3.LoginPolicy{FailDelay: delay, PenaltyMax: -1, MaxFailures: -1}
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) {
			return slowPlainHandler{newRecorder(), 100 * time.Millisecond}, nil
		}
	})
	try := func(user string) time.Duration {
		c := rt.dial()
		c.Line()
		require.True(t, strings.HasPrefix(c.Cmd("AUTH PLAIN"), "+"))
		time.Sleep(delay + 50*time.Millisecond)
		start := time.Now()
		r := c.Cmd(base64Of("\x00" + user + "\x00wrong"))
		require.True(t, strings.HasPrefix(r, "-ERR"), r)
		return time.Since(start)
	}
	nobody, alice := try("nobody"), try("alice")
	t.Logf("unknown user answered in %v, existing user in %v", nobody, alice)
	assert.GreaterOrEqual(t, nobody, delay, "a refused credential step should be answered FailDelay after it arrived")
	assert.GreaterOrEqual(t, alice, delay)
}

// plainErrHandler's SASL refuses with a plain error, as go-sasl servers'
// authenticators commonly do ("a go-sasl server is one as it is").
type plainErrHandler struct{ *recorder }

func (h plainErrHandler) Auth(string) (pop3.SASLServer, error) { return plainErrSASL{}, nil }

type plainErrSASL struct{}

func (plainErrSASL) Next(resp []byte) ([]byte, bool, error) {
	return nil, false, errors.New("invalid credentials")
}

// TestLoginPolicyPlainErrorIsAVerdict: a refusal that is not a
// *pop3.Error (a go-sasl authenticator's) gets the failure delay, as any
// refusal does: the policy fails closed.
func TestLoginPolicyPlainErrorIsAVerdict(t *testing.T) {
	const delay = 200 * time.Millisecond
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.LoginPolicy = pop3.LoginPolicy{FailDelay: delay, PenaltyMax: -1, MaxFailures: -1}
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) { return plainErrHandler{newRecorder()}, nil }
	})
	c := rt.dial()
	c.Line()
	start := time.Now()
	r := c.Cmd("AUTH PLAIN " + base64Of("\x00alice\x00wrong"))
	took := time.Since(start)
	require.True(t, strings.HasPrefix(r, "-ERR"), r)
	assert.GreaterOrEqual(t, took, delay, "a refusal the runtime cannot classify should get the failure delay (%q)", r)
}

// anyPass logs anyone in by USER/PASS (its own user each), with no Owner.
type anyPass struct{ *recorder }

func (h anyPass) User(w *pop3.Writer, arg []byte) error { return nil }
func (h anyPass) Pass(user, secret []byte) (pop3.Maildrop, error) {
	return &memDrop{bodies: recorderBodies}, nil
}

// TestMaxSessionsPerUserFoldsASCIIOnly: without an Owner the runtime
// counts USER's name as UserNameCase=lower reads it, ASCII only (Dovecot's
// %Lu, as pop3d does): "\u212Aate" (KELVIN SIGN) is another account, and
// its sessions do not lock kate out.
func TestMaxSessionsPerUserFoldsASCIIOnly(t *testing.T) {
	v := RFC1939()
	v.UserNameCase = pop3.UserNameCaseLower
	rt := newRuntime(t, v, func(s *pop3.Server) {
		s.MaxSessionsPerUser = 1
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) { return anyPass{newRecorder()}, nil }
	})
	a := rt.dial()
	a.Line()
	a.Cmd("UTF8")
	require.True(t, strings.HasPrefix(a.Cmd("USER \u212Aate"), "+OK"))
	require.True(t, strings.HasPrefix(a.Cmd("PASS x"), "+OK"))
	k := rt.dial()
	k.Line()
	require.True(t, strings.HasPrefix(k.Cmd("USER kate"), "+OK"))
	assert.True(t, strings.HasPrefix(k.Cmd("PASS x"), "+OK"), "kate's first session must not be refused by another account's")
}
