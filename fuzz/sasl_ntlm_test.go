package pop3fuzz

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/saslmech"
)

// AUTH NTLM's decoder, fuzzed where it meets the client: a real NTLMv2
// exchange whose AUTHENTICATE_MESSAGE the fuzzer then damages. The
// oracle is a reference reading of MS-NLMP written apart from the
// server: +OK exactly when the damaged message still names ntl (in
// pop3d's domain or none) and carries a valid NTLMv2 proof of ntl's
// password, within the server's documented bounds; -ERR [AUTH]
// otherwise; never a panic.

// ntlmHash is the NT hash of "Password" (MS-NLMP §4.2.2.1.2), ntl's
// {NTLM} secret: the reference needs no MD4.
const ntlmHash = "a4f49c406510bdcab6824ee7c30fd852"

var (
	ntlmOnce sync.Once
	ntlmSrv  *server.Server
)

func ntlmServer(t testing.TB) *server.Server {
	ntlmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pop3kit-fuzz-ntlm")
		if err != nil {
			panic(err)
		}
		root := filepath.Join(dir, "mail")
		_ = os.MkdirAll(root, 0o700)
		pw := filepath.Join(dir, "passwd")
		_ = os.WriteFile(pw, []byte("ntl:{NTLM}"+ntlmHash+"\nf:{PLAIN}pw\n"), 0o600)
		cfg := server.DefaultConfig()
		cfg.Listen = []string{"127.0.0.1:0"} // never opened: sessions come through ServeConn
		cfg.MailRoot, cfg.Passwd, cfg.FailDelay = root, pw, 0
		cfg.SASLMechanisms = []string{"NTLM"}
		cfg.MaxAuthFailures = 100
		if ntlmSrv, err = server.New(cfg, nil); err != nil {
			panic(err)
		}
	})
	return ntlmSrv
}

func dialNTLM(t *testing.T) *saslConn { return dialServer(t, ntlmServer(t)) }

