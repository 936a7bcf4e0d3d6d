package account

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSCRAMDovecotVector: the {SCRAM-SHA-256} secret of Dovecot's own
// test (src/lib-auth/test-password-scheme.c) parses, verifies "test" and
// nothing else, and is written back byte for byte; HashPassword writes
// secrets in the same shape.
func TestSCRAMDovecotVector(t *testing.T) {
	const dovecot = "{SCRAM-SHA-256}4096,LfNGSFqiFykEZ1xDAYlnKQ==,HACNf9CII7cMz3XjRy/Oh3Ae2LHApoDyNw74d3YtFws=,AQH0j7Hf8J12g8eNBadvzlNB2am3PxgNwFCFd3RxEaw="
	a, err := ParseAccount("u:" + dovecot)
	require.NoError(t, err)
	assert.True(t, a.Verify([]byte("test")))
	assert.False(t, a.Verify([]byte("Test")))
	assert.Equal(t, dovecot[len("{SCRAM-SHA-256}"):], a.sasl.scram.String())
	_, plain := a.PlainSecret()
	assert.False(t, plain, "a SCRAM secret is no password for APOP")

	field, err := HashPassword("scram-sha-256", "hunter2")
	require.NoError(t, err)
	assert.Regexp(t, `^\{SCRAM-SHA-256\}4096,[A-Za-z0-9+/]{22}==,[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}=$`, field)
	b, err := ParseAccount("u:" + field)
	require.NoError(t, err)
	assert.True(t, b.Verify([]byte("hunter2")))
	assert.False(t, b.Verify([]byte("hunter3")))

	for _, bad := range []string{
		"4096,LfNGSFqiFykEZ1xDAYlnKQ==,HACNf9CII7cMz3XjRy/Oh3Ae2LHApoDyNw74d3YtFws=",                                              // three fields
		"1000,LfNGSFqiFykEZ1xDAYlnKQ==,HACNf9CII7cMz3XjRy/Oh3Ae2LHApoDyNw74d3YtFws=,AQH0j7Hf8J12g8eNBadvzlNB2am3PxgNwFCFd3RxEaw=", // under RFC 7677's 4096
		"4096,LfNGSFqiFykEZ1xDAYlnKQ==,HACNf9CII7cMz3XjRy/Oh3Ae2LHApoDyNw74d3Yt,AQH0j7Hf8J12g8eNBadvzlNB2am3PxgNwFCFd3RxEaw=",     // short key
		"4096,,HACNf9CII7cMz3XjRy/Oh3Ae2LHApoDyNw74d3YtFws=,AQH0j7Hf8J12g8eNBadvzlNB2am3PxgNwFCFd3RxEaw=",                         // no salt
	} {
		_, err := ParseAccount("u:{SCRAM-SHA-256}" + bad)
		assert.Error(t, err, bad)
	}
}

// TestCRAMDovecotVector: Dovecot's {CRAM-MD5} secret of "test" is what
// pop3d computes, and its HMAC agrees with RFC 2195's example (tim,
// tanstaaftanstaaf).
func TestCRAMDovecotVector(t *testing.T) {
	const dovecot = "e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6"
	assert.Equal(t, dovecot, hashCRAM("test"))
	a, err := ParseAccount("u:{CRAM-MD5}" + dovecot)
	require.NoError(t, err)
	assert.True(t, a.Verify([]byte("test")))
	assert.False(t, a.Verify([]byte("tset")))
	k, ok := CRAMCredentials(a)
	require.True(t, ok)
	assert.Equal(t, cramFromPassword("test"), k)

	rfc := cramFromPassword("tanstaaftanstaaf")
	assert.Equal(t, "b913a602c7eda7a495b4e6e7334d3890",
		hexString(rfc.Sum([]byte("<1896.697170952@postoffice.reston.mci.net>"))), "RFC 2195 §2's example")
	long := cramFromPassword(string(make([]byte, 100)))
	assert.Len(t, long.String(), 64, "a key longer than a block is hashed first")
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
