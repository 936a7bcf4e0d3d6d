package server_test

import (
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdg-go/scram"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
)

const (
	okEmpty   = "+OK maildrop has 0 messages (0 octets)"
	authError = "-ERR [AUTH] invalid user name or password"
)

// scramUsers are passwd-file lines with the SCRAM and CRAM-MD5 schemes,
// beside the test users (alice is PLAIN, bob SHA512-CRYPT).
func scramUsers(t testing.TB) func(*server.Config) {
	s, err := account.HashPassword("SCRAM-SHA-256", "salted pass")
	require.NoError(t, err)
	c, err := account.HashPassword("CRAM-MD5", "cram pass")
	require.NoError(t, err)
	users := withUsers(t, "sam:"+s+"::::::", "cram:"+c+"::::::",
		// Dovecot's own test secret of "test" (test-password-scheme.c).
		"dove:{SCRAM-SHA-256}4096,LfNGSFqiFykEZ1xDAYlnKQ==,HACNf9CII7cMz3XjRy/Oh3Ae2LHApoDyNw74d3YtFws=,AQH0j7Hf8J12g8eNBadvzlNB2am3PxgNwFCFd3RxEaw=::::::")
	return func(c *server.Config) {
		users(c)
		// The tests leave their connections open: room for all.
		c.MaxPreauthPerIP, c.MaxSessionsPerUser = 1000, 1000
	}
}

// scramRun is one SCRAM exchange driven by the xdg-go/scram client:
// tamper may change each client message (0: client-first, 1:
// client-final) before it is sent. It returns the status line that ends
// the exchange and the messages sent.
func scramRun(t *testing.T, c *pop3test.Conn, mech string, conv *scram.ClientConversation, tamper func(step int, msg string) string) (string, []string) {
	t.Helper()
	enc := base64.StdEncoding.EncodeToString
	var sent []string
	first, err := conv.Step("")
	require.NoError(t, err)
	if tamper != nil {
		first = tamper(0, first)
	}
	sent = append(sent, first)
	r := c.Cmd("AUTH " + mech + " " + enc([]byte(first)))
	if !strings.HasPrefix(r, "+ ") {
		return r, sent
	}
	s1, err := base64.StdEncoding.DecodeString(r[2:])
	require.NoError(t, err)
	final, err := conv.Step(string(s1))
	if err != nil {
		return "client: " + err.Error(), sent
	}
	if tamper != nil {
		final = tamper(1, final)
	}
	sent = append(sent, final)
	r = c.Cmd(enc([]byte(final)))
	if !strings.HasPrefix(r, "+ ") {
		return r, sent
	}
	s2, err := base64.StdEncoding.DecodeString(r[2:])
	require.NoError(t, err)
	_, err = conv.Step(string(s2))
	require.NoError(t, err, "the client verifies the server's signature")
	require.True(t, conv.Valid())
	return c.Cmd(""), sent
}

func scramClient(t *testing.T, user, password string) *scram.Client {
	cl, err := scram.SHA256.NewClient(user, password, "")
	require.NoError(t, err)
	return cl
}

func tlsState(c *pop3test.Conn) *tls.ConnectionState {
	st := c.C.(*tls.Conn).ConnectionState()
	return &st
}

