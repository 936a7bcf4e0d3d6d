package pop3fuzz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// The SASL mechanisms' decoders, fuzzed where they meet the client: a
// pop3d with every mechanism on, driven over an in-memory connection. The
// oracle is the login's outcome: +OK only where a reference computed
// apart from the server says the credentials are valid, never a panic
// (the core would answer it as an internal error), every status line
// well-formed, and bounded memory.

const authFailed = "-ERR [AUTH] invalid user name or password"

var (
	saslOnce     sync.Once
	saslSrv      *server.Server
	saslVerifier *saslmech.JWKSVerifier
	saslToken    string // a valid token for user f
	saslOther    string // a valid token for user g, who has no account
)

// saslServer returns the process's pop3d with users f (PLAIN "pw"), sam
// ({SCRAM-SHA-256} "salted") and cram ({CRAM-MD5} "cram pw"), every
// mechanism listed, and a JWKS of one ES256 key.
func saslServer(t testing.TB) *server.Server {
	saslOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pop3kit-fuzz-sasl")
		if err != nil {
			panic(err)
		}
		root := filepath.Join(dir, "mail")
		_ = os.MkdirAll(root, 0o700)
		s, _ := account.HashPassword("SCRAM-SHA-256", "salted")
		c, _ := account.HashPassword("CRAM-MD5", "cram pw")
		pw := filepath.Join(dir, "passwd")
		_ = os.WriteFile(pw, []byte("f:{PLAIN}pw\nsam:"+s+"\ncram:"+c+"\n"), 0o600)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
		jwks := filepath.Join(dir, "jwks.json")
		_ = os.WriteFile(jwks, set, 0o600)
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
		tok := func(user string) string {
			t, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "iss", Audience: jwt.Audience{"aud"}, Subject: user,
				Expiry: jwt.NewNumericDate(time.Now().Add(24 * time.Hour))}).Serialize()
			if err != nil {
				panic(err)
			}
			return t
		}
		saslToken, saslOther = tok("f"), tok("g")
		cfg := server.DefaultConfig()
		cfg.Listen = []string{"127.0.0.1:0"} // never opened: sessions come through ServeConn
		cfg.MailRoot, cfg.Passwd, cfg.FailDelay = root, pw, 0
		cfg.SASLMechanisms = []string{"SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2", "PLAIN", "CRAM-MD5"}
		cfg.OAuthJWKS, cfg.OAuthIssuer, cfg.OAuthAudience = jwks, "iss", "aud"
		cfg.MaxAuthFailures = 100
		_ = cfg.AddSet("PlaintextAuth=always") // a pipe is not loopback
		if saslSrv, err = server.New(cfg, nil); err != nil {
			panic(err)
		}
		if saslVerifier, err = saslmech.NewJWKSVerifier(saslmech.JWKSConfig{Path: jwks, Issuer: "iss", Audience: "aud"}); err != nil {
			panic(err)
		}
	})
	return saslSrv
}

// saslConn is a greeted connection to saslServer; step sends a line and
// returns the status line that answers it.
type saslConn struct {
	t    *testing.T
	pc   *pop3test.Conn
	done chan struct{}
}

func dialSASL(t *testing.T) *saslConn { return dialServer(t, saslServer(t)) }

// dialServer starts a session of srv over a pipe and reads its greeting.
func dialServer(t *testing.T, srv *server.Server) *saslConn {
	client, conn := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(conn); close(done) }()
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	c := &saslConn{t: t, pc: pop3test.New(nil, client), done: done}
	c.status("greeting", c.read())
	return c
}

func (c *saslConn) read() string {
	l, err := c.pc.ReadRaw()
	if err != nil {
		c.t.Fatalf("no answer: %v\n%s", err, c.pc.Transcript())
	}
	if err := pop3test.CheckStatus(l); err != nil {
		c.t.Fatalf("%v\n%s", err, c.pc.Transcript())
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *saslConn) status(what, l string) {
	if strings.Contains(l, "internal") {
		c.t.Fatalf("%s: the server failed inside (a recovered panic?): %q\n%s", what, l, c.pc.Transcript())
	}
}

func (c *saslConn) step(line string) string {
	if err := c.pc.WriteLine(line); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	l := c.read()
	c.status(strconvQuote(line), l)
	return l
}

func (c *saslConn) close() {
	c.pc.C.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatal("the session did not end after the client closed")
	}
}

func strconvQuote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return "`" + s + "`"
}

// foldUser is the server's UserNameCase as the reference applies it: the
// default profile looks names up with ASCII letters lower-cased.
func foldUser(u string) string { return foldFor(saslSrv.Variations(), u) }

