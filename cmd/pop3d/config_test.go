package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// TestAuthConfigTOML: the settings' TOML keys, auth_memory as a number
// of bytes or with a unit.
func TestAuthConfigTOML(t *testing.T) {
	for _, mem := range []string{"268435456", `"256MiB"`} {
		path := filepath.Join(t.TempDir(), "pop3d.toml")
		require.NoError(t, os.WriteFile(path, []byte("auth_workers = 3\nauth_memory = "+mem+"\nauth_queue_timeout = \"5s\"\n"+
			"max_auth_failures = 4\npenalties = false\npenalty_max = \"10s\"\npenalty_entries = 50\n"), 0o600))
		c := server.DefaultConfig()
		require.NoError(t, loadConfigFile(path, &c), mem)
		assert.Equal(t, 3, c.AuthWorkers)
		assert.Equal(t, server.Bytes(256<<20), c.AuthMemory, mem)
		assert.Equal(t, server.Duration(5*time.Second), c.AuthQueueTimeout)
		assert.Equal(t, 4, c.MaxAuthFailures)
		assert.False(t, c.Penalties)
		assert.Equal(t, server.Duration(10*time.Second), c.PenaltyMax)
		assert.Equal(t, 50, c.PenaltyEntries)
	}
}

// TestConfigFileUnknownKey: a misspelt key is refused by name.
func TestConfigFileUnknownKey(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pop3d.toml")
	require.NoError(t, os.WriteFile(f, []byte("listen = [\"127.0.0.1:0\"]\nmail_rooot = \"/x\"\n"), 0o600))
	c := server.DefaultConfig()
	err := loadConfigFile(f, &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown setting mail_rooot")
}

// TestConfigFileSetOrder: the file's [set] variations apply, and a --set
// flag given after the file wins over them.
func TestConfigFileSetOrder(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pop3d.toml")
	require.NoError(t, os.WriteFile(f, []byte("profile = \"rfc1939\"\n[set]\nMaxCommandOctets = \"300\"\nExactSizes = \"false\"\n"), 0o600))
	c := server.DefaultConfig()
	require.NoError(t, loadConfigFile(f, &c))
	require.NoError(t, c.AddSet("MaxCommandOctets=400"))
	v, err := c.Variations()
	require.NoError(t, err)
	assert.Equal(t, 400, v.MaxCommandOctets)
	assert.False(t, v.ExactSizes)
}

// TestExampleConfig: dist/pop3d.example.toml parses, and it names every
// key the configuration has (commented or not), so that it stays the
// complete reference an administrator starts from.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "dist", "pop3d.example.toml")
	c := server.DefaultConfig()
	require.NoError(t, loadConfigFile(path, &c))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	rt := reflect.TypeOf(server.Config{})
	for i := range rt.NumField() {
		tag := strings.Split(rt.Field(i).Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		assert.Regexp(t, `(?m)^(# )?`+regexp.QuoteMeta(tag)+` = |^\[`+regexp.QuoteMeta(tag)+`\]`, string(b), "the example lacks %s", tag)
	}
}
