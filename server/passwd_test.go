package server

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHashCost: SHA-crypt hashes use Dovecot's 5,000 rounds, and verifying
// one (as every failed login does with the dummy) stays cheap in memory.
// Found by FuzzServerSession's allocation bound: the library's default of
// 500,000 rounds allocated 32 MB per verification.
func TestHashCost(t *testing.T) {
	f, err := HashPassword("SHA512-CRYPT", "pw")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(f, "{SHA512-CRYPT}$6$rounds=5000$") || strings.HasPrefix(f, "{SHA512-CRYPT}$6$"), f)
	a, err := ParseAccount("u:" + f)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(3, func() { a.Verify([]byte("wrong")) })
	assert.Less(t, allocs, 20000.0, "allocations per verification")
	assert.True(t, a.Verify([]byte("pw")))
}
