package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPOP3IsValid: the table pop3kit generates from passes Validate.
func TestPOP3IsValid(t *testing.T) {
	assert.NoError(t, Validate(&POP3))
	assert.NoError(t, POP3.Validate())
}

// TestCloneSharesNothing: changing every kind of row of a clone, in place
// or by append, leaves POP3 as it was.
func TestCloneSharesNothing(t *testing.T) {
	before := POP3.Clone()
	c := POP3.Clone()
	c.Command("USER").Clauses[0] = "X"
	c.Command("PASS").Edges[0].To = Update
	c.Variation("APOP").Profile[RFC1939] = "false"
	c.Variation("MaildropAccess").Values[0] = "x"
	c.Profiles[0].Aliases[0] = "x"
	c.Capabilities[0].Clauses[0] = "X"
	c.RespCodes[0].Clauses[0] = "X"
	c.Errors[0].Clauses[0] = "X"
	c.Clauses[0].Summary = "X"
	c.Limits[0].Clauses[0] = "X"
	c.States[0].Doc = "X"
	c.AddProfile(Profile{Name: "mysite", Doc: "x"}, Exchange2010)
	assert.Equal(t, before, POP3)
	assert.Equal(t, "true", POP3.Variation("APOP").Profile[RFC1939])
}

// TestAddProfile: a new profile starts from another's values and can be
// made the default; the table stays valid.
func TestAddProfile(t *testing.T) {
	c := POP3.Clone()
	c.AddProfile(Profile{Name: "mysite", Default: true, Doc: "Exchange 2010 with APOP."}, Exchange2010)
	c.Variation("APOP").Profile["mysite"] = "true"
	require.NoError(t, Validate(&c))
	for _, v := range c.Variations {
		if v.Name != "APOP" {
			assert.Equal(t, v.Profile[Exchange2010], v.Profile["mysite"], v.Name)
		}
	}
	defaults := 0
	for _, p := range c.Profiles {
		if p.Default {
			defaults++
			assert.Equal(t, "mysite", p.Name)
		}
	}
	assert.Equal(t, 1, defaults)
}

// TestValidateReportsEveryProblem: Problems lists each problem once, in
// table order, and unwraps to them.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := POP3.Clone()
	c.Commands[0].In = 0
	c.Commands[2].Doc = ""
	c.Errors = c.Errors[1:]
	err := Validate(&c)
	var p Problems
	require.True(t, errors.As(err, &p))
	require.Len(t, p, 3)
	assert.Contains(t, p[0].Error(), `command "USER" (row 1): command allowed in no state`)
	assert.Contains(t, p[1].Error(), `command "APOP" (row 3): doc is required`)
	assert.Contains(t, p[2].Error(), `error "ErrEmptyLine": the runtime returns it`)
	assert.True(t, strings.HasPrefix(err.Error(), "the spec table is inconsistent (3 problems):\n\t"))
}

// TestValidateVariationLayer: every variation says which layer honours it,
// one of the four, and the truth: the layer the core's own code honours it
// in, never the store for one the core consults, and the store for one it
// never consults.
func TestValidateVariationLayer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*Table)
		want   string
	}{
		{"no layer", func(t *Table) { t.Variation("ExactSizes").Layer = 0 },
			`variation "ExactSizes" (row 7): layer is not set`},
		{"unknown layer", func(t *Table) { t.Variation("ExactSizes").Layer = StoreLayer + 1 },
			`variation "ExactSizes" (row 7): layer 5 is not one of LexerLayer, SessionLayer, RuntimeLayer, StoreLayer`},
		{"core variation in the wrong core layer", func(t *Table) { t.Variation("AuthTimeout").Layer = LexerLayer },
			`variation "AuthTimeout": the runtime honours it, the table says the lexer`},
		{"core variation left to the store", func(t *Table) { t.Variation("SpaceRuns").Layer = StoreLayer },
			`variation "SpaceRuns" (row 2): layer is StoreLayer, but the core consults it`},
		{"a command's switch left to the store", func(t *Table) { t.Variation("LANG").Layer = StoreLayer },
			`variation "LANG" (row 20): layer is StoreLayer, but the core consults it`},
		{"store variation claimed by the core", func(t *Table) { t.Variation("UIDLFormat").Layer = SessionLayer },
			`variation "UIDLFormat" (row 21): layer is session, but nothing in the core consults it`},
		{"added variation without a layer", func(t *Table) {
			t.Variations = append(t.Variations, Variation{Name: "Mine", Kind: Bool, Profile: t.Everywhere("true"),
				Clauses: []string{"V0001"}, Doc: "x"})
		}, `variation "Mine" (row 25): layer is not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := POP3.Clone()
			tc.break_(&c)
			err := Validate(&c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// A variation only the backend reads is valid as a store one.
	c := POP3.Clone()
	c.Variations = append(c.Variations, Variation{Name: "Mine", Kind: Bool, Profile: c.Everywhere("true"),
		Layer: StoreLayer, Clauses: []string{"V0001"}, Doc: "x"})
	assert.NoError(t, Validate(&c))
	for l, want := range map[VariationLayer]string{0: "", LexerLayer: "lexer", SessionLayer: "session", RuntimeLayer: "runtime", StoreLayer: "store", StoreLayer + 1: ""} {
		assert.Equal(t, want, l.String())
	}
}

// TestProfileFunc: the Go names of profiles.
func TestProfileFunc(t *testing.T) {
	for name, want := range map[string]string{"rfc1939": "RFC1939", "exchange2010": "Exchange2010", "my-site": "MySite"} {
		assert.Equal(t, want, ProfileFunc(name))
	}
}