// foldFor folds u as a server with variations v looks names up.
func foldFor(v pop3gen.Variations, u string) string {
	if v.UserNameCase != pop3.UserNameCaseLower {
		return u
	}
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, u)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// FuzzSaslSCRAM sends a client-first and a client-final message; "{r}"
// in the latter becomes the server's nonce, so that the fuzzer reaches
// the proof. No proof the fuzzer makes is valid: the exchange must never
// end in +OK nor send the server's verifier.
func FuzzSaslSCRAM(f *testing.F) {
	f.Add([]byte("n,,n=sam,r=abcdef"), []byte("c=biws,r={r},p=dGVzdA=="))
	f.Add([]byte("y,,n=nobody,r=x"), []byte("c=eSws,r={r},p=AAAA"))
	f.Add([]byte("n,a=f,n=sam,r=abc"), []byte("c=biws,r={r}x,p="))
	f.Add([]byte("p=tls-exporter,,n=sam,r=a"), []byte(""))
	f.Add([]byte("n,,n=s=2Cam,r=a,e=x"), []byte("c=biws,r={r},x=1,p=dGVzdA=="))
	f.Add([]byte("n,,n=f,r=abcdef"), []byte("c=biws,r={r},p=3q2+7w=="))
	fuzzbound.Fuzz(f, func(t *testing.T, first, final []byte) {
		c := dialSASL(t)
		defer c.close()
		r := c.step("AUTH SCRAM-SHA-256 " + b64(first))
		if !strings.HasPrefix(r, "+ ") {
			if r != authFailed && !strings.HasPrefix(r, "-ERR") {
				t.Fatalf("client-first %q: %q", first, r)
			}
			return
		}
		s1, err := base64.StdEncoding.DecodeString(r[2:])
		if err != nil {
			t.Fatalf("server-first is not base64: %q", r)
		}
		if len(s1) == 0 {
			// An empty first made no initial response: "+ " asks for
			// the client-first (RFC 5034 §4), which final would then
			// be — another exchange than this target's.
			return
		}
		nonce, _, _ := strings.Cut(strings.TrimPrefix(string(s1), "r="), ",")
		r = c.step(b64(bytes.ReplaceAll(final, []byte("{r}"), []byte(nonce))))
		if r != authFailed && !strings.HasPrefix(r, "-ERR") {
			t.Fatalf("client-first %q, client-final %q: %q: no proof the fuzzer makes is valid", first, final, r)
		}
	})
}

// FuzzSaslCRAM answers the CRAM-MD5 challenge; "{d}" in the answer
// becomes the right digest of the password "cram pw" (cram's) and "{p}"
// that of "pw" (f's). +OK must come exactly when the answer is a user
// name and that user's digest, as the reference computes it.
func FuzzSaslCRAM(f *testing.F) {
	for _, s := range []string{"cram {d}", "f {p}", "cram {p}", "f {d}", "cram {D}", "nobody {d}", "cram  {d}", "cram", "{d}", "sam {d}"} {
		f.Add([]byte(s))
	}
	fuzzbound.Fuzz(f, func(t *testing.T, answer []byte) {
		c := dialSASL(t)
		defer c.close()
		r := c.step("AUTH CRAM-MD5")
		ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r, "+ "))
		if err != nil || !strings.HasPrefix(r, "+ ") {
			t.Fatalf("challenge: %q", r)
		}
		digest := func(pw string) string {
			m := hmac.New(md5.New, []byte(pw))
			m.Write(ch)
			return hex.EncodeToString(m.Sum(nil))
		}
		a := strings.NewReplacer("{d}", digest("cram pw"), "{p}", digest("pw"), "{D}", strings.ToUpper(digest("cram pw"))).Replace(string(answer))
		r = c.step(b64([]byte(a)))
		user, d, _ := strings.Cut(a, " ")
		user = foldUser(user)
		valid := user == "cram" && strings.ToLower(d) == digest("cram pw") || user == "f" && strings.ToLower(d) == digest("pw")
		switch {
		case valid && !strings.HasPrefix(r, "+OK"):
			t.Fatalf("%q: a valid answer refused: %q", a, r)
		case !valid && r != authFailed:
			t.Fatalf("%q: an invalid answer got %q", a, r)
		}
	})
}

