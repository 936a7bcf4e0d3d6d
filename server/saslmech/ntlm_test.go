package saslmech

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/account"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// The common values of MS-NLMP §4.2.1.
var (
	vecServerChallenge = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	vecClientChallenge = bytes.Repeat([]byte{0xaa}, 8)
	vecRandomKey       = bytes.Repeat([]byte{0x55}, 16)
)

// The messages of MS-NLMP §4.2.4.3 (NTLMv2), byte for byte.
const (
	vecV2Challenge = "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c0053006500720076006500720000000000"
	vecV2Auth      = "4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e00550073006500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000c5dad2544fc9799094ce1ce90bc9d03e"
)

// TestNTLMVectorsV1 checks NTOWFv1 and the NTLMv1 responses against
// MS-NLMP §4.2.2 and §4.2.3 (with client challenge).
func TestNTLMVectorsV1(t *testing.T) {
	nt := account.NTHash("Password") // NTOWFv1 and the base key: package account's TestNTHashVector
	assert.Equal(t, "67c43011f30298a2ad35ece64f16331c44bdbed927841f94",
		hex.EncodeToString(ntlmV1Response(nt, vecServerChallenge, nil, false)), "NTLMv1 response (§4.2.2.2.1)")
	assert.Equal(t, "7537f803ae367128ca458204bde7caf81e97ed2683267232",
		hex.EncodeToString(ntlmV1Response(nt, vecServerChallenge, vecClientChallenge, true)), "NTLMv1 with client challenge (§4.2.3.2.2)")
}

// TestNTLMVectorsV2 checks NTOWFv2, NTProofStr, the session base key
// and the encrypted session key against MS-NLMP §4.2.4, and reads its
// AUTHENTICATE_MESSAGE as the server does.
func TestNTLMVectorsV2(t *testing.T) {
	nt := account.NTHash("Password")
	key := ntowfv2(nt, "User", "Domain")
	assert.Equal(t, "0c868a403bfd7a93a3001ef22ef02e3f", hex.EncodeToString(key), "NTOWFv2 (§4.2.4.1.1)")

	a, err := ParseNTLMAuthenticate(unhex(t, vecV2Auth), true)
	require.NoError(t, err)
	assert.Equal(t, "User", a.User)
	assert.Equal(t, "Domain", a.Domain)
	assert.Equal(t, "COMPUTER", a.Workstation)
	assert.Equal(t, uint32(0xe2888235), a.Flags)
	assert.Nil(t, a.MIC, "the payload starts at 72: no MIC field")
	assert.Equal(t, "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa", hex.EncodeToString(a.LM), "LMv2 response (§4.2.4.2.1)")
	require.Len(t, a.NT, 84)
	proof, blob := a.NT[:16], a.NT[16:]
	assert.Equal(t, "68cd0ab851e51c96aabc927bebef6a1c", hex.EncodeToString(proof), "NTProofStr (§4.2.4.2.2)")
	assert.Equal(t, proof, ntProof(key, vecServerChallenge, blob), "NTProofStr recomputed from the blob (temp, §4.2.4.1.3)")
	b, err := parseNTLMBlob(blob)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), b.time, "the vector's Time is zero")

	base := sessionBaseKeyV2(key, proof)
	assert.Equal(t, "8de40ccadbc14a82f15cb0ad0de95ca3", hex.EncodeToString(base), "SessionBaseKey (§4.2.4.1.2)")
	assert.Equal(t, "c5dad2544fc9799094ce1ce90bc9d03e", hex.EncodeToString(a.SessionKey), "EncryptedRandomSessionKey (§4.2.4.2.3)")
	exported, ok := exportedSessionKey(a.Flags, base, a.SessionKey)
	require.True(t, ok)
	assert.Equal(t, vecRandomKey, exported, "RC4(KeyExchangeKey, EncryptedRandomSessionKey) is the RandomSessionKey")
	plain, ok := exportedSessionKey(a.Flags&^ntlmKeyExch, base, a.SessionKey)
	require.True(t, ok)
	assert.Equal(t, base, plain, "without KEY_EXCH the exported key is the KeyExchangeKey")

	// The vector's CHALLENGE_MESSAGE has the same layout as pop3d's.
	ch := unhex(t, vecV2Challenge)
	require.NoError(t, ntlmHeader(ch, 2, 48))
	assert.Equal(t, vecServerChallenge, ch[24:32])
}

