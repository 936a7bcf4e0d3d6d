package pop3gen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/pop3"
)

// TestProfiles checks the values MS-STANXPOP3 gives each profile.
func TestProfiles(t *testing.T) {
	clause.Covers(t,
		"C0004", "C0007", "E0006", "E0007", "MS-2.1.1", "MS-2.1.2", "MS-2.1.3", "MS-2.1.4",
		"MS-2.1.5", "RFC1122-1.2.2", "RFC1939-3-ARG40", "RFC1939-3-SPACE", "RFC1939-4-LOCK",
		"RFC1939-7-PASS", "RFC1939-7-USER", "RFC2449-4-CMD255", "V0001", "V0002", "V0003", "V0008",
		"V0009", "V0010", "V0011", "V0012")
	r, e7, e10 := RFC1939(), Exchange2007(), Exchange2010()

	// MS-2.1.1 separators; MS-2.1.2 argument length.
	assert.False(t, r.LenientSeparators)
	assert.True(t, e7.LenientSeparators && e10.LenientSeparators)
	// RFC2449-4-CMD255: rfc1939 offers CAPA, so the command length alone
	// bounds arguments (RFC1939-3-ARG40's 40 is a setting, not a profile).
	assert.Zero(t, r.MaxArgOctets)
	assert.Zero(t, e7.MaxArgOctets)
	assert.Zero(t, e10.MaxArgOctets)
	// E0006, E0007, RFC2449-4-CMD255: command length.
	assert.Equal(t, 255, r.MaxCommandOctets)
	assert.Equal(t, 47, e7.MaxCommandOctets)
	assert.Equal(t, 512, e10.MaxCommandOctets)
	// MS-2.1.3, C0004, RFC1939-4-LOCK: lock vs snapshot.
	assert.Equal(t, pop3.MaildropAccessLock, r.MaildropAccess)
	assert.Equal(t, pop3.MaildropAccessSnapshot, e7.MaildropAccess)
	assert.Equal(t, pop3.MaildropAccessSnapshot, e10.MaildropAccess)
	// MS-2.1.4, MS-2.1.5: exact vs storage sizes.
	assert.True(t, r.ExactSizes)
	assert.False(t, e7.ExactSizes || e10.ExactSizes)
	// V0008, V0009, V0010, V0011, V0012.
	assert.False(t, r.UserAlwaysOK)
	assert.True(t, e7.UserAlwaysOK && e10.UserAlwaysOK)
	assert.Equal(t, pop3.PlaintextAuthAlways, r.PlaintextAuth)
	assert.Equal(t, pop3.PlaintextAuthSecure, e10.PlaintextAuth)
	assert.False(t, r.PassKeepsSpaces)
	assert.True(t, e7.PassKeepsSpaces && e10.PassKeepsSpaces)
	assert.True(t, r.APOP)
	assert.False(t, e7.APOP || e10.APOP)
	// V0002, V0003.
	assert.Equal(t, 60*time.Second, e10.UnauthTimeout)
	assert.Equal(t, 1800*time.Second, e10.AuthTimeout)
	assert.True(t, e10.TimeoutNotice)
	assert.False(t, r.TimeoutNotice)
	// V0001, C0007.
	assert.True(t, r.InformativeErrors && e10.InformativeErrors)
	assert.Equal(t, pop3.UIDLFormatDecimal, e10.UIDLFormat)
	// RFC1122-1.2.2, RFC1939-3-SPACE, RFC1939-7-PASS, RFC1939-7-USER: what
	// each profile accepts beyond the letter of RFC 1939.
	assert.True(t, r.SpaceRuns && e7.SpaceRuns && e10.SpaceRuns)
	assert.True(t, r.IgnoreExtraArgs)
	assert.False(t, e7.IgnoreExtraArgs || e10.IgnoreExtraArgs)
	assert.False(t, r.StickyUser || e7.StickyUser || e10.StickyUser)
	assert.Equal(t, pop3.UserNameCaseKeep, r.UserNameCase)
	assert.Equal(t, pop3.UserNameCaseLower, e7.UserNameCase)
	assert.Equal(t, pop3.UserNameCaseLower, e10.UserNameCase)

	for _, v := range []Variations{r, e7, e10} {
		assert.NoError(t, v.Check())
	}
}

