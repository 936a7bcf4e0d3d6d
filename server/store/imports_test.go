package store_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportGraph holds the seams of the server to their arrows: the
// store interfaces depend on the runtime (a store's maildrop is a
// pop3.Maildrop) and the standard library alone, the Maildir store on
// them and x/sys/unix (the system calls the standard library lacks), and PostgreSQL's store on the seams (store,
// account, maildir) and pgx, and LMTP delivery on the seams and go-smtp,
// never on package server or the heavy dependencies of its other parts
// (Kerberos, JOSE, Prometheus); the SASL mechanisms, which another server
// on the runtime may use, on the runtime and the accounts, never on
// package server or its metrics.
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.ElementsMatch(t, []string{"github.com/pop3kit/pop3kit/pop3", "github.com/pop3kit/pop3kit/server/store"}, strings.Fields(string(out)),
		"package store imports nothing but the runtime and the standard library")

	out, err = exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../maildir").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.ElementsMatch(t, []string{"github.com/pop3kit/pop3kit/internal/faultinject", "github.com/pop3kit/pop3kit/pop3",
		"github.com/pop3kit/pop3kit/server/store", "github.com/pop3kit/pop3kit/server/maildir", "golang.org/x/sys/unix"}, strings.Fields(string(out)),
		"the Maildir store imports the store interfaces, the runtime, the standard library and x/sys/unix (renameat2, getdents)")

	// PostgreSQL's store and LMTP delivery reach the server through the
	// seams only: nothing of package server, and none of its heavy
	// dependencies.
	for _, pkg := range []string{"../pgstore", "../lmtp"} {
		out, err = exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
		require.NoError(t, err, "%s", out)
		deps := strings.Fields(string(out))
		assert.Contains(t, deps, "github.com/pop3kit/pop3kit/server/store")
		for _, d := range deps {
			assert.NotEqual(t, "github.com/pop3kit/pop3kit/server", d, "%s imports package server", pkg)
			for _, heavy := range []string{"github.com/jcmturner/gokrb5", "github.com/go-jose", "github.com/prometheus"} {
				assert.False(t, strings.HasPrefix(d, heavy), "%s depends on %s", pkg, d)
			}
		}
	}

	// The SASL mechanisms: server imports saslmech, never the other
	// way; of pop3kit they reach the runtime, the accounts and their
	// test hooks only, and nothing of Prometheus.
	out, err = exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../saslmech").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	var ours []string
	for _, d := range deps {
		assert.NotEqual(t, "github.com/pop3kit/pop3kit/server", d, "saslmech imports package server")
		assert.False(t, strings.HasPrefix(d, "github.com/prometheus"), "saslmech depends on %s", d)
		if strings.HasPrefix(d, "github.com/pop3kit/pop3kit/") {
			ours = append(ours, d)
		}
	}
	assert.ElementsMatch(t, []string{"github.com/pop3kit/pop3kit/pop3", "github.com/pop3kit/pop3kit/server/account",
		"github.com/pop3kit/pop3kit/internal/saslhook", "github.com/pop3kit/pop3kit/server/saslmech"}, ours,
		"saslmech imports, of pop3kit, the runtime, the accounts and its test hooks")
}