// TestNTLMChallengeMessage: pop3d's CHALLENGE_MESSAGE carries the
// challenge, the domain as TargetName, the four AV pairs and the flags
// chosen from the client's.
func TestNTLMChallengeMessage(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m, flags := ntlmChallenge(0xe2088297, vecServerChallenge, "POP3KIT", "mail.example.org", now)
	require.NoError(t, ntlmHeader(m, 2, 56))
	assert.Equal(t, flags, binary.LittleEndian.Uint32(m[20:]))
	assert.NotZero(t, flags&ntlmUnicode)
	assert.NotZero(t, flags&ntlmExtendedSession, "echoed")
	assert.NotZero(t, flags&ntlmTargetInfo)
	assert.Zero(t, flags&ntlmLMKey, "never LM_KEY")
	assert.Equal(t, vecServerChallenge, m[24:32])
	target, _, err := ntlmField(m, 12, 100, 56)
	require.NoError(t, err)
	assert.Equal(t, account.UTF16LE("POP3KIT"), target)
	info, _, err := ntlmField(m, 40, 1000, 56)
	require.NoError(t, err)
	got := map[uint16][]byte{}
	for len(info) >= 4 {
		id, n := binary.LittleEndian.Uint16(info), int(binary.LittleEndian.Uint16(info[2:]))
		got[id] = info[4 : 4+n]
		info = info[4+n:]
	}
	assert.Equal(t, account.UTF16LE("POP3KIT"), got[avNbDomainName])
	assert.Equal(t, account.UTF16LE("MAIL"), got[avNbComputerName])
	assert.Equal(t, account.UTF16LE("mail.example.org"), got[avDnsComputerName])
	assert.Equal(t, filetime(now), binary.LittleEndian.Uint64(got[avTimestamp]))
	assert.Contains(t, got, uint16(avEOL))

	_, oem := ntlmChallenge(ntlmOEM|ntlmRequestTarget, vecServerChallenge, "POP3KIT", "h", now)
	assert.Equal(t, uint32(ntlmOEM), oem&(ntlmOEM|ntlmUnicode), "an OEM-only client gets OEM strings (curl asks so)")
}

// TestNTLMParseBounds: a field outside the message, too long, or a
// malformed string is an error, never a panic.
func TestNTLMParseBounds(t *testing.T) {
	good := unhex(t, vecV2Auth)
	for _, c := range []struct {
		name   string
		mutate func(m []byte) []byte
	}{
		{"short", func(m []byte) []byte { return m[:40] }},
		{"signature", func(m []byte) []byte { m[0] = 'X'; return m }},
		{"type", func(m []byte) []byte { m[8] = 1; return m }},
		{"offset past the end", func(m []byte) []byte { binary.LittleEndian.PutUint32(m[40:], 0xfffffff0); return m }},
		{"length past the end", func(m []byte) []byte { binary.LittleEndian.PutUint16(m[20:], 0x200); return m }},
		{"offset inside the header", func(m []byte) []byte { binary.LittleEndian.PutUint32(m[40:], 8); return m }},
		{"odd UTF-16", func(m []byte) []byte { binary.LittleEndian.PutUint16(m[36:], 7); return m }},
		{"session key too long", func(m []byte) []byte { binary.LittleEndian.PutUint16(m[52:], 17); return m }},
		{"too long", func(m []byte) []byte { return append(m, make([]byte, maxNTLMMessage)...) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseNTLMAuthenticate(c.mutate(append([]byte(nil), good...)), true)
			assert.Error(t, err)
		})
	}
	oem := append([]byte(nil), good...)
	oem[0x48] = 0xc3 // "Domain" read as OEM, its first octet non-ASCII
	_, err := ParseNTLMAuthenticate(oem, false)
	assert.ErrorContains(t, err, "non-ASCII OEM")
	// fuzz/testdata/fuzz/FuzzNtlmDecode/b9860a5223d21ead: every field
	// out of bounds; the first refusal ends the parse (it once built an
	// error per field: 23 allocations).
	_, err = ParseNTLMAuthenticate(append([]byte("NTLMSSP\x00\x03\x00\x00\x00"), bytes.Repeat([]byte("0"), 56)...), true)
	assert.ErrorContains(t, err, "field at 12")
	for _, blob := range [][]byte{nil, make([]byte, 31), append([]byte{2, 1}, make([]byte, 34)...),
		append(append([]byte{1, 1}, make([]byte, 26)...), 6, 0, 3, 0, 0, 0, 0)} {
		_, err := parseNTLMBlob(blob)
		assert.Error(t, err, "%x", blob)
	}
}