// TestProfileNames checks names, aliases and the default.
func TestProfileNames(t *testing.T) {
	for name, want := range map[string]Variations{
		"rfc1939": RFC1939(), "RFC": RFC1939(), "exchange2007": Exchange2007(),
		"Exchange2010": Exchange2010(), "exchange": Exchange2010(),
	} {
		got, err := Profile(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, got, name)
	}
	_, err := Profile("exchange2003")
	assert.EqualError(t, err, `unknown profile "exchange2003" (known: rfc1939, exchange2007, exchange2010)`)
	assert.Equal(t, "exchange2010", DefaultProfile)
}

// TestSet covers Set and Get for every kind, with range checks (E0006:
// MaxCommandOctets settable from 40 to 1024).
func TestSet(t *testing.T) {
	clause.Covers(t, "E0006")
	v := Exchange2010()
	for _, tc := range []struct{ name, value, get string }{
		{"MaxCommandOctets", "40", "40"},
		{"maxcommandoctets", "1024", "1024"},
		{"LenientSeparators", "false", "false"},
		{"MaildropAccess", "LOCK", "lock"},
		{"UnauthTimeout", "90s", "1m30s"},
		{"AuthTimeout", "1800", "30m0s"},
		{"MaxArgOctets", "0", "0"},
		{"PlaintextAuth", "never", "never"},
	} {
		require.NoError(t, v.Set(tc.name, tc.value), tc.name)
		got, err := v.Get(tc.name)
		require.NoError(t, err)
		assert.Equal(t, tc.get, got, tc.name)
	}
	for _, tc := range []struct{ name, value, err string }{
		{"MaxCommandOctets", "39", "MaxCommandOctets: 39 is outside 40–1024"},
		{"MaxCommandOctets", "1025", "MaxCommandOctets: 1025 is outside 40–1024"},
		{"MaxCommandOctets", "0", "MaxCommandOctets: 0 is outside 40–1024"},
		{"MaxCommandOctets", "lots", `MaxCommandOctets: "lots" is not a whole number`},
		{"MaxArgOctets", "256", "MaxArgOctets: 256 is outside 1–255 (or 0 for no limit)"},
		{"APOP", "yes please", `APOP: "yes please" is not true or false`},
		{"MaildropAccess", "shared", `MaildropAccess: "shared" is not one of lock, snapshot`},
		{"UnauthTimeout", "1s", "UnauthTimeout: 1s is outside 10s–24h0m0s"},
		{"UnauthTimeout", "soon", `UnauthTimeout: "soon" is not a duration such as 90s or 30m`},
		{"NoSuchThing", "1", `unknown variation "NoSuchThing" (see VariationTable)`},
	} {
		assert.EqualError(t, v.Set(tc.name, tc.value), tc.err)
	}
	_, err := v.Get("nope")
	assert.Error(t, err)

	bad := Exchange2010()
	bad.MaxCommandOctets = 20
	assert.EqualError(t, bad.Check(), "MaxCommandOctets: 20 is outside 40–1024")
}

// TestVariationTable checks that the table as data agrees with the
// profile constructors: Get of every variation under every profile gives
// the value the table lists.
func TestVariationTable(t *testing.T) {
	ps := profiles(t)
	for _, info := range VariationTable {
		require.Len(t, info.Profiles, len(ProfileNames))
		require.NotEmpty(t, info.Clauses, info.Name)
		for i, p := range ProfileNames {
			v := ps[p]
			got, err := v.Get(info.Name)
			require.NoError(t, err)
			want := info.Profiles[i]
			if info.Kind == "duration" {
				d, err := time.ParseDuration(want)
				require.NoError(t, err)
				want = d.String()
			}
			assert.Equal(t, want, got, "%s under %s", info.Name, p)
			// Set accepts what the table lists.
			assert.NoError(t, v.Set(info.Name, info.Profiles[i]))
		}
	}
}