func utf16LE(s string) []byte {
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

func filetimeOf(t time.Time) uint64 { return uint64(t.UnixNano()/100) + 116444736000000000 }

// ntlmNegotiateMsg asks for Unicode, NTLM and extended session security.
var ntlmNegotiateMsg = append([]byte("NTLMSSP\x00\x01\x00\x00\x00\x05\x82\x08\xa0"), make([]byte, 16)...)

// ntlmAuthenticateMsg answers challenge for user and domain with an
// NTLMv2 response of the password whose NT hash is nt.
func ntlmAuthenticateMsg(challenge []byte, user, domain string, nt []byte, at time.Time) []byte {
	sc := challenge[24:32]
	n, off := int(binary.LittleEndian.Uint16(challenge[40:])), int(binary.LittleEndian.Uint32(challenge[44:]))
	info := challenge[off : off+n]
	cc := make([]byte, 8)
	_, _ = rand.Read(cc)
	blob := append([]byte{1, 1, 0, 0, 0, 0, 0, 0}, binary.LittleEndian.AppendUint64(nil, filetimeOf(at))...)
	blob = append(append(append(blob, cc...), 0, 0, 0, 0), info...)
	blob = append(blob, 0, 0, 0, 0)
	key := hmacMD5(nt, utf16LE(strings.ToUpper(user)+domain))
	ntr := append(hmacMD5(key, sc, blob), blob...)
	fields := [][]byte{make([]byte, 24), ntr, utf16LE(domain), utf16LE(user), utf16LE("WS"), nil}
	m := []byte("NTLMSSP\x00\x03\x00\x00\x00")
	pos := 72
	for _, f := range fields {
		m = binary.LittleEndian.AppendUint16(m, uint16(len(f)))
		m = binary.LittleEndian.AppendUint16(m, uint16(len(f)))
		m = binary.LittleEndian.AppendUint32(m, uint32(pos))
		pos += len(f)
	}
	m = append(m, challenge[20:24]...) // the flags the server chose
	m = append(m, 10, 0, 0, 0, 0, 0, 0, 15)
	for _, f := range fields {
		m = append(m, f...)
	}
	return m
}

// ntlmFold is the server's UserNameCase as the reference applies it.
func ntlmFold(u string) string { return foldFor(ntlmSrv.Variations(), u) }

// refField is the reference's reading of a Len/MaxLen/Offset triple
// within pop3d's documented bounds.
func refField(m []byte, at, max int) ([]byte, bool) {
	n, off := int(binary.LittleEndian.Uint16(m[at:])), int64(binary.LittleEndian.Uint32(m[at+4:]))
	if n == 0 {
		return nil, true
	}
	if n > max || off < 64 || off+int64(n) > int64(len(m)) {
		return nil, false
	}
	return m[off : off+int64(n)], true
}

func refString(b []byte) (string, bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for i := 0; i < len(u); i++ { // no unpaired surrogates
		switch {
		case u[i] >= 0xd800 && u[i] < 0xdc00 && i+1 < len(u) && u[i+1] >= 0xdc00 && u[i+1] < 0xe000:
			i++
		case u[i] >= 0xd800 && u[i] < 0xe000:
			return "", false
		}
	}
	return string(utf16.Decode(u)), !strings.ContainsRune(string(utf16.Decode(u)), '\uFFFD')
}

// refValid says whether m is a valid NTLMv2 AUTHENTICATE_MESSAGE for ntl
// against server challenge sc at now; unsure is set for a timestamp at
// the window's edge, where the server's clock decides.
func refValid(m, sc []byte, now time.Time) (valid, unsure bool) {
	if len(m) < 64 || len(m) > 8192 || string(m[:12]) != "NTLMSSP\x00\x03\x00\x00\x00" {
		return false, false
	}
	var f [6][]byte
	for i, max := range []int{24, 4096, 512, 512, 512, 16} {
		var ok bool
		if f[i], ok = refField(m, 12+8*i, max); !ok {
			return false, false
		}
	}
	domain, ok1 := refString(f[2])
	user, ok2 := refString(f[3])
	_, ok3 := refString(f[4])
	if !ok1 || !ok2 || !ok3 || len(f[1]) < 48 {
		return false, false
	}
	name := user
	if d, u, ok := strings.Cut(user, `\`); ok {
		if d != "" && !strings.EqualFold(d, "POP3KIT") {
			return false, false
		}
		name = u
	} else if i := strings.LastIndex(user, "@"); i >= 0 && strings.EqualFold(user[i+1:], "POP3KIT") {
		name = user[:i]
	}
	if ntlmFold(name) != "ntl" || domain != "" && !strings.EqualFold(domain, "POP3KIT") {
		return false, false
	}
	nt, _ := hex.DecodeString(ntlmHash)
	proof, blob := f[1][:16], f[1][16:]
	if blob[0] != 1 || blob[1] != 1 {
		return false, false
	}
	okProof := false
	for _, d := range []string{domain, ""} {
		okProof = okProof || hmac.Equal(hmacMD5(hmacMD5(nt, utf16LE(strings.ToUpper(user)+d)), sc, blob), proof)
	}
	if !okProof {
		return false, false
	}
	// The AV pairs end in MsvAvEOL within 64 pairs; no MIC is announced.
	av := blob[28:]
	for i := 0; ; i++ {
		if i == 64 || len(av) < 4 {
			return false, false
		}
		id, n := binary.LittleEndian.Uint16(av), int(binary.LittleEndian.Uint16(av[2:]))
		if n > len(av)-4 || id == 6 && (n != 4 || binary.LittleEndian.Uint32(av[4:])&2 != 0) {
			return false, false
		}
		if id == 0 {
			break
		}
		av = av[4+n:]
	}
	t := binary.LittleEndian.Uint64(blob[8:])
	skew := saslmech.NTLMSkew
	lo, hi := filetimeOf(now.Add(-skew)), filetimeOf(now.Add(skew))
	margin := uint64(30 * time.Second / 100)
	if t+margin < lo || t > hi+margin {
		return false, false
	}
	return true, t < lo+margin || t+margin > hi
}

// FuzzSaslNTLM logs in as user in domain with ntl's password, then
// damages the AUTHENTICATE_MESSAGE: each three octets of ops XOR one
// octet (two octets of position, one of mask); a last single octet
// truncates the message to that fraction of its length.
func FuzzSaslNTLM(f *testing.F) {
	for _, s := range []struct{ user, domain, ops string }{
		{"ntl", "", ""}, {"ntl", "POP3KIT", ""}, {`POP3KIT\ntl`, "", ""}, {"ntl@pop3kit", "", ""}, {"NTL", "pop3kit", ""},
		{"ntl", "OTHER", ""}, {`OTHER\ntl`, "", ""}, {"f", "", ""}, {"nobody", "", ""},
		{"ntl", "", "\x00\x58\x01"}, {"ntl", "", "\x00\x14\x08"}, {"ntl", "", "\x00\x2c\x01"}, {"ntl", "", "\x80"},
		{"ntl", "", "\x00\x90\x01"}, {"ntl", "", "\x00\x0c\x40"}, {"ntl", "", "\x00\x28\x02"},
	} {
		f.Add(s.user, s.domain, []byte(s.ops))
	}
	nt, _ := hex.DecodeString(ntlmHash)
	fuzzbound.Fuzz(f, func(t *testing.T, user, domain string, ops []byte) {
		if len(user) > 300 || len(domain) > 300 || len(ops) > 60 {
			return
		}
		c := dialNTLM(t)
		defer c.close()
		if r := c.step("AUTH NTLM"); r != "+ " {
			t.Fatalf("AUTH NTLM: %q", r)
		}
		r := c.step(b64(ntlmNegotiateMsg))
		ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r, "+ "))
		if err != nil || !strings.HasPrefix(r, "+ ") || len(ch) < 48 {
			t.Fatalf("CHALLENGE: %q", r)
		}
		m := ntlmAuthenticateMsg(ch, user, domain, nt, time.Now())
		for i := 0; i+3 <= len(ops); i += 3 {
			m[int(binary.BigEndian.Uint16(ops[i:]))%len(m)] ^= ops[i+2]
		}
		if len(ops)%3 == 1 {
			m = m[:len(m)*int(ops[len(ops)-1])/256]
		}
		valid, unsure := refValid(m, ch[24:32], time.Now())
		r = c.step(b64(m))
		switch {
		case unsure:
		case valid && !strings.HasPrefix(r, "+OK"):
			t.Fatalf("user %q domain %q ops %x: valid, refused: %q", user, domain, ops, r)
		case !valid && r != authFailed:
			t.Fatalf("user %q domain %q ops %x: invalid, got %q", user, domain, ops, r)
		}
	})
}

// FuzzNtlmDecode holds the AUTHENTICATE_MESSAGE decoder alone: no panic,
// a bounded number of allocations, and every field it returns within
// the message and its bounds.
func FuzzNtlmDecode(f *testing.F) {
	seed, _ := hex.DecodeString("4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e00550073006500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000c5dad2544fc9799094ce1ce90bc9d03e")
	f.Add(seed, true)
	f.Add(seed[:64], false)
	f.Add([]byte("NTLMSSP\x00\x03\x00\x00\x00"), true)
	fuzzbound.Fuzz(f, func(t *testing.T, msg []byte, unicode bool) {
		a, err := saslmech.ParseNTLMAuthenticate(msg, unicode)
		allocs := testing.AllocsPerRun(1, func() { _, _ = saslmech.ParseNTLMAuthenticate(msg, unicode) })
		if allocs > 16 {
			t.Fatalf("%x: %v allocations", msg, allocs)
		}
		if err != nil {
			return
		}
		if len(msg) > 8192 || len(a.LM) > 24 || len(a.NT) > 4096 || len(a.SessionKey) > 16 ||
			len(a.User) > 3*256 || len(a.Domain) > 3*256 || len(a.Workstation) > 3*256 || a.MIC != nil && len(a.MIC) != 16 {
			t.Fatalf("%x: out of bounds: %+v", msg, a)
		}
	})
}
