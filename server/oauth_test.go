package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/server"
)

const (
	testIssuer   = "https://id.pop3kit.test"
	testAudience = "pop3.pop3kit.test"
)

// issuer signs test tokens with an RSA and an ECDSA key its JWKS file
// publishes, and with a key it does not.
type issuer struct {
	t        *testing.T
	rsa      *rsa.PrivateKey
	ec       *ecdsa.PrivateKey
	stranger *rsa.PrivateKey
	jwks     string // the JWKS file's path
}

func newIssuer(t *testing.T) *issuer {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rk.PublicKey, KeyID: "rsa1", Algorithm: "RS256", Use: "sig"},
		{Key: &ek.PublicKey, KeyID: "ec1", Algorithm: "ES256", Use: "sig"},
	}}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return &issuer{t: t, rsa: rk, ec: ek, stranger: sk, jwks: p}
}

// claims are a token's claims; the zero value is a good token for alice.
type claims struct {
	sub, email, iss, aud string
	exp                  time.Duration // from now; 0: an hour
	noExp                bool
	// pad is a claim that makes the token as long as real ones get
	// (group lists, profile data).
	pad string
	// unverified leaves email_verified out; noEmail the email claim.
	unverified, noEmail bool
}

// token signs c with alg (RS256, ES256) under kid; stranger signs with a
// key the JWKS does not hold, under the published kid.
func (is *issuer) token(c claims, alg string, stranger bool) string {
	t := is.t
	var key any = is.rsa
	kid := "rsa1"
	if alg == "ES256" {
		key, kid = is.ec, "ec1"
	}
	if stranger {
		key = is.stranger
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	require.NoError(t, err)
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	if c.exp == 0 {
		c.exp = time.Hour
	}
	std := jwt.Claims{Issuer: def(c.iss, testIssuer), Audience: jwt.Audience{def(c.aud, testAudience)},
		Subject: def(c.sub, "alice-id"), IssuedAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}
	if !c.noExp {
		std.Expiry = jwt.NewNumericDate(time.Now().Add(c.exp))
	}
	extra := map[string]any{"email": def(c.email, "alice")}
	if c.noEmail {
		delete(extra, "email")
	}
	if !c.unverified {
		extra["email_verified"] = true
	}
	if c.pad != "" {
		extra["pad"] = c.pad
	}
	s, err := jwt.Signed(sig).Claims(std).Claims(extra).Serialize()
	require.NoError(t, err)
	return s
}

func (is *issuer) config(c *server.Config) {
	c.OAuthJWKS, c.OAuthIssuer, c.OAuthAudience = is.jwks, testIssuer, testAudience
	c.MaxPreauthPerIP, c.MaxSessionsPerUser = 1000, 1000
}

// TestOAuthCurl logs in with curl's OAUTHBEARER and XOAUTH2 (RS256 and
// ES256 tokens), and refuses, through curl, every kind of bad token.
func TestOAuthCurl(t *testing.T) {
	clause.Covers(t, "RFC7628-3-OAUTHBEARER", "XOAUTH2")
	curl := need(t, "curl")
	is := newIssuer(t)
	e := newEnv(t, "exchange2010", is.config)
	e.deliver("alice", msg1, "")
	c := e.dial()
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "SASL OAUTHBEARER XOAUTH2 PLAIN LOGIN", "offered by default once tokens can be checked")

	run := func(mech, user, token string) (string, error) {
		out, err := exec.Command(curl, "-sS", "--max-time", "20", "-u", user+":", "--oauth2-bearer", token,
			"--login-options", "AUTH="+mech, "pop3://"+e.addr+"/").CombinedOutput()
		return string(out), err
	}
	for _, mech := range []string{"OAUTHBEARER", "XOAUTH2"} {
		for _, alg := range []string{"RS256", "ES256"} {
			out, err := run(mech, "alice", is.token(claims{}, alg, false))
			require.NoError(t, err, "%s %s: %s", mech, alg, out)
			assert.Equal(t, "1 41\r\n", out, "%s %s", mech, alg)
		}
	}
	bad := map[string]string{
		"expired":           is.token(claims{exp: -time.Hour}, "RS256", false),
		"no exp":            is.token(claims{noExp: true}, "RS256", false),
		"wrong audience":    is.token(claims{aud: "imap.elsewhere.test"}, "RS256", false),
		"wrong issuer":      is.token(claims{iss: "https://evil.test"}, "ES256", false),
		"bad signature":     is.token(claims{}, "RS256", true),
		"another user's":    is.token(claims{email: "bob"}, "RS256", false),
		"user without mail": is.token(claims{email: "nobody"}, "RS256", false),
		"not a JWT":         "bm90LWEtand0",
	}
	for name, tok := range bad {
		for _, mech := range []string{"OAUTHBEARER", "XOAUTH2"} {
			user := "alice"
			if name == "user without mail" {
				user = "nobody"
			}
			out, err := run(mech, user, tok)
			assert.Error(t, err, "%s %s: %s", name, mech, out)
			assert.Contains(t, out, "denied", "%s %s", name, mech)
		}
	}
}

