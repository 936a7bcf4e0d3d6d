package saslmech_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdg-go/scram"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// errWrong is the fake host's reply to wrong credentials.
var errWrong = pop3.NewError(pop3.CodeAuth, "wrong")

// failure is one call of Host.Failed.
type failure struct {
	user, why string
	reply     *pop3.Error
}

// host is a Host with accounts in memory, recording what an exchange
// tells it: the contract another server on the runtime implements.
type host struct {
	cfg      *saslmech.Config
	accounts map[string]string // user: passwd-file field
	down     bool              // Lookup and CheckPassword fail
	arrived  int
	admitted []string
	failed   []failure
	proved   string
}

var _ saslmech.Host = (*host)(nil)

func (h *host) UserName(name string) string { return name }

func (h *host) Lookup(user string) (*account.Account, error) {
	if h.down {
		return nil, errors.New("accounts unreadable")
	}
	f, ok := h.accounts[user]
	if !ok {
		return nil, nil
	}
	return account.ParseAccount(user + ":" + f)
}

func (h *host) CheckPassword(user string, password []byte) (bool, *pop3.Error) {
	a, err := h.Lookup(user)
	if err != nil {
		return false, saslmech.ErrUnavailable
	}
	return a != nil && a.Verify(password), nil
}

func (h *host) Arrived()          { h.arrived++ }
func (h *host) Admit(user string) { h.admitted = append(h.admitted, user) }
func (h *host) Failed(user, why string, reply *pop3.Error) error {
	h.failed = append(h.failed, failure{user, why, reply})
	if reply == nil {
		return errWrong
	}
	return reply
}
func (h *host) Succeeded(user string)          { h.proved = user }
func (h *host) Mechanisms() []string           { return h.cfg.Offered(false, true) }
func (h *host) TLS() *tls.ConnectionState      { return nil }
func (h *host) Certificate() *x509.Certificate { return nil }
func (h *host) RemoteAddr() net.Addr           { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 110} }
func (h *host) Context() context.Context       { return context.Background() }

// newHost returns a host with alice, whose password is "secret".
func newHost(t *testing.T, cfg *saslmech.Config) *host {
	f, err := account.HashPassword("PLAIN", "secret")
	require.NoError(t, err)
	return &host{cfg: cfg, accounts: map[string]string{"alice": f}}
}

// TestHostPlain: an exchange times the attempt from the response, names
// the user before the check, and ends in Succeeded or in Failed with the
// log's reason and no reply of its own for wrong credentials.
func TestHostPlain(t *testing.T) {
	cfg := &saslmech.Config{Hostname: "pop3kit.test"}
	h := newHost(t, cfg)
	x, err := cfg.Start(h, "PLAIN")
	require.NoError(t, err)
	_, done, err := x.Next([]byte("\x00alice\x00secret"))
	require.NoError(t, err)
	assert.True(t, done)
	assert.Equal(t, "alice", h.proved)
	assert.Equal(t, 1, h.arrived)
	assert.Equal(t, []string{"alice"}, h.admitted)
	assert.Empty(t, h.failed)

	h = newHost(t, cfg)
	x, _ = cfg.Start(h, "PLAIN")
	_, _, err = x.Next([]byte("\x00alice\x00guess"))
	assert.Equal(t, errWrong, err)
	assert.Equal(t, []failure{{"alice", "PLAIN: wrong password or unknown user", nil}}, h.failed)
	assert.Empty(t, h.proved)

	h = newHost(t, cfg)
	h.down = true
	x, _ = cfg.Start(h, "LOGIN")
	for _, r := range []string{"alice", "secret"} {
		_, _, err = x.Next([]byte(r))
	}
	assert.Equal(t, saslmech.ErrUnavailable, err, "CheckPassword's reply")
	require.Len(t, h.failed, 1)
	assert.Equal(t, saslmech.ErrUnavailable, h.failed[0].reply)

	_, err = cfg.Start(h, "DIGEST-MD5")
	assert.Equal(t, pop3.ErrUnknownMechanism, err)
}

