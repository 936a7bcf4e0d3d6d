package server

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/server/account"
)

// Bytes is a size that TOML and flags read as a number of bytes or with a
// binary or decimal unit: 268435456, "256MiB", "1GiB", "500MB".
type Bytes int64

// units are the suffixes Bytes reads, longest first so "MiB" is not read
// as "B".
var units = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// UnmarshalText reads "256MiB", "1GB" or a bare number of bytes.
func (b *Bytes) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	num, factor := s, int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, factor = strings.TrimSpace(n), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return fmt.Errorf("%q is not a size such as 256MiB, 1GiB or a number of bytes", s)
	}
	*b = Bytes(n * factor)
	return nil
}

// UnmarshalTOML reads a TOML integer (bytes) or string ("256MiB").
func (b *Bytes) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		return b.UnmarshalText([]byte(strconv.FormatInt(v, 10)))
	case string:
		return b.UnmarshalText([]byte(v))
	}
	return fmt.Errorf("%v is not a size such as \"256MiB\" or a number of bytes", v)
}

// String prints the size in the largest binary unit that divides it.
func (b Bytes) String() string { return account.FormatSize(int64(b)) }

// checkAuth checks the settings of password verification, failed logins
// and penalties, naming the bad value.
func (c *Config) checkAuth() error {
	// 1024 verifications at once is far past any machine's CPUs.
	if c.AuthWorkers < 1 || c.AuthWorkers > 1024 {
		return fmt.Errorf("auth workers %d is outside 1–1024", c.AuthWorkers)
	}
	if c.AuthMemory < minAuthMemory || c.AuthMemory > 1<<40 {
		return fmt.Errorf("auth memory %v (%d bytes) is outside %v–1TiB: it must hold one ARGON2ID verification (64 MiB)",
			c.AuthMemory, int64(c.AuthMemory), Bytes(minAuthMemory))
	}
	if c.AuthQueueTimeout <= 0 || time.Duration(c.AuthQueueTimeout) > 5*time.Minute {
		return fmt.Errorf("auth queue timeout %v is outside (0, 5m]", time.Duration(c.AuthQueueTimeout))
	}
	// A hundred failures is far past any typing; beyond that the cap
	// would no longer slow a guesser.
	if c.MaxAuthFailures < 1 || c.MaxAuthFailures > 100 {
		return fmt.Errorf("max auth failures %d is outside 1–100", c.MaxAuthFailures)
	}
	if c.PenaltyMax < 0 || time.Duration(c.PenaltyMax) > time.Minute {
		return fmt.Errorf("penalty max %v is outside 0–1m", time.Duration(c.PenaltyMax))
	}
	// Ten million entries is a few GiB: the cap exists to bound memory.
	if c.Penalties && (c.PenaltyEntries < 1 || c.PenaltyEntries > 10_000_000) {
		return fmt.Errorf("penalty entries %d is outside 1–10000000", c.PenaltyEntries)
	}
	return nil
}
