package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBytes: sizes read with and without units; bad ones are refused.
func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Bytes
		bad  bool
	}{
		{in: "268435456", want: 256 << 20},
		{in: "256MiB", want: 256 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "500MB", want: 500e6},
		{in: "64 KiB", want: 64 << 10},
		{in: "12XB", bad: true},
		{in: "-1", bad: true},
		{in: "", bad: true},
		{in: "99999999999TiB", bad: true},
	} {
		var b Bytes
		err := b.UnmarshalText([]byte(tc.in))
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, b, tc.in)
	}
	assert.Equal(t, "256MiB", Bytes(256<<20).String())
}

// TestAuthConfigCheck: each setting's range check names the bad value.
func TestAuthConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{set: func(c *Config) { c.AuthWorkers = 0 }, want: "auth workers 0"},
		{set: func(c *Config) { c.AuthWorkers = 5000 }, want: "auth workers 5000"},
		{set: func(c *Config) { c.AuthMemory = 1 << 20 }, want: "auth memory 1MiB"},
		{set: func(c *Config) { c.AuthQueueTimeout = 0 }, want: "auth queue timeout 0s"},
		{set: func(c *Config) { c.MaxAuthFailures = 0 }, want: "max auth failures 0"},
		{set: func(c *Config) { c.PenaltyMax = Duration(-time.Second) }, want: "penalty max -1s"},
		{set: func(c *Config) { c.PenaltyEntries = 0 }, want: "penalty entries 0"},
	} {
		c := DefaultConfig()
		tc.set(&c)
		err := c.checkAuth()
		if assert.Error(t, err, tc.want) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
	c := DefaultConfig()
	assert.NoError(t, c.checkAuth())
	c.Penalties, c.PenaltyEntries = false, 0
	assert.NoError(t, c.checkAuth(), "the table's size does not matter when penalties are off")
}