// TestHostAccountsDown: accounts that could not be read at one step make
// the exchange's failure ErrUnavailable at a later one (SCRAM reads them
// at its first message and fails at the proof).
func TestHostAccountsDown(t *testing.T) {
	cfg := &saslmech.Config{Mechanisms: []string{"SCRAM-SHA-256"}}
	h := newHost(t, cfg)
	h.down = true
	x, err := cfg.Start(h, "SCRAM-SHA-256")
	require.NoError(t, err)
	c, err := scram.SHA256.NewClient("alice", "secret", "")
	require.NoError(t, err)
	conv := c.NewConversation()
	first, err := conv.Step("")
	require.NoError(t, err)
	sfirst, done, err := x.Next([]byte(first))
	require.NoError(t, err, "a stand-in server-first message")
	require.False(t, done)
	final, err := conv.Step(string(sfirst))
	require.NoError(t, err)
	_, _, err = x.Next([]byte(final))
	assert.Equal(t, saslmech.ErrUnavailable, err)
	assert.Equal(t, []string{"alice"}, h.admitted, "named at the proof")
	require.Len(t, h.failed, 1)
	assert.Equal(t, saslmech.ErrUnavailable, h.failed[0].reply)
}

// refusing is a TokenVerifier that takes no token.
type refusing struct{}

func (refusing) Verify(context.Context, string) (string, error) {
	return "", errors.New("expired")
}

// TestHostErrorChallenge: OAUTHBEARER answers a refused token with the
// error challenge (RFC 7628 §3.2.2) after the host answered the failure;
// the exchange's Refusal is that answer, and its next step returns it.
func TestHostErrorChallenge(t *testing.T) {
	cfg := &saslmech.Config{TokenVerifier: refusing{}}
	h := newHost(t, cfg)
	x, err := cfg.Start(h, "OAUTHBEARER")
	require.NoError(t, err)
	ch, done, err := x.Next([]byte("n,a=alice,\x01auth=Bearer abc\x01\x01"))
	require.NoError(t, err)
	assert.False(t, done)
	assert.JSONEq(t, `{"status":"invalid_token"}`, string(ch))
	assert.Equal(t, []failure{{"alice", "OAUTHBEARER: token refused: expired", nil}}, h.failed)
	assert.Equal(t, errWrong, x.(pop3.SASLRefusal).Refusal())
	_, _, err = x.Next([]byte("\x01"))
	assert.Equal(t, errWrong, err)
	assert.Len(t, h.failed, 1, "answered once")
}

// TestSCRAMNonceBound: RFC 5802's server-first message carries the
// client's nonce back, and its challenge line must stay within a reply's
// 512 octets (MS-STANXPOP3 C0001): a client nonce of 200 octets is taken
// and its challenge fits; a longer one is refused before any challenge
// (FuzzSaslSCRAM found a 2,888-octet challenge).
func TestSCRAMNonceBound(t *testing.T) {
	cfg := &saslmech.Config{Hostname: "pop3kit.test"}
	h := newHost(t, cfg)
	f, err := account.HashPassword("SCRAM-SHA-256", "secret")
	require.NoError(t, err)
	h.accounts["alice"] = f
	nonce := func(n int) string { return strings.Repeat("N", n) }
	x, err := cfg.Start(h, "SCRAM-SHA-256")
	require.NoError(t, err)
	challenge, done, err := x.Next([]byte("n,,n=alice,r=" + nonce(200)))
	require.NoError(t, err)
	assert.False(t, done)
	assert.LessOrEqual(t, len("+ ")+base64.StdEncoding.EncodedLen(len(challenge))+len("\r\n"), pop3.MaxReplyOctets)

	h = newHost(t, cfg)
	x, _ = cfg.Start(h, "SCRAM-SHA-256")
	_, _, err = x.Next([]byte("n,,n=alice,r=" + nonce(201)))
	assert.Equal(t, errWrong, err)
	require.Len(t, h.failed, 1)
	assert.Contains(t, h.failed[0].why, "nonce longer than 200 octets")
}
