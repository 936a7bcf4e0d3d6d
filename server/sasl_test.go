package server_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// mechanismsSeen is what one connection says about SASL: CAPA's SASL
// line, the bare AUTH listing (nil where AuthListing is off), the
// mechanisms AUTH starts ("+ "), and whether CAPA offers USER (plaintext
// allowed).
type mechanismsSeen struct {
	capa, listing, accepted []string
	plaintext, listed       bool
}

func observe(t *testing.T, dial func() *pop3test.Conn) mechanismsSeen {
	var s mechanismsSeen
	c := dial()
	c.Cmd("CAPA")
	for _, l := range c.Multi() {
		if m, ok := strings.CutPrefix(l, "SASL "); ok {
			s.capa = strings.Fields(m)
		}
		s.plaintext = s.plaintext || l == "USER"
	}
	if r := c.Cmd("AUTH"); strings.HasPrefix(r, "+OK") {
		s.listed, s.listing = true, c.Multi()
	}
	probe := saslmech.Names()
	for _, m := range []string{"GSSAPI", "NTLM", "DIGEST-MD5"} {
		if !slices.Contains(probe, m) {
			probe = append(probe, m)
		}
	}
	for _, m := range probe {
		c := dial()
		if r := c.Cmd("AUTH " + m); strings.HasPrefix(r, "+ ") {
			s.accepted = append(s.accepted, m)
		}
		_ = c.C.Close()
	}
	return s
}

// saslCase is one configuration of the agreement property.
type saslCase struct {
	Profile    string
	List       []string // nil: the default
	JWKS       bool
	Keytab     bool
	Trusted    bool
	RequireTLS bool
}

func (k saslCase) String() string {
	return strings.Join([]string{k.Profile, "list=" + strings.Join(k.List, ","), "nil=" + strconv.FormatBool(k.List == nil),
		"jwks=" + strconv.FormatBool(k.JWKS), "keytab=" + strconv.FormatBool(k.Keytab), "trusted=" + strconv.FormatBool(k.Trusted), "requireTLS=" + strconv.FormatBool(k.RequireTLS)}, " ")
}

// want is the spec of the offer, written apart from saslmech's table:
// a listed (or, without a list, default) mechanism is offered unless it
// is plaintext-equivalent where plaintext is refused, needs TLS without
// it, needs tokens without a JWKS, or RequireTLS waits for TLS.
func (k saslCase) want(tls, plaintext bool) []string {
	order := []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "NTLM", "OAUTHBEARER", "XOAUTH2", "PLAIN", "LOGIN", "CRAM-MD5"}
	var out []string
	// GSSAPI comes first wherever a keytab is configured: it sends no
	// reusable credential and needs no TLS (RFC 4752 §3.2).
	if k.Keytab && (k.List == nil || slices.Contains(k.List, "GSSAPI")) && !(k.RequireTLS && !tls) {
		out = append(out, "GSSAPI")
	}
	for _, m := range order {
		on := slices.Contains(k.List, m)
		if k.List == nil {
			switch m {
			case "PLAIN", "LOGIN", "SCRAM-SHA-256-PLUS":
				on = true
			case "SCRAM-SHA-256":
				on = tls
			case "OAUTHBEARER", "XOAUTH2":
				on = k.JWKS
			}
		}
		switch {
		case m == "PLAIN" || m == "LOGIN" || m == "OAUTHBEARER" || m == "XOAUTH2":
			on = on && plaintext
		case m == "SCRAM-SHA-256-PLUS":
			on = on && tls
		}
		if (m == "OAUTHBEARER" || m == "XOAUTH2") && !k.JWKS {
			on = false
		}
		if k.RequireTLS && !tls {
			on = false
		}
		if on {
			out = append(out, m)
		}
	}
	return out
}

func saslCaseGen() gopter.Gen {
	names := saslmech.Names()
	return gopter.CombineGens(
		gen.OneConstOf(pop3gen.ProfileNames[0], pop3gen.ProfileNames[1], pop3gen.ProfileNames[2]),
		gen.SliceOfN(len(names), gen.Bool()),
		gen.Bool(), gen.Bool(), gen.Bool(), gen.Bool(), gen.Bool(),
	).Map(func(v []any) saslCase {
		k := saslCase{Profile: v[0].(string), JWKS: v[2].(bool), Trusted: v[3].(bool), RequireTLS: v[4].(bool), Keytab: v[6].(bool)}
		if v[5].(bool) { // half the cases configure a list
			k.List = []string{}
			for i, on := range v[1].([]bool) {
				oauth := names[i] == "OAUTHBEARER" || names[i] == "XOAUTH2"
				if on && (!oauth || k.JWKS) && (names[i] != "GSSAPI" || k.Keytab) {
					k.List = append(k.List, names[i])
				}
			}
		}
		return k
	})
}

