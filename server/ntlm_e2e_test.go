package server_test

import (
	"bytes"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/saslhook"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// ntlmPassword's NT hash is MS-NLMP §4.2.2.1.2's, so the test client
// below needs no MD4 of its own: it starts from the hash, as the
// {NTLM} secret does.
const (
	ntlmPassword = "Password"
	ntlmNTHash   = "a4f49c406510bdcab6824ee7c30fd852"
)

// ntlmUsers adds ntl, with an {NTLM} secret, to the test users, and
// configures NTLM (ntlm_domain), which the Exchange profiles then offer.
func ntlmUsers(t testing.TB) func(*server.Config) {
	users := withUsers(t, "ntl:{NTLM}"+ntlmNTHash+"::::::")
	return func(c *server.Config) {
		users(c)
		c.NTLMDomain = "pop3kit"
		c.MaxPreauthPerIP, c.MaxSessionsPerUser = 1000, 1000
	}
}

// TestNTLMCurl logs in with curl's NTLM (NTLMv2) against an {NTLM}
// secret and a PLAIN one, on a connection where plaintext is refused,
// and fetches a message; curl with a wrong password, another domain, or
// an account with only a one-way hash is refused.
func TestNTLMCurl(t *testing.T) {
	clause.Covers(t, "MSNLMP-3.3.2-NTLMV2", "E0002")
	curl := need(t, "curl")
	e := newEnv(t, "exchange2010", ntlmUsers(t), untrusted)
	e.deliver("ntl", msg1, "")
	run := func(user, pw string) (string, error) {
		out, err := exec.Command(curl, "-sS", "--max-time", "20", "-u", user+":"+pw,
			"--login-options", "AUTH=NTLM", "pop3://"+e.addr+"/1").CombinedOutput()
		return string(out), err
	}
	for _, user := range []string{"ntl", `POP3KIT\ntl`, `pop3kit\ntl`, "ntl@POP3KIT", "NTL"} {
		out, err := run(user, ntlmPassword)
		require.NoError(t, err, "%s: %s", user, out)
		assert.Equal(t, strings.ReplaceAll(msg1, "\n", "\r\n"), out, "%s: RETR 1 after AUTH NTLM", user)
	}
	out, err := exec.Command(curl, "-sS", "--max-time", "20", "-u", "alice:secret",
		"--login-options", "AUTH=NTLM", "pop3://"+e.addr+"/").CombinedOutput()
	require.NoError(t, err, "PLAIN secret: %s", out)
	assert.Equal(t, "", strings.TrimSpace(string(out)))
	for _, u := range [][2]string{{"ntl", "password"}, {`OTHER\ntl`, ntlmPassword}, {"ntl@OTHER", ntlmPassword},
		{"bob", "hunter2"}, {"nobody", "x"}, {"alice", "Secret"}} {
		out, err := run(u[0], u[1])
		assert.Error(t, err, "%v: %s", u, out)
		assert.Contains(t, out, "denied", "%v", u)
	}
}

// TestNTLMOffer: once ntlm_domain is set, NTLM is in CAPA's SASL line
// and in Outlook's bare AUTH listing under the Exchange profiles, on a
// connection where plaintext is refused; not before (curl would pick it
// over PLAIN for users it cannot serve), and not under rfc1939 unless
// sasl_mechanisms lists it.
func TestNTLMOffer(t *testing.T) {
	domain := func(c *server.Config) { c.NTLMDomain = "CORP" }
	for _, profile := range []string{"exchange2010", "exchange2007"} {
		e := newEnv(t, profile, untrusted, domain)
		c := e.dial()
		require.True(t, strings.HasPrefix(c.Cmd("AUTH"), "+OK"), profile)
		assert.Equal(t, []string{"NTLM"}, c.Multi(), "%s: the bare AUTH probe (MS-POP3 §2.2.1)", profile)
		c.Cmd("CAPA")
		assert.Contains(t, c.Multi(), "SASL NTLM", "%s: CAPA, plaintext refused", profile)
		assert.Equal(t, "+ ", c.Cmd("AUTH NTLM"), profile)
		r := c.Cmd(base64.StdEncoding.EncodeToString(ntlmNegotiate))
		ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r, "+ "))
		require.NoError(t, err)
		assert.Contains(t, string(ch), string(u16("CORP")), "the CHALLENGE names ntlm_domain")
	}
	for name, opts := range map[string][]func(*server.Config){
		"exchange2010 without ntlm_domain": {untrusted}, "rfc1939": {untrusted, domain},
	} {
		e := newEnv(t, strings.Fields(name)[0], opts...)
		c := e.dial()
		assert.Equal(t, "-ERR "+pop3.ErrUnknownMechanism.Text, c.Cmd("AUTH NTLM"), name)
	}
	e := newEnv(t, "rfc1939", ntlmUsers(t), func(c *server.Config) {
		c.SASLMechanisms, c.NTLMDomain = []string{"NTLM", "PLAIN"}, ""
	})
	c := e.dial()
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "SASL NTLM PLAIN", "rfc1939, listed")
	nt, _ := hex.DecodeString(ntlmNTHash)
	r, _ := ntlmLogin(t, e.dial(), ntlmClient{user: "ntl", domain: "POP3KIT", nt: nt, time: time.Now()})
	assert.Equal(t, okEmpty, r, "listed without ntlm_domain: POP3KIT")
}