// FuzzSaslOAuth sends an OAUTHBEARER (mech even) or XOAUTH2 message;
// "{t}" becomes a valid token for f and "{o}" one for g, who has no
// account. +OK must come exactly when the reference — the exported
// parser and the JWKS verifier, called apart — finds a token of f's and
// no other user named; a failure is the error challenge, then -ERR.
func FuzzSaslOAuth(f *testing.F) {
	for _, s := range []string{
		"n,,\x01auth=Bearer {t}\x01\x01", "n,a=f,\x01auth=Bearer {t}\x01\x01", "n,a=g,\x01auth=Bearer {t}\x01\x01",
		"y,,\x01host=h\x01port=1\x01auth=bearer {o}\x01\x01", "n,,\x01auth=Bearer {t}\x01auth=Bearer {t}\x01\x01",
		"p=tls-exporter,,\x01auth=Bearer {t}\x01\x01", "n,a=f=2C,\x01auth=Bearer {t}==\x01\x01", "\x01",
	} {
		f.Add(uint8(0), []byte(s))
	}
	for _, s := range []string{"user=f\x01auth=Bearer {t}\x01\x01", "user=g\x01auth=Bearer {t}\x01\x01", "user=f\x01auth=Bearer {o}\x01\x01", "user=\x01auth=Bearer {t}\x01\x01"} {
		f.Add(uint8(1), []byte(s))
	}
	fuzzbound.Fuzz(f, func(t *testing.T, mech uint8, msg []byte) {
		saslServer(t)
		m := bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("{t}"), []byte(saslToken)), []byte("{o}"), []byte(saslOther))
		name, parse := "OAUTHBEARER", saslmech.ParseOAuthBearer
		if mech%2 == 1 {
			name, parse = "XOAUTH2", saslmech.ParseXOAUTH2
		}
		valid := false
		if claimed, token, err := parse(m); err == nil {
			user, err := saslVerifier.Verify(context.Background(), token)
			valid = err == nil && user == "f" && (claimed == "" || foldUser(claimed) == "f")
		}
		c := dialSASL(t)
		defer c.close()
		if r := c.step("AUTH " + name); r != "+ " {
			t.Fatalf("AUTH %s: %q", name, r)
		}
		r := c.step(b64(m))
		switch {
		case valid && !strings.HasPrefix(r, "+OK"):
			t.Fatalf("%q: valid, refused: %q", m, r)
		case !valid && strings.HasPrefix(r, "+OK"):
			t.Fatalf("%q: invalid, logged in", m)
		case strings.HasPrefix(r, "+ "):
			if r = c.step(b64([]byte{1})); r != authFailed {
				t.Fatalf("%q: after the error challenge: %q", m, r)
			}
		case !valid && r != authFailed:
			t.Fatalf("%q: %q", m, r)
		}
	})
}

// FuzzSaslOAuthParse holds the two parsers alone: no panic, a bounded
// number of allocations, and what they accept survives a round trip
// through the canonical form.
func FuzzSaslOAuthParse(f *testing.F) {
	for _, s := range []string{"n,,\x01auth=Bearer abc\x01\x01", "n,a=u=3Dx=2C,\x01host=h\x01auth=Bearer a.b-c_d~e+f/g==\x01\x01",
		"user=u\x01auth=Bearer t\x01\x01", "n,,\x01\x01", "y,a=,\x01auth=Bearer x\x01\x01", "user=u\x01auth=Bearer  t\x01\x01"} {
		f.Add([]byte(s))
	}
	fuzzbound.Fuzz(f, func(t *testing.T, msg []byte) {
		for _, p := range []struct {
			name  string
			parse func([]byte) (string, string, error)
			form  func(user, token string) string
		}{
			{"OAUTHBEARER", saslmech.ParseOAuthBearer, func(u, tok string) string {
				if u != "" {
					u = "a=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(u)
				}
				return "n," + u + ",\x01auth=Bearer " + tok + "\x01\x01"
			}},
			{"XOAUTH2", saslmech.ParseXOAUTH2, func(u, tok string) string { return "user=" + u + "\x01auth=Bearer " + tok + "\x01\x01" }},
		} {
			u, tok, err := p.parse(msg)
			allocs := testing.AllocsPerRun(1, func() { _, _, _ = p.parse(msg) })
			if allocs > 40 {
				t.Fatalf("%s %q: %v allocations", p.name, msg, allocs)
			}
			if err != nil {
				continue
			}
			if tok == "" || strings.ContainsAny(tok, " \x01,") {
				t.Fatalf("%s %q: token %q", p.name, msg, tok)
			}
			u2, tok2, err := p.parse([]byte(p.form(u, tok)))
			if err != nil || u2 != u || tok2 != tok {
				t.Fatalf("%s %q: (%q, %q) does not survive its canonical form: (%q, %q, %v)", p.name, msg, u, tok, u2, tok2, err)
			}
		}
	})
}
