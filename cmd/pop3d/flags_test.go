package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServeTrustFlags: the demo trusts loopback unless --trusted-networks
// says otherwise (empty: nothing is trusted, so the Exchange profile
// refuses USER without TLS), and --require-tls refuses authentication
// before TLS with a text that says what to do.
func TestServeTrustFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	addrs, _ := startServe(t, "--demo-dir", dir, "--listen", "127.0.0.1:0", "--trusted-networks=")
	got := talk(t, addrs[0].String(), "USER demo")
	require.True(t, strings.HasPrefix(got[1], "-ERR [AUTH]"), "untrusted loopback: %q", got[1])

	addrs, _ = startServe(t, "--demo-dir", dir, "--listen", "127.0.0.1:0", "--require-tls")
	got = talk(t, addrs[0].String(), "USER demo")
	require.Equal(t, "-ERR [AUTH] this server requires TLS before any login: use STLS first, or connect to the implicit-TLS port", got[1])
}