// ntlmClient is a test NTLM client, written from MS-NLMP apart from the
// server's code, that can say what a broken or hostile one says.
type ntlmClient struct {
	user, domain string
	nt           []byte // the NT hash
	time         time.Time
	v1           bool // send an NTLMv1 response with extended session security
	mic          bool // announce and compute a MIC
	badMIC       bool
}

func u16(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

func hmacMD5(key []byte, parts ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// negotiate is Windows' NEGOTIATE_MESSAGE (MS-POP3 §4.1's), Unicode,
// NTLM, extended session security, 128, key exchange, sign and seal.
var ntlmNegotiate = func() []byte {
	m := append([]byte("NTLMSSP\x00"), 1, 0, 0, 0)
	m = binary.LittleEndian.AppendUint32(m, 0xe2088237)
	return append(m, make([]byte, 16)...)
}()

// authenticate builds the AUTHENTICATE_MESSAGE answering challenge.
func (k ntlmClient) authenticate(t *testing.T, challenge []byte) []byte {
	t.Helper()
	require.True(t, bytes.HasPrefix(challenge, []byte("NTLMSSP\x00\x02\x00\x00\x00")), "%x", challenge)
	flags := binary.LittleEndian.Uint32(challenge[20:])
	require.NotZero(t, flags&1, "UNICODE chosen")
	sc := challenge[24:32]
	n, off := binary.LittleEndian.Uint16(challenge[40:]), binary.LittleEndian.Uint32(challenge[44:])
	info := challenge[off : off+uint32(n)]
	cc := make([]byte, 8)
	_, _ = rand.Read(cc)
	var lm, ntr, base []byte
	if k.v1 {
		lm = append(append([]byte{}, cc...), make([]byte, 16)...)
		s := md5.Sum(append(append([]byte{}, sc...), cc...))
		var key [21]byte
		copy(key[:], k.nt)
		for i := range 3 {
			b := key[7*i : 7*i+7]
			blk, err := des.NewCipher([]byte{b[0], b[0]<<7 | b[1]>>1, b[1]<<6 | b[2]>>2, b[2]<<5 | b[3]>>3,
				b[3]<<4 | b[4]>>4, b[4]<<3 | b[5]>>5, b[5]<<2 | b[6]>>6, b[6] << 1})
			require.NoError(t, err)
			out := make([]byte, 8)
			blk.Encrypt(out, s[:8])
			ntr = append(ntr, out...)
		}
	} else {
		// The AV pairs the server sent, less MsvAvEOL, plus MsvAvFlags
		// when a MIC is announced.
		pairs := info[:len(info)-4]
		if k.mic {
			pairs = append(append([]byte{}, pairs...), 6, 0, 4, 0, 2, 0, 0, 0)
		}
		ft := uint64(k.time.UnixNano()/100) + 116444736000000000
		blob := append([]byte{1, 1, 0, 0, 0, 0, 0, 0}, binary.LittleEndian.AppendUint64(nil, ft)...)
		blob = append(append(append(blob, cc...), 0, 0, 0, 0), pairs...)
		blob = append(blob, 0, 0, 0, 0, 0, 0, 0, 0) // MsvAvEOL, Z(4)
		key := hmacMD5(k.nt, u16(strings.ToUpper(k.user)+k.domain))
		proof := hmacMD5(key, sc, blob)
		ntr = append(proof, blob...)
		lm = make([]byte, 24)
		base = hmacMD5(key, proof)
	}
	// The payload starts at 88, after the MIC field.
	random := bytes.Repeat([]byte{0x55}, 16)
	encrypted := make([]byte, 16)
	if base != nil {
		c, err := rc4.NewCipher(base)
		require.NoError(t, err)
		c.XORKeyStream(encrypted, random)
	}
	fields := [][]byte{lm, ntr, u16(k.domain), u16(k.user), u16("WS"), encrypted}
	m := append([]byte("NTLMSSP\x00"), 3, 0, 0, 0)
	at := 88
	for _, f := range fields {
		m = binary.LittleEndian.AppendUint16(m, uint16(len(f)))
		m = binary.LittleEndian.AppendUint16(m, uint16(len(f)))
		m = binary.LittleEndian.AppendUint32(m, uint32(at))
		at += len(f)
	}
	m = binary.LittleEndian.AppendUint32(m, flags)
	m = append(m, 10, 0, 0, 0, 0, 0, 0, 15)
	m = append(m, make([]byte, 16)...) // MIC, filled in below
	for _, f := range fields {
		m = append(m, f...)
	}
	if k.mic {
		mic := hmacMD5(random, ntlmNegotiate, challenge, m)
		if k.badMIC {
			mic[0] ^= 1
		}
		copy(m[72:], mic)
	}
	return m
}

// ntlmLogin runs AUTH NTLM with k and returns the final status line and
// the AUTHENTICATE_MESSAGE sent.
func ntlmLogin(t *testing.T, c *pop3test.Conn, k ntlmClient) (string, []byte) {
	t.Helper()
	require.Equal(t, "+ ", c.Cmd("AUTH NTLM"))
	r := c.Cmd(base64.StdEncoding.EncodeToString(ntlmNegotiate))
	require.True(t, strings.HasPrefix(r, "+ "), r)
	ch, err := base64.StdEncoding.DecodeString(r[2:])
	require.NoError(t, err)
	auth := k.authenticate(t, ch)
	return c.Cmd(base64.StdEncoding.EncodeToString(auth)), auth
}

// TestNTLMRefusals: a valid NTLMv2 login (with and without a MIC) next to
// each way of failing — wrong password, wrong domain, an NTLMv1 response,
// a stale or future timestamp, a wrong MIC, a replayed message — each
// answered with the same -ERR after the same delay, and NTLMv1 accepted
// only where ntlm_allow_v1 says so.
func TestNTLMRefusals(t *testing.T) {
	const delay = 150 * time.Millisecond
	e := newEnv(t, "exchange2010", ntlmUsers(t), untrusted, func(c *server.Config) {
		c.FailDelay, c.Penalties = server.Duration(delay), false
	})
	nt, _ := hex.DecodeString(ntlmNTHash)
	good := ntlmClient{user: "ntl", domain: "POP3KIT", nt: nt, time: time.Now()}
	ok := func(k ntlmClient) {
		t.Helper()
		r, _ := ntlmLogin(t, e.dial(), k)
		assert.Equal(t, okEmpty, r)
	}
	ok(good)
	ok(ntlmClient{user: "NTL", nt: nt, time: time.Now()})
	ok(ntlmClient{user: "ntl", domain: "pop3kit", nt: nt, time: time.Now(), mic: true})

	wrongNT := append([]byte{}, nt...)
	wrongNT[0] ^= 1
	for _, c := range []struct {
		name string
		k    func(ntlmClient) ntlmClient
	}{
		{"wrong password", func(k ntlmClient) ntlmClient { k.nt = wrongNT; return k }},
		{"wrong domain", func(k ntlmClient) ntlmClient { k.domain = "OTHER"; return k }},
		{"NTLMv1", func(k ntlmClient) ntlmClient { k.v1 = true; return k }},
		{"stale timestamp", func(k ntlmClient) ntlmClient { k.time = time.Now().Add(-saslmech.NTLMSkew - time.Minute); return k }},
		{"future timestamp", func(k ntlmClient) ntlmClient { k.time = time.Now().Add(saslmech.NTLMSkew + time.Minute); return k }},
		{"wrong MIC", func(k ntlmClient) ntlmClient { k.mic, k.badMIC = true, true; return k }},
		{"unknown user", func(k ntlmClient) ntlmClient { k.user = "nobody"; return k }},
		{"one-way hash", func(k ntlmClient) ntlmClient { k.user = "bob"; return k }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := e.dial()
			start := time.Now()
			r, _ := ntlmLogin(t, cl, c.k(good))
			assert.Equal(t, authError, r)
			assert.GreaterOrEqual(t, time.Since(start), delay, "the failed-login delay")
			assert.Less(t, time.Since(start), delay+2*time.Second)
		})
	}

	t.Run("replayed", func(t *testing.T) {
		// The same server challenge twice, as only a broken random
		// source would give: the replay cache refuses the second.
		fixed := bytes.Repeat([]byte{7}, 8)
		defer saslhook.SetNTLMRand(bytes.NewReader(bytes.Repeat(fixed, 2)))()
		r, auth := ntlmLogin(t, e.dial(), good)
		require.Equal(t, okEmpty, r)
		c := e.dial()
		require.Equal(t, "+ ", c.Cmd("AUTH NTLM"))
		require.True(t, strings.HasPrefix(c.Cmd(base64.StdEncoding.EncodeToString(ntlmNegotiate)), "+ "))
		start := time.Now()
		assert.Equal(t, authError, c.Cmd(base64.StdEncoding.EncodeToString(auth)))
		assert.GreaterOrEqual(t, time.Since(start), delay)
	})

	t.Run("replayed to a new challenge", func(t *testing.T) {
		r, auth := ntlmLogin(t, e.dial(), good)
		require.Equal(t, okEmpty, r)
		c := e.dial()
		require.Equal(t, "+ ", c.Cmd("AUTH NTLM"))
		c.Cmd(base64.StdEncoding.EncodeToString(ntlmNegotiate))
		assert.Equal(t, authError, c.Cmd(base64.StdEncoding.EncodeToString(auth)))
	})

	t.Run("cancel and garbage", func(t *testing.T) {
		c := e.dial()
		require.Equal(t, "+ ", c.Cmd("AUTH NTLM"))
		assert.True(t, strings.HasPrefix(c.Cmd("*"), "-ERR"))
		c = e.dial()
		require.Equal(t, "+ ", c.Cmd("AUTH NTLM"))
		assert.Equal(t, authError, c.Cmd(base64.StdEncoding.EncodeToString([]byte("NTLMSSP\x00\x03\x00\x00\x00"))), "an AUTHENTICATE first")
		c = e.dial()
		require.Equal(t, "+ ", c.Cmd("AUTH NTLM"))
		assert.Equal(t, authError, c.Cmd(""), "an empty NEGOTIATE")
	})

	v1 := newEnv(t, "exchange2010", ntlmUsers(t), func(c *server.Config) { c.NTLMAllowV1 = true })
	r, _ := ntlmLogin(t, v1.dial(), ntlmClient{user: "ntl", nt: nt, v1: true})
	assert.Equal(t, okEmpty, r, "NTLMv1 where ntlm_allow_v1 allows it")
	r, _ = ntlmLogin(t, v1.dial(), ntlmClient{user: "ntl", nt: wrongNT, v1: true})
	assert.Equal(t, authError, r)
}