// TestNTLMUserMapping: the domain field and the DOMAIN\user and
// user@DOMAIN forms, as README documents them.
func TestNTLMUserMapping(t *testing.T) {
	for _, c := range []struct {
		user, domain, want string
		ok                 bool
	}{
		{user: "alice", want: "alice", ok: true},
		{user: "alice", domain: "pop3kit", want: "alice", ok: true},
		{user: "alice", domain: "OTHER", want: "alice", ok: false},
		{user: `POP3KIT\alice`, want: "alice", ok: true},
		{user: `pop3kit\alice`, domain: "POP3KIT", want: "alice", ok: true},
		{user: `OTHER\alice`, want: "alice", ok: false},
		{user: `OTHER\alice`, domain: "POP3KIT", want: "alice", ok: false},
		{user: "alice@pop3kit", want: "alice", ok: true},
		{user: "alice@example.org", want: "alice@example.org", ok: true},
		{user: "alice@example.org", domain: "EVIL", want: "alice@example.org", ok: false},
	} {
		got, ok := ntlmUser(c.user, c.domain, "POP3KIT")
		assert.Equal(t, c.want, got, "%q %q", c.user, c.domain)
		assert.Equal(t, c.ok, ok, "%q %q", c.user, c.domain)
	}
}

// TestNTLMSecret: {NTLM} lines parse, verify USER/PASS, and give NTLM
// their hash; a one-way hash gives none.
func TestNTLMSecret(t *testing.T) {
	f, err := account.HashPassword("NTLM", "Password")
	require.NoError(t, err)
	assert.Equal(t, "{NTLM}a4f49c406510bdcab6824ee7c30fd852", f)
	a, err := account.ParseAccount("u:{NTLM}A4F49C406510BDCAB6824EE7C30FD852")
	require.NoError(t, err)
	assert.True(t, a.Verify([]byte("Password")), "upper-case hex too")
	assert.False(t, a.Verify([]byte("password")))
	h, ok := account.NTLMCredentials(a)
	assert.True(t, ok)
	assert.Equal(t, account.NTHash("Password"), h)
	_, ok = account.NTLMCredentials(mustAccount(t, "u:{PLAIN}Password"))
	assert.True(t, ok)
	_, ok = account.NTLMCredentials(mustAccount(t, "u:"+mustHash(t, "CRAM-MD5", "x")))
	assert.False(t, ok, "a CRAM-MD5 secret gives no NT hash")
	_, err = account.ParseAccount("u:{NTLM}abcd")
	assert.ErrorContains(t, err, "32 hex digits")
}

func mustAccount(t *testing.T, line string) *account.Account {
	a, err := account.ParseAccount(line)
	require.NoError(t, err)
	return a
}

// TestReplayCache: a key is refused while remembered; the cache stays
// within its size, the oldest giving way.
func TestReplayCache(t *testing.T) {
	c := newReplayCache(2, time.Minute)
	now := time.Now()
	k := func(b byte) [16]byte { return [16]byte{b} }
	assert.True(t, c.add(k(1), now))
	assert.False(t, c.add(k(1), now.Add(time.Second)))
	assert.True(t, c.add(k(2), now))
	assert.True(t, c.add(k(3), now), "full: 1 gives way")
	assert.Len(t, c.seen, 2)
	assert.True(t, c.add(k(1), now))
	assert.True(t, c.add(k(4), now.Add(2*time.Minute)))
	assert.True(t, c.add(k(4), now.Add(4*time.Minute)), "after ttl a key may come again (the timestamp check refuses it)")
}

// TestNTLMDomain: without a domain configured, NTLM announces POP3KIT.
func TestNTLMDomain(t *testing.T) {
	assert.Equal(t, "POP3KIT", (&Config{}).ntlmDomain())
	assert.Equal(t, "CORP-1", (&Config{NTLMDomain: "CORP-1"}).ntlmDomain())
}

// mustHash is HashPassword's field for password in scheme.
func mustHash(t *testing.T, scheme, password string) string {
	t.Helper()
	f, err := account.HashPassword(scheme, password)
	require.NoError(t, err)
	return f
}