// TestMechanismsAgree: for generated configurations (profile, mechanism
// list or default, JWKS, trusted loopback, RequireTLS) and for a plain
// and a TLS connection, CAPA's SASL line, the bare AUTH listing and the
// mechanisms AUTH starts are the same list, and it is the one the spec
// above says. POP3KIT_PROPERTY_SEED replays a run.
func TestMechanismsAgree(t *testing.T) {
	is := newIssuer(t)
	keytab, _ := forgedKeytab(t, "pop/pop3kit.test")
	params := gopter.DefaultTestParameters()
	seed := time.Now().UnixNano()
	if s := os.Getenv("POP3KIT_PROPERTY_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	params.SetSeed(seed)
	params.MinSuccessfulTests = 24
	t.Logf("seed %d (POP3KIT_PROPERTY_SEED replays it)", seed)
	props := gopter.NewProperties(params)
	props.Property("CAPA, AUTH and acceptance agree", prop.ForAll(func(k saslCase) string {
		e := newEnv(t, k.Profile, func(c *server.Config) {
			c.SASLMechanisms = k.List
			c.RequireTLS = k.RequireTLS
			c.MaxPreauthPerIP = 1000
			if k.JWKS {
				is.config(c)
			}
			if k.Keytab {
				c.GSSAPIKeytab = keytab
			}
			if !k.Trusted {
				untrusted(c)
			}
		})
		for _, tls := range []bool{false, true} {
			dial := e.dial
			if tls {
				dial = e.dialTLS
			}
			s := observe(t, dial)
			v, err := pop3gen.Profile(k.Profile)
			require.NoError(t, err)
			want := k.want(tls, s.plaintext)
			switch {
			case !slices.Equal(s.capa, want):
				return k.String() + " tls=" + strconv.FormatBool(tls) + ": CAPA " + strings.Join(s.capa, " ") + ", want " + strings.Join(want, " ")
			case !slices.Equal(s.accepted, want):
				return k.String() + " tls=" + strconv.FormatBool(tls) + ": AUTH starts " + strings.Join(s.accepted, " ") + ", want " + strings.Join(want, " ")
			case v.AuthListing && !(k.RequireTLS && !tls) && !slices.Equal(s.listing, want):
				return k.String() + " tls=" + strconv.FormatBool(tls) + ": AUTH lists " + strings.Join(s.listing, " ") + ", want " + strings.Join(want, " ")
			}
		}
		return ""
	}, saslCaseGen()))
	props.TestingRun(t)
}

// TestSASLConfigCheck: Check names a bad mechanism, a duplicate, and
// settings a listed mechanism needs.
func TestSASLConfigCheck(t *testing.T) {
	is := newIssuer(t)
	for _, c := range []struct {
		name string
		set  func(*server.Config)
		want string
	}{
		{name: "unknown", set: func(c *server.Config) { c.SASLMechanisms = []string{"PLAIN", "DIGEST-MD5"} }, want: `sasl mechanism "DIGEST-MD5" is not one pop3d offers`},
		{name: "twice", set: func(c *server.Config) { c.SASLMechanisms = []string{"plain", "PLAIN"} }, want: `"PLAIN" listed twice`},
		{name: "tokens without JWKS", set: func(c *server.Config) { c.SASLMechanisms = []string{"XOAUTH2"} }, want: "XOAUTH2 needs --oauth-jwks"},
		{name: "-PLUS without TLS", set: func(c *server.Config) {
			c.SASLMechanisms, c.ListenTLS, c.TLSCert, c.TLSKey = []string{"SCRAM-SHA-256-PLUS"}, nil, "", ""
		}, want: "SCRAM-SHA-256-PLUS needs TLS"},
		{name: "JWKS without audience", set: func(c *server.Config) { is.config(c); c.OAuthAudience = "" }, want: "--oauth-jwks needs --oauth-issuer and --oauth-audience"},
		{name: "JWKS unreadable", set: func(c *server.Config) { is.config(c); c.OAuthJWKS = "/nonexistent/jwks.json" }, want: "oauth jwks:"},
		{name: "JWKS not a JWKS", set: func(c *server.Config) { is.config(c); c.OAuthJWKS = certFile }, want: "not a JWKS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.Listen, cfg.ListenTLS = []string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}
			cfg.TLSCert, cfg.TLSKey, _ = testCert(t)
			cfg.MailRoot, cfg.Passwd = t.TempDir(), "/dev/null"
			c.set(&cfg)
			err := cfg.Check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
