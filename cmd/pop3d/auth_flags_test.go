package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeAuthFlags: --max-auth-failures, --fail-delay and the pool's
// flags reach the server: one failure closes the connection.
func TestServeAuthFlags(t *testing.T) {
	dir := t.TempDir()
	addrs, _ := startServe(t, "--demo-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0",
		"--fail-delay", "0", "--max-auth-failures", "1", "--auth-workers", "2", "--auth-memory", "256MiB",
		"--auth-queue-timeout", "5s", "--penalties=false", "--penalty-max", "10s", "--penalty-entries", "100")
	got := talk(t, addrs[0].String(), "USER demo", "PASS wrong")
	assert.Equal(t, "-ERR [AUTH] invalid credentials; too many failed logins on this connection, closing it", got[2])
}

// TestServeAuthFlagErrors: a bad value of each flag stops serve at start
// with a message that names it.
func TestServeAuthFlagErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--demo-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--auth-workers", "-1"}, "auth workers -1 is outside 1–1024"},
		{[]string{"--auth-memory", "lots"}, `flag -auth-memory: "lots" is not a size`},
		{[]string{"--auth-memory", "1MiB"}, "auth memory 1MiB (1048576 bytes) is outside 65MiB–1TiB"},
		{[]string{"--auth-queue-timeout", "soon"}, `flag -auth-queue-timeout: "soon" is not a duration`},
		{[]string{"--max-auth-failures", "0"}, "max auth failures 0 is outside 1–100"},
		{[]string{"--penalty-max", "2m"}, "penalty max 2m0s is outside 0–1m"},
		{[]string{"--penalty-entries", "0"}, "penalty entries 0 is outside 1–10000000"},
	} {
		var out bytes.Buffer
		err := serve(append(append([]string(nil), base...), tc.args...), &out, &out, nil)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}
