package account

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMD4RFC1320 runs RFC 1320's test suite (appendix A.5).
func TestMD4RFC1320(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "31d6cfe0d16ae931b73c59d7e0c089c0"},
		{"a", "bde52cb31de33e46245e05fbdbd6fb24"},
		{"abc", "a448017aaf21d8525fc10ae87aa6729d"},
		{"message digest", "d9130a8164549fe818874806e1c7014b"},
		{"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"},
		{strings.Repeat("1234567890", 8), "e33b4ddc9c38f2199c3e7b164fcc0536"},
	} {
		got := md4Sum([]byte(c.in))
		assert.Equal(t, c.want, hex.EncodeToString(got[:]), "MD4(%q)", c.in)
	}
}

// TestNTHashVector: NTOWFv1 and the session base key of MS-NLMP §4.2.2,
// and the {NTLM} secret HashPassword writes.
func TestNTHashVector(t *testing.T) {
	nt := NTHash("Password")
	assert.Equal(t, "a4f49c406510bdcab6824ee7c30fd852", hex.EncodeToString(nt[:]), "NTOWFv1 (§4.2.2.1.2)")
	assert.Equal(t, "a4f49c406510bdcab6824ee7c30fd852", hashNTLM("Password"), "{NTLM} secret")
	base := md4Sum(nt[:])
	assert.Equal(t, "d87262b0cde4b1cb7499becccdf10784", hex.EncodeToString(base[:]), "SessionBaseKey (§4.2.2.1.3)")
}

// TestArgon2Cost: an argon2 verification is charged its m.
func TestArgon2Cost(t *testing.T) {
	c, ok := argon2Cost("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$a2V5")
	assert.True(t, ok)
	assert.Equal(t, int64(64<<20+SmallHashCost), c)
	_, ok = argon2Cost("$argon2id$v=19$t=3,p=4$c2FsdA$a2V5")
	assert.False(t, ok)
	f, err := HashPassword("BLF-CRYPT", "pw")
	require.NoError(t, err)
	a, err := ParseAccount("u:" + f)
	require.NoError(t, err)
	assert.Equal(t, int64(SmallHashCost), a.Cost())
	assert.True(t, strings.HasPrefix(f, "{BLF-CRYPT}"))
}
