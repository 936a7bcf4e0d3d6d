package probe

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/internal/testserver"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/spec"
)

// TestEveryVariationAccountedFor: every variation of the table has a probe
// or says why it has none; a variation added to the table fails here
// until it has one or the other.
func TestEveryVariationAccountedFor(t *testing.T) {
	for _, v := range spec.POP3.Variations {
		_, probed := probes[v.Name]
		why, excused := noProbe[v.Name]
		assert.True(t, probed != excused, "%s: a probe, or a reason for none (%q)", v.Name, why)
	}
	for name := range probes {
		assert.True(t, hasVariation(name), "probe %s: no such variation", name)
	}
	for name := range noProbe {
		assert.True(t, hasVariation(name), "noProbe %s: no such variation", name)
	}
}

func hasVariation(name string) bool {
	for _, v := range spec.POP3.Variations {
		if v.Name == name {
			return true
		}
	}
	return false
}

// startPop3d serves pop3d with profile and sets, and a test account
// "alice" with mail.
func startPop3d(t *testing.T, profile string, sets ...string) string {
	t.Helper()
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	testenv.Maildir(t, mail, "alice", "Subject: one\n\nfirst message\n", "Subject: two\n\n.dot line\nsecond\n")
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.ListenTLS = []string{"127.0.0.1:0"}, nil
	cfg.MailRoot, cfg.Passwd, cfg.Profile = mail, testenv.Passwd(t, filepath.Join(dir, "passwd"), testenv.User{Name: "alice", Password: "secret"}), profile
	cfg.FailDelay, cfg.Penalties = 0, false
	cfg.TrustedNetworks = []string{"127.0.0.0/8"} // plaintext logins on the loopback, whatever the profile
	for _, kv := range sets {
		require.NoError(t, cfg.AddSet(kv))
	}
	_, addrs := testserver.Serve(t, cfg)
	return addrs[0].String()
}

// TestProbeRecoversProfiles: pop3d started with each built-in profile, and
// with random --set combinations of the variations the probe tells, is
// probed; every value the probe claims to tell is the one pop3d was set
// to. A probe that guesses wrong is a bug in the probe or in pop3d.
func TestProbeRecoversProfiles(t *testing.T) {
	type setup struct {
		profile string
		sets    []string
	}
	var setups []setup
	for _, p := range pop3gen.ProfileNames {
		setups = append(setups, setup{profile: p})
	}
	r := rand.New(rand.NewPCG(1, 2))
	flips := []string{"UserAlwaysOK", "IgnoreExtraArgs", "SpaceRuns", "LenientSeparators", "AuthListing", "InformativeErrors", "StickyUser", "ExactSizes", "APOP", "UTF8", "LANG", "PassKeepsSpaces"}
	for range 5 {
		s := setup{profile: pop3gen.ProfileNames[r.IntN(len(pop3gen.ProfileNames))]}
		for _, f := range flips {
			if r.IntN(2) == 0 {
				s.sets = append(s.sets, fmt.Sprintf("%s=%v", f, r.IntN(2) == 0))
			}
		}
		s.sets = append(s.sets, "UIDLFormat="+[]string{"decimal", "dovecot"}[r.IntN(2)], "MaildropAccess="+[]string{"lock", "snapshot"}[r.IntN(2)],
			fmt.Sprintf("MaxBadCommands=%d", []int{0, 1 + r.IntN(30)}[r.IntN(2)]), fmt.Sprintf("MaxCommandOctets=%d", 60+r.IntN(600)))
		setups = append(setups, s)
	}
	diverged := map[string]bool{}
	defer func() {
		for name := range knownDivergence {
			assert.True(t, diverged[name], "%s no longer diverges: take it out of knownDivergence", name)
		}
	}()
	for _, s := range setups {
		t.Run(fmt.Sprintf("%s%v", s.profile, s.sets), func(t *testing.T) {
			addr := startPop3d(t, s.profile, s.sets...)
			rep, err := Run(context.Background(), Options{Addr: addr, User: "alice", Pass: "secret"})
			require.NoError(t, err)
			v, err := pop3gen.Profile(s.profile)
			require.NoError(t, err)
			for _, kv := range s.sets {
				k, val, _ := cut(kv)
				require.NoError(t, v.Set(k, val))
			}
			told := 0
			for _, ob := range rep.Variations {
				if !ob.Told {
					continue
				}
				told++
				want, err := v.Get(ob.Name)
				require.NoError(t, err)
				if why, known := knownDivergence[ob.Name]; known && want != ob.Value {
					t.Logf("%s: pop3d is set to %s and behaves as %s: %s", ob.Name, want, ob.Value, why)
					diverged[ob.Name] = true
					continue
				}
				assert.Equal(t, want, ob.Value, "%s: the probe saw %s (%s)", ob.Name, ob.Value, ob.How)
			}
			assert.GreaterOrEqual(t, told, 14, "the probes that tell pop3d's dialect: %+v", rep.Variations)
			for _, ob := range rep.Variations {
				t.Logf("%-18s %-9s %s", ob.Name, ob.Value, ob.How)
			}
		})
	}
}

// knownDivergence are pop3d bugs the probe found, each to be fixed: the
// test holds that they still show, so that a fix takes its entry out.
// (UserAlwaysOK was the first: pop3d answered USER +OK to any name.)
var knownDivergence = map[string]string{}

func cut(kv string) (string, string, bool) {
	for i := range kv {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}