// TestSCRAM logs in with SCRAM-SHA-256 over TLS (where it is offered by
// default) with a {SCRAM-SHA-256} secret pop3d wrote, Dovecot's own
// secret, and a PLAIN one; every kind of bad exchange is refused with the
// same reply.
func TestSCRAM(t *testing.T) {
	clause.Covers(t, "RFC7677-3-SCRAM")
	e := newEnv(t, "exchange2010", scramUsers(t))
	for _, u := range []struct{ name, password string }{{"sam", "salted pass"}, {"dove", "test"}, {"alice", "secret"}} {
		c := e.dialTLS()
		r, _ := scramRun(t, c, "SCRAM-SHA-256", scramClient(t, u.name, u.password).NewConversation(), nil)
		assert.Equal(t, okEmpty, r, u.name)
	}
	c := e.dial()
	assert.Equal(t, "-ERR "+pop3.ErrUnknownMechanism.Text, c.Cmd("AUTH SCRAM-SHA-256"),
		"not offered by default without TLS")

	bad := []struct {
		name     string
		user, pw string
		mech     string
		tamper   func(int, string) string
	}{
		{name: "wrong password", user: "sam", pw: "salted pasS"},
		{name: "PLAIN user, wrong password", user: "alice", pw: "secreT"},
		{name: "one-way hash only", user: "bob", pw: "hunter2"},
		{name: "unknown user", user: "nobody", pw: "x"},
		{name: "wrong proof", user: "sam", pw: "salted pass", tamper: func(i int, m string) string {
			if i != 1 {
				return m
			}
			p := strings.LastIndex(m, ",p=")
			proof, _ := base64.StdEncoding.DecodeString(m[p+3:])
			proof[0] ^= 1
			return m[:p+3] + base64.StdEncoding.EncodeToString(proof)
		}},
		{name: "tampered nonce", user: "sam", pw: "salted pass", tamper: func(i int, m string) string {
			if i != 1 {
				return m
			}
			return strings.Replace(m, ",r=", ",r=x", 1)
		}},
		{name: "proxy authorization", user: "sam", pw: "salted pass", tamper: func(i int, m string) string {
			if i != 0 {
				return m
			}
			return strings.Replace(m, "n,,", "n,a=alice,", 1)
		}},
		{name: "binding flag p on the plain mechanism", user: "sam", pw: "salted pass", tamper: func(i int, m string) string {
			if i != 0 {
				return m
			}
			return strings.Replace(m, "n,,", "p=tls-exporter,,", 1)
		}},
		{name: "y where -PLUS is offered (a downgrade)", user: "sam", pw: "salted pass", tamper: func(i int, m string) string {
			if i == 0 {
				return strings.Replace(m, "n,,", "y,,", 1)
			}
			return strings.Replace(m, "c=biws", "c="+base64.StdEncoding.EncodeToString([]byte("y,,")), 1)
		}},
		{name: "-PLUS without binding", mech: "SCRAM-SHA-256-PLUS", user: "sam", pw: "salted pass"},
		{name: "garbage", user: "sam", pw: "salted pass", tamper: func(i int, m string) string { return "n,,x=y" }},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			mech := b.mech
			if mech == "" {
				mech = "SCRAM-SHA-256"
			}
			c := e.dialTLS()
			r, _ := scramRun(t, c, mech, scramClient(t, b.user, b.pw).NewConversation(), b.tamper)
			assert.Equal(t, authError, r)
		})
	}

	t.Run("replayed client-final", func(t *testing.T) {
		c := e.dialTLS()
		r, sent := scramRun(t, c, "SCRAM-SHA-256", scramClient(t, "sam", "salted pass").NewConversation(), nil)
		require.Equal(t, okEmpty, r)
		c = e.dialTLS()
		r = c.Cmd("AUTH SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte(sent[0])))
		require.True(t, strings.HasPrefix(r, "+ "), r)
		assert.Equal(t, authError, c.Cmd(base64.StdEncoding.EncodeToString([]byte(sent[1]))), "the server's nonce is new")
	})

	t.Run("users look alike", func(t *testing.T) {
		// The server-first message of an unknown user, a user with a
		// one-way hash and a PLAIN user has the shape of a stored
		// account's, with a salt that does not change between attempts.
		first := func(user string) string {
			c := e.dialTLS()
			r := c.Cmd("AUTH SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte("n,,n="+user+",r=abcdefghijklmnop")))
			require.True(t, strings.HasPrefix(r, "+ "), r)
			s1, _ := base64.StdEncoding.DecodeString(r[2:])
			c.Cmd("*")
			_, saltIters, _ := strings.Cut(string(s1), ",s=")
			return saltIters
		}
		for _, u := range []string{"nobody", "bob", "alice", "sam"} {
			a := first(u)
			assert.Regexp(t, `^[A-Za-z0-9+/]{22}==,i=4096$`, a, u)
			assert.Equal(t, a, first(u), "%s: the same salt each time", u)
		}
	})
}

// TestSCRAMPlus logs in with SCRAM-SHA-256-PLUS over implicit TLS and
// after STLS, bound with tls-exporter (RFC 9266, TLS 1.3) and
// tls-server-end-point (RFC 5929); binding data of another connection is
// refused.
func TestSCRAMPlus(t *testing.T) {
	clause.Covers(t, "RFC9266-2-PLUS")
	e := newEnv(t, "exchange2010", scramUsers(t))
	exporter := func(c *pop3test.Conn) scram.ChannelBinding {
		cb, err := scram.NewTLSExporterBinding(tlsState(c))
		require.NoError(t, err)
		return cb
	}
	endpoint := func(c *pop3test.Conn) scram.ChannelBinding {
		cb, err := scram.NewTLSServerEndpointBinding(tlsState(c))
		require.NoError(t, err)
		return cb
	}
	for name, bind := range map[string]func(*pop3test.Conn) scram.ChannelBinding{"tls-exporter": exporter, "tls-server-end-point": endpoint} {
		t.Run(name, func(t *testing.T) {
			c := e.dialTLS()
			c.Cmd("CAPA")
			assert.Contains(t, c.Multi(), "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN")
			r, _ := scramRun(t, c, "SCRAM-SHA-256-PLUS", scramClient(t, "sam", "salted pass").NewConversationWithChannelBinding(bind(c)), nil)
			assert.Equal(t, okEmpty, r)

			other := e.dialTLS()
			c = e.dialTLS()
			r, _ = scramRun(t, c, "SCRAM-SHA-256-PLUS", scramClient(t, "sam", "salted pass").NewConversationWithChannelBinding(bind(other)), nil)
			if name == "tls-exporter" {
				assert.Equal(t, authError, r, "another connection's binding")
			} else {
				assert.Equal(t, okEmpty, r, "the certificate is the same on every connection: that is tls-server-end-point's weakness")
			}
			c = e.dialTLS()
			r, _ = scramRun(t, c, "SCRAM-SHA-256-PLUS", scramClient(t, "sam", "salted pasS").NewConversationWithChannelBinding(bind(c)), nil)
			assert.Equal(t, authError, r, "wrong password")
		})
	}
	t.Run("binding data tampered", func(t *testing.T) {
		c := e.dialTLS()
		cb := exporter(c)
		cb.Data[0] ^= 1
		r, _ := scramRun(t, c, "SCRAM-SHA-256-PLUS", scramClient(t, "sam", "salted pass").NewConversationWithChannelBinding(cb), nil)
		assert.Equal(t, authError, r)
	})
	t.Run("tls-unique refused", func(t *testing.T) {
		c := e.dialTLS()
		r, _ := scramRun(t, c, "SCRAM-SHA-256-PLUS", scramClient(t, "sam", "salted pass").NewConversationWithChannelBinding(scram.NewTLSUniqueBinding([]byte("0123456789ab"))), nil)
		assert.Equal(t, authError, r)
	})
}

// TestSCRAMListedWithoutTLS: listed in sasl_mechanisms, SCRAM-SHA-256 is
// offered on a plain connection where plaintext is refused (it sends no
// password), and -PLUS is not (no channel to bind to).
func TestSCRAMListedWithoutTLS(t *testing.T) {
	e := newEnv(t, "exchange2010", scramUsers(t), untrusted, func(c *server.Config) {
		c.SASLMechanisms = []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"}
	})
	c := e.dial()
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "SASL SCRAM-SHA-256")
	r, _ := scramRun(t, c, "SCRAM-SHA-256", scramClient(t, "sam", "salted pass").NewConversation(), nil)
	assert.Equal(t, okEmpty, r)
	c = e.dial()
	r, _ = scramRun(t, c, "SCRAM-SHA-256", scramClient(t, "sam", "salted pass").NewConversationAdvertisingChannelBinding(), nil)
	assert.Equal(t, okEmpty, r, `"y": the client could bind, but -PLUS is rightly not offered here`)
}
