package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckNTLM: the domain is upper-cased, must be a NetBIOS name, and
// once set puts NTLM in the Exchange profiles' default offer. (Unset,
// saslmech announces POP3KIT: its TestNTLMDomain.)
func TestCheckNTLM(t *testing.T) {
	c := &Config{}
	require.NoError(t, c.checkNTLM())
	assert.Empty(t, c.NTLMDomain)
	assert.False(t, c.ntlmByDefault(), "not configured")
	c.NTLMDomain = "corp-1"
	require.NoError(t, c.checkNTLM())
	assert.Equal(t, "CORP-1", c.NTLMDomain)
	assert.False(t, c.ntlmByDefault(), "no Exchange profile")
	c.Profile = "Exchange"
	assert.True(t, c.ntlmByDefault())
	for _, bad := range []string{"a.b", "SIXTEEN-LETTERS!", `x\y`, "é"} {
		c.NTLMDomain = bad
		assert.Error(t, c.checkNTLM(), bad)
	}
}