// TestOAuthDomainsAndVerifiedEmail: with the site's domains set
// (oauth_domains), alice@example.org — or ALICE@EXAMPLE.ORG — in a
// token's email logs in as the account alice, an address in another
// domain names nobody here; an email the provider did not verify
// (email_verified missing or false) is refused.
func TestOAuthDomainsAndVerifiedEmail(t *testing.T) {
	is := newIssuer(t)
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	e := newEnv(t, "exchange2010", is.config, func(c *server.Config) { c.OAuthDomains = []string{"example.org"} })
	login := func(c claims) string {
		cl := e.dial()
		r := cl.Cmd("AUTH OAUTHBEARER " + enc("n,,\x01auth=Bearer "+is.token(c, "ES256", false)+"\x01\x01"))
		if strings.HasPrefix(r, "+ ") {
			r = cl.Cmd(enc("\x01")) // RFC 7628 §3.2.2: the client's answer to the error
		}
		cl.Cmd("QUIT")
		return r
	}
	assert.Equal(t, okEmpty, login(claims{email: "alice@example.org"}), "a served domain")
	assert.Equal(t, okEmpty, login(claims{email: "alice@EXAMPLE.org"}), "domains in any case")
	assert.Equal(t, authError, login(claims{email: "alice@elsewhere.example"}), "another domain's alice is not ours")
	assert.Equal(t, authError, login(claims{email: "alice@example.org", unverified: true}), "an unverified email")
	assert.Equal(t, okEmpty, login(claims{noEmail: true, sub: "alice", unverified: true}), "sub needs no verification")
}

// TestOAuthLongInitialResponse: a bearer token of real size (1,900
// characters and more, as mpop and Thunderbird send) is accepted as AUTH's
// initial response in every profile, though RFC 5034 §4 tells clients to
// keep the line within 255 octets (MaxAuthLineOctets); any other command
// is still held to MaxCommandOctets. Before, pop3d answered "command line
// too long", where Dovecot logs the user in.
func TestOAuthLongInitialResponse(t *testing.T) {
	clause.Covers(t, "RFC5034-4-INITIAL")
	is := newIssuer(t)
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	token := is.token(claims{pad: strings.Repeat("g", 1300)}, "RS256", false)
	require.GreaterOrEqual(t, len(token), 1900)
	for _, profile := range []string{"rfc1939", "exchange2007", "exchange2010"} {
		e := newEnv(t, profile, is.config)
		c := e.dial()
		line := "AUTH OAUTHBEARER " + enc("n,,\x01auth=Bearer "+token+"\x01\x01")
		t.Logf("%s: an AUTH line of %d octets", profile, len(line)+2)
		assert.Equal(t, okEmpty, c.Cmd(line), profile)
		c.Cmd("QUIT") // rfc1939 locks the maildrop
		c = e.dial()
		assert.Equal(t, okEmpty, c.Cmd("AUTH XOAUTH2 "+enc("user=alice\x01auth=Bearer "+token+"\x01\x01")), profile)
		c.Cmd("QUIT")
		c = e.dial()
		assert.Equal(t, "-ERR command line too long", c.Cmd("NOOP "+strings.Repeat("x", 1100)), "%s: other commands keep their limit", profile)
		assert.Equal(t, "-ERR command line too long", c.Cmd("AUTH PLAIN "+strings.Repeat("A", 12300)), "%s: AUTH has a limit too", profile)
	}
}

// TestOAuthMpop: mpop, which sends its OAuth token as AUTH's initial
// response whatever its length, fetches with a 1,900-character token
// (OAUTHBEARER and XOAUTH2).
func TestOAuthMpop(t *testing.T) {
	clause.Covers(t, "RFC5034-4-INITIAL", "RFC7628-3-OAUTHBEARER", "XOAUTH2")
	mpop := need(t, "mpop")
	is := newIssuer(t)
	e := newEnv(t, "exchange2010", is.config)
	e.deliver("alice", "Subject: token\r\n\r\nfetched with a long token\r\n", "")
	token := is.token(claims{pad: strings.Repeat("g", 1300)}, "RS256", false)
	require.GreaterOrEqual(t, len(token), 1900)
	host, port, _ := strings.Cut(e.addr, ":")
	for _, mech := range []string{"oauthbearer", "xoauth2"} {
		dir := t.TempDir()
		out := filepath.Join(dir, "mail")
		testenv.Maildir(t, dir, "mail")
		// mpop's configuration lines stop at 500 characters: the token
		// comes from passwordeval, as a token helper hands it over.
		tokenFile := filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
		conf := filepath.Join(dir, "mpoprc")
		require.NoError(t, os.WriteFile(conf, []byte("account test\nhost "+host+"\nport "+port+"\ntls off\nauth "+mech+
			"\nuser alice\npasswordeval cat "+tokenFile+"\nkeep on\nreceived_header off\nuidls_file "+filepath.Join(dir, "uidls")+
			"\ndelivery maildir "+out+"\n"), 0o600))
		b, err := exec.Command(mpop, "-C", conf, "-q", "test").CombinedOutput()
		require.NoError(t, err, "mpop with %s: %s", mech, b)
		got, err := os.ReadDir(filepath.Join(out, "new"))
		require.NoError(t, err)
		assert.Len(t, got, 1, "%s: mpop fetched the message", mech)
	}
}

// TestOAuthBearerProtocol: RFC 7628 §3.2.2's failure — the JSON error
// challenge, the client's %x01, then -ERR [AUTH] — and the user the token
// names when the message names none.
func TestOAuthBearerProtocol(t *testing.T) {
	is := newIssuer(t)
	e := newEnv(t, "exchange2010", is.config)
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	good := is.token(claims{}, "ES256", false)

	c := e.dial()
	assert.Equal(t, okEmpty, c.Cmd("AUTH OAUTHBEARER "+enc("n,,\x01auth=Bearer "+good+"\x01\x01")), "the token names the user")
	c = e.dial()
	assert.Equal(t, "+ ", c.Cmd("AUTH OAUTHBEARER"))
	assert.Equal(t, okEmpty, c.Cmd(enc("n,a=alice,\x01host=localhost\x01port=110\x01auth=bearer  "+good+"\x01\x01")))

	c = e.dial()
	r := c.Cmd("AUTH OAUTHBEARER " + enc("n,a=bob,\x01auth=Bearer "+good+"\x01\x01"))
	assert.Equal(t, "+ "+enc(`{"status":"invalid_token"}`), r, "another user's token")
	assert.Equal(t, authError, c.Cmd(enc("\x01")))

	c = e.dial()
	assert.Equal(t, "+ ", c.Cmd("AUTH XOAUTH2"), "an RS256 token is too long for the command line")
	r = c.Cmd(enc("user=alice\x01auth=Bearer " + is.token(claims{exp: -time.Hour}, "RS256", false) + "\x01\x01"))
	assert.Equal(t, "+ "+enc(`{"status":"401","schemes":"bearer"}`), r)
	assert.Equal(t, authError, c.Cmd(""))

	c = e.dial()
	assert.Equal(t, authError, c.Cmd("AUTH OAUTHBEARER "+enc("p=tls-exporter,,\x01auth=Bearer "+good+"\x01\x01")), "a malformed message fails at once")

	t.Run("plaintext-equivalent", func(t *testing.T) {
		e := newEnv(t, "exchange2010", is.config, untrusted)
		c := e.dial()
		c.Cmd("CAPA")
		for _, l := range c.Multi() {
			assert.False(t, strings.HasPrefix(l, "SASL "), "no mechanism is offered in the clear: %s", l)
		}
		c = e.dialTLS()
		assert.Equal(t, okEmpty, c.Cmd("AUTH OAUTHBEARER "+enc("n,,\x01auth=Bearer "+good+"\x01\x01")))
	})
}
