package saslmech

import (
	"bytes"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-sasl"

	"github.com/pop3kit/pop3kit/internal/saslhook"
	"github.com/pop3kit/pop3kit/server/account"
)

// NTLM (MS-NLMP), framed for POP3 by MS-POP3: after AUTH NTLM the server
// sends an empty challenge, the client a NEGOTIATE_MESSAGE, the server a
// CHALLENGE_MESSAGE and the client an AUTHENTICATE_MESSAGE, each
// base64-encoded by the core. The server checks NTLMv2 responses (§3.3.2)
// against an NT hash: Dovecot's {NTLM} secret (the hex MD4 of the
// UTF-16LE password) or one computed from a PLAIN secret; an account
// with only a one-way hash cannot use NTLM. NTLMv1 responses are refused
// unless Config.NTLMAllowV1 allows them; LM responses alone never are.
//
// The codec is written here: no maintained Go library has an NTLM
// server side that takes an NT hash (github.com/Azure/go-ntlmssp is a
// client; the server sides in go-smb2 and others are internal packages
// or want the clear password). Every length and offset in a message is
// checked against the message before it is read, and the fields the
// server keeps are bounded below.

// The NegotiateFlags the server reads or sets (MS-NLMP §2.2.2.5).
const (
	ntlmUnicode         = 0x00000001 // A: strings in UTF-16LE
	ntlmOEM             = 0x00000002 // B: strings in the OEM code page
	ntlmRequestTarget   = 0x00000004 // C: the client wants TargetName
	ntlmSign            = 0x00000010 // D
	ntlmSeal            = 0x00000020 // E
	ntlmLMKey           = 0x00000080 // G
	ntlmNTLM            = 0x00000200 // H: NTLM v1 session security
	ntlmAlwaysSign      = 0x00008000 // M
	ntlmTargetDomain    = 0x00010000 // N: TargetName is a domain
	ntlmExtendedSession = 0x00080000 // P: NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
	ntlmTargetInfo      = 0x00800000 // S: TargetInfo is present
	ntlmVersion         = 0x02000000 // T: the Version field is meaningful
	ntlm128             = 0x20000000 // U
	ntlmKeyExch         = 0x40000000 // V: EncryptedRandomSessionKey
	ntlm56              = 0x80000000 // W
)

// The flags the server echoes when the client asks for them: none
// changes what it checks, as POP3 sets up no security layer, but the
// client computes its MIC with the keys they select.
const ntlmEchoed = ntlmSign | ntlmSeal | ntlmAlwaysSign | ntlmExtendedSession | ntlmVersion | ntlm128 | ntlmKeyExch | ntlm56

// The AV_PAIR ids the server writes or reads (MS-NLMP §2.2.2.1).
const (
	avEOL             = 0
	avNbComputerName  = 1
	avNbDomainName    = 2
	avDnsComputerName = 3
	avFlags           = 6
	avTimestamp       = 7
)

// avFlagMIC is MsvAvFlags' bit saying the AUTHENTICATE_MESSAGE carries a
// MIC.
const avFlagMIC = 0x00000002

var ntlmSignature = []byte("NTLMSSP\x00")

// Bounds on what a message may hold. A message is at most what one SASL
// line carries (MaxSASLOctets, 12 KiB of base64 by default); these bound
// the fields the server copies out of it. A user name is at most 255 octets
// (CheckUserName), so 256 UTF-16 code units; a domain or workstation
// name is at most a DNS name; an NTLMv2 response is the proof, the
// 28-octet blob header and the AV pairs the server sent plus the few a
// client adds — Windows sends about 300 octets.
const (
	maxNTLMMessage  = 8192
	maxNTLMName     = 512 // octets of a user, domain or workstation field
	maxNTLMResponse = 4096
	maxNTLMAVPairs  = 64
)

// NTLMSkew is how far an NTLMv2 response's timestamp may be from the
// server's clock: five minutes either way, Kerberos' default skew and
// what Windows allows (MS-NLMP §3.2.5.1.2 leaves the window to the
// server). A response older than that is stale and refused.
const NTLMSkew = 5 * time.Minute

// ntlmRand is where server challenges come from: crypto/rand, unless a
// test set another (internal/saslhook).
func ntlmRand() io.Reader { return saslhook.NTLMRand(rand.Reader) }

// ntlmNow is the server's clock for the timestamp check; tests replace it.
var ntlmNow = time.Now

// filetime converts t to a FILETIME: 100 ns units since 1601-01-01 UTC.
func filetime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100) + 116444736000000000
}

// ntowfv2 is NTOWFv2 (MS-NLMP §3.3.2) from the NT hash:
// HMAC_MD5(NT hash, UNICODE(Uppercase(User) + UserDom)).
func ntowfv2(nt [16]byte, user, domain string) []byte {
	m := hmac.New(md5.New, nt[:])
	m.Write(account.UTF16LE(strings.ToUpper(user) + domain))
	return m.Sum(nil)
}

// ntProof is NTProofStr (MS-NLMP §3.3.2): HMAC_MD5(ResponseKeyNT,
// ServerChallenge + temp), temp being the client's blob.
func ntProof(key, serverChallenge, blob []byte) []byte {
	m := hmac.New(md5.New, key)
	m.Write(serverChallenge)
	m.Write(blob)
	return m.Sum(nil)
}

// sessionBaseKeyV2 is NTLMv2's SessionBaseKey, HMAC_MD5(ResponseKeyNT,
// NTProofStr), which is also its KeyExchangeKey (§3.4.5.1).
func sessionBaseKeyV2(key, proof []byte) []byte {
	m := hmac.New(md5.New, key)
	m.Write(proof)
	return m.Sum(nil)
}

// exportedSessionKey is the key the MIC is keyed with (§3.2.5.1.2): the
// client's EncryptedRandomSessionKey decrypted with RC4 under the
// KeyExchangeKey when KEY_EXCH and SIGN or SEAL are negotiated, the
// KeyExchangeKey itself otherwise.
func exportedSessionKey(flags uint32, kxkey, encrypted []byte) ([]byte, bool) {
	if flags&ntlmKeyExch == 0 || flags&(ntlmSign|ntlmSeal) == 0 {
		return kxkey, true
	}
	if len(encrypted) != 16 {
		return nil, false
	}
	c, err := rc4.NewCipher(kxkey)
	if err != nil {
		return nil, false
	}
	out := make([]byte, 16)
	c.XORKeyStream(out, encrypted)
	return out, true
}

// desl is DESL (MS-NLMP §6): the 16-octet key padded to 21 octets and
// split into three DES keys, each encrypting data.
func desl(key [16]byte, data []byte) []byte {
	var k [21]byte
	copy(k[:], key[:])
	out := make([]byte, 0, 24)
	for i := range 3 {
		c, err := des.NewCipher(desKey(k[7*i : 7*i+7]))
		if err != nil { // only for a key that is not 8 octets
			panic(err)
		}
		var b [8]byte
		c.Encrypt(b[:], data[:8])
		out = append(out, b[:]...)
	}
	return out
}

// desKey spreads 7 octets over the 8 of a DES key, 7 bits each (the
// parity bits are ignored by crypto/des).
func desKey(k []byte) []byte {
	return []byte{
		k[0], k[0]<<7 | k[1]>>1, k[1]<<6 | k[2]>>2, k[2]<<5 | k[3]>>3,
		k[3]<<4 | k[4]>>4, k[4]<<3 | k[5]>>5, k[5]<<2 | k[6]>>6, k[6] << 1,
	}
}

// ntlmV1Response is NTLMv1's NtChallengeResponse (MS-NLMP §3.3.1): DESL
// of the server challenge, or with extended session security of the
// first 8 octets of MD5(ServerChallenge + ClientChallenge).
func ntlmV1Response(nt [16]byte, serverChallenge, clientChallenge []byte, ess bool) []byte {
	if !ess {
		return desl(nt, serverChallenge)
	}
	s := md5.Sum(append(append([]byte{}, serverChallenge...), clientChallenge...))
	return desl(nt, s[:8])
}

// NTLMAuthenticate is what the server reads of an AUTHENTICATE_MESSAGE
// (MS-NLMP §2.2.1.3). Its byte slices alias the message they were
// parsed from and live as long as it does.
type NTLMAuthenticate struct {
	LM, NT                    []byte // LmChallengeResponse, NtChallengeResponse
	Domain, User, Workstation string
	SessionKey                []byte // EncryptedRandomSessionKey
	Flags                     uint32
	// MIC is the 16-octet MIC field, nil when the payload starts before
	// it (an older client's message has none).
	MIC []byte
}

// ParseNTLMAuthenticate decodes an AUTHENTICATE_MESSAGE whose strings
// are UTF-16LE when unicode is set (the flag the CHALLENGE_MESSAGE
// chose), ASCII otherwise: the OEM code page is the client's, unknown to
// the server, so a non-ASCII OEM string is refused.
func ParseNTLMAuthenticate(msg []byte, unicode bool) (*NTLMAuthenticate, error) {
	if len(msg) > maxNTLMMessage {
		return nil, errors.New("message too long")
	}
	if err := ntlmHeader(msg, 3, 64); err != nil {
		return nil, err
	}
	a := &NTLMAuthenticate{Flags: binary.LittleEndian.Uint32(msg[60:])}
	payload := len(msg) // the lowest offset of a non-empty field
	var dom, user, ws []byte
	for _, f := range [...]struct {
		dst     *[]byte
		at, max int
	}{{&a.LM, 12, 24}, {&a.NT, 20, maxNTLMResponse}, {&dom, 28, maxNTLMName}, {&user, 36, maxNTLMName}, {&ws, 44, maxNTLMName}, {&a.SessionKey, 52, 16}} {
		b, off, err := ntlmField(msg, f.at, f.max, 64)
		if err != nil {
			return nil, err
		}
		if len(b) > 0 && off < payload {
			payload = off
		}
		*f.dst = b
	}
	var err error
	for _, s := range []struct {
		dst *string
		b   []byte
	}{{&a.Domain, dom}, {&a.User, user}, {&a.Workstation, ws}} {
		if *s.dst, err = ntlmString(s.b, unicode); err != nil {
			return nil, err
		}
	}
	if payload >= 88 && len(msg) >= 88 {
		a.MIC = msg[72:88]
	}
	return a, nil
}

// ntlmHeader checks the signature, the message type and the length of
// the fixed part.
func ntlmHeader(msg []byte, typ uint32, fixed int) error {
	if len(msg) < fixed || !bytes.Equal(msg[:8], ntlmSignature) {
		return errors.New("not an NTLMSSP message")
	}
	if t := binary.LittleEndian.Uint32(msg[8:]); t != typ {
		return fmt.Errorf("message type %d, want %d", t, typ)
	}
	return nil
}

// ntlmField reads the Len/MaxLen/Offset triple at msg[at:] and returns
// the field and its offset; a field longer than max, or reaching outside
// the message's payload (from fixed on), is an error. The slice aliases
// msg.
func ntlmField(msg []byte, at, max, fixed int) ([]byte, int, error) {
	n := int(binary.LittleEndian.Uint16(msg[at:]))
	off := uint64(binary.LittleEndian.Uint32(msg[at+4:]))
	if n == 0 {
		return nil, 0, nil
	}
	if n > max {
		return nil, 0, fmt.Errorf("field at %d: %d octets, at most %d", at, n, max)
	}
	if off < uint64(fixed) || off+uint64(n) > uint64(len(msg)) {
		return nil, 0, fmt.Errorf("field at %d: octets %d+%d outside the message", at, off, n)
	}
	return msg[off : off+uint64(n)], int(off), nil
}

// ntlmString decodes a string field.
func ntlmString(b []byte, unicode bool) (string, error) {
	if !unicode {
		for _, c := range b {
			if c >= 0x80 {
				return "", errors.New("a non-ASCII OEM string")
			}
		}
		return string(b), nil
	}
	if len(b)%2 != 0 {
		return "", errors.New("a UTF-16 string of odd length")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	if strings.ContainsRune(s, utf8.RuneError) {
		return "", errors.New("invalid UTF-16")
	}
	return s, nil
}

// ntlmBlob is what the server reads of an NTLMv2_CLIENT_CHALLENGE (MS-NLMP
// §2.2.2.7): the timestamp and the AV pairs it checks.
type ntlmBlob struct {
	time    uint64 // FILETIME
	avFlags uint32 // MsvAvFlags, 0 when absent
}

// parseNTLMBlob reads the blob after NTProofStr: RespType and
// HiRespType 1, reserved octets, the timestamp, the client challenge,
// then AV pairs up to MsvAvEOL.
func parseNTLMBlob(b []byte) (ntlmBlob, error) {
	var blob ntlmBlob
	if len(b) < 28+4 {
		return blob, errors.New("NTLMv2 blob too short")
	}
	if b[0] != 1 || b[1] != 1 {
		return blob, fmt.Errorf("NTLMv2 blob version %d.%d, want 1.1", b[0], b[1])
	}
	blob.time = binary.LittleEndian.Uint64(b[8:])
	av := b[28:]
	for range maxNTLMAVPairs {
		if len(av) < 4 {
			return blob, errors.New("AV pairs without MsvAvEOL")
		}
		id, n := binary.LittleEndian.Uint16(av), int(binary.LittleEndian.Uint16(av[2:]))
		if n > len(av)-4 {
			return blob, errors.New("an AV pair outside the blob")
		}
		v := av[4 : 4+n]
		switch id {
		case avEOL:
			return blob, nil
		case avFlags:
			if n != 4 {
				return blob, errors.New("MsvAvFlags of the wrong size")
			}
			blob.avFlags = binary.LittleEndian.Uint32(v)
		}
		av = av[4+n:]
	}
	return blob, errors.New("too many AV pairs")
}

// ntlmChallenge builds the CHALLENGE_MESSAGE (MS-NLMP §2.2.1.2) for a
// client's NegotiateFlags: the server challenge, the NetBIOS domain as
// TargetName, and TargetInfo with the NetBIOS domain and computer names,
// the DNS computer name and the time. It returns the message and the
// flags it chose.
func ntlmChallenge(clientFlags uint32, serverChallenge []byte, domain, host string, now time.Time) ([]byte, uint32) {
	flags := uint32(ntlmRequestTarget|ntlmNTLM|ntlmTargetDomain|ntlmTargetInfo) | clientFlags&ntlmEchoed
	if clientFlags&ntlmUnicode != 0 || clientFlags&ntlmOEM == 0 {
		flags |= ntlmUnicode
	} else {
		flags |= ntlmOEM
	}
	target := []byte(domain) // ASCII: a NetBIOS name (Config.NTLMDomain)
	if flags&ntlmUnicode != 0 {
		target = account.UTF16LE(domain)
	}
	var info []byte
	av := func(id uint16, v []byte) {
		info = binary.LittleEndian.AppendUint16(info, id)
		info = binary.LittleEndian.AppendUint16(info, uint16(len(v)))
		info = append(info, v...)
	}
	av(avNbDomainName, account.UTF16LE(domain))
	av(avNbComputerName, account.UTF16LE(netbiosName(host)))
	av(avDnsComputerName, account.UTF16LE(host))
	av(avTimestamp, binary.LittleEndian.AppendUint64(nil, filetime(now)))
	av(avEOL, nil)

	const fixed = 56
	m := make([]byte, 0, fixed+len(target)+len(info))
	m = append(m, ntlmSignature...)
	m = binary.LittleEndian.AppendUint32(m, 2)
	m = appendField(m, len(target), fixed)
	m = binary.LittleEndian.AppendUint32(m, flags)
	m = append(m, serverChallenge...)
	m = append(m, make([]byte, 8)...) // Reserved
	m = appendField(m, len(info), fixed+len(target))
	// Version: Windows 10 (10.0), build 0, NTLMSSP revision 15; only
	// for debugging (§2.2.2.10).
	m = append(m, 10, 0, 0, 0, 0, 0, 0, 0x0f)
	m = append(m, target...)
	m = append(m, info...)
	return m, flags
}

func appendField(m []byte, n, off int) []byte {
	m = binary.LittleEndian.AppendUint16(m, uint16(n))
	m = binary.LittleEndian.AppendUint16(m, uint16(n))
	return binary.LittleEndian.AppendUint32(m, uint32(off))
}

// netbiosName is the NetBIOS form of a host name: its first label, upper
// case, at most 15 octets.
func netbiosName(host string) string {
	name, _, _ := strings.Cut(host, ".")
	name = strings.ToUpper(name)
	if len(name) > 15 {
		name = name[:15]
	}
	if name == "" {
		name = "POP3KIT"
	}
	return name
}

// ntlmUser maps an AUTHENTICATE_MESSAGE's user and domain to the user
// the server looks up. The domain field, and a "DOMAIN\user" prefix,
// must be empty or the configured domain (in any case); "user@DOMAIN"
// loses its suffix when the suffix is that domain, and otherwise stays
// the name as it is, as passwd-files often name users by address. ok is
// false for another domain.
func ntlmUser(user, domain, ours string) (string, bool) {
	ok := domain == "" || strings.EqualFold(domain, ours)
	if d, u, found := strings.Cut(user, `\`); found {
		return u, ok && (d == "" || strings.EqualFold(d, ours))
	}
	if i := strings.LastIndexByte(user, '@'); i >= 0 && strings.EqualFold(user[i+1:], ours) {
		return user[:i], ok
	}
	return user, ok
}

// ntlmReplays remembers the NTProofStr (NTLMv2) or response (NTLMv1) of
// every AUTHENTICATE_MESSAGE accepted within the timestamp window, so a
// captured one is refused if it is ever offered again. Server challenges
// are random, so a replay would also need the same challenge; this is
// the check MS-NLMP's timestamp exists for, kept for defence in depth.
var ntlmReplays = newReplayCache(16384, 2*NTLMSkew)

// replayCache is a bounded set of recent keys: at most size, each kept
// for ttl; when full, the oldest gives way (after ttl a response is
// stale anyway, and size accepted logins within ttl is far above any
// POP3 server's rate).
type replayCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	seen  map[[16]byte]time.Time
	order [][16]byte // insertion order, a ring of len size
	next  int
}

func newReplayCache(size int, ttl time.Duration) *replayCache {
	return &replayCache{ttl: ttl, seen: make(map[[16]byte]time.Time, size), order: make([][16]byte, 0, size)}
}

// add records key at now and reports whether it was new.
func (c *replayCache) add(key [16]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.seen[key]; ok && now.Sub(t) < c.ttl {
		return false
	}
	if len(c.order) < cap(c.order) {
		c.order = append(c.order, key)
	} else {
		delete(c.seen, c.order[c.next])
		c.order[c.next] = key
		c.next = (c.next + 1) % len(c.order)
	}
	c.seen[key] = now
	return true
}

// defaultNTLMDomain is the NetBIOS domain announced when
// Config.NTLMDomain is empty.
const defaultNTLMDomain = "POP3KIT"

// ntlmDomain is the NetBIOS domain AUTH NTLM announces and accepts.
func (c *Config) ntlmDomain() string {
	if c.NTLMDomain == "" {
		return defaultNTLMDomain
	}
	return c.NTLMDomain
}

// ntlmServer is one NTLM exchange.
type ntlmServer struct {
	x *exchange
	// step: 0 before the NEGOTIATE_MESSAGE, 1 waiting for the
	// AUTHENTICATE_MESSAGE.
	step    int
	greeted bool // the empty challenge was sent
	// negotiate and challenge are the first two messages, kept for
	// the MIC; challenge[24:32] is the server challenge.
	negotiate, challenge []byte
	flags                uint32 // the CHALLENGE_MESSAGE's
}

func startNTLM(x *exchange, _ string) sasl.Server { return &ntlmServer{x: x} }

func (s *ntlmServer) Next(response []byte) ([]byte, bool, error) {
	x := s.x
	if s.step == 0 {
		if len(response) == 0 {
			if s.greeted {
				return nil, false, x.reject("empty NEGOTIATE_MESSAGE")
			}
			// MS-POP3 §3.1.5: the server says it can do NTLM and
			// waits for the NEGOTIATE_MESSAGE.
			s.greeted = true
			return []byte{}, false, nil
		}
		if len(response) > maxNTLMMessage {
			return nil, false, x.reject("NEGOTIATE_MESSAGE too long")
		}
		if err := ntlmHeader(response, 1, 16); err != nil {
			return nil, false, x.reject("NEGOTIATE_MESSAGE: " + err.Error())
		}
		var sc [8]byte
		if _, err := io.ReadFull(ntlmRand(), sc[:]); err != nil {
			return nil, false, x.reject("no randomness for the server challenge")
		}
		cfg := x.cfg
		s.negotiate = append([]byte(nil), response...)
		s.challenge, s.flags = ntlmChallenge(binary.LittleEndian.Uint32(response[12:]), sc[:], cfg.ntlmDomain(), cfg.Hostname, ntlmNow())
		s.step = 1
		return s.challenge, false, nil
	}
	if err := s.authenticate(response); err != nil {
		return nil, false, err
	}
	return nil, true, nil
}

// authenticate checks the AUTHENTICATE_MESSAGE (MS-NLMP §3.2.5.1.2). Every
// failure goes through x.reject: the same reply, after the same delay.
func (s *ntlmServer) authenticate(msg []byte) error {
	x := s.x
	cfg := x.cfg
	a, err := ParseNTLMAuthenticate(msg, s.flags&ntlmUnicode != 0)
	if err != nil {
		return x.reject("AUTHENTICATE_MESSAGE: " + err.Error())
	}
	if a.User == "" {
		return x.reject("anonymous NTLM is not offered")
	}
	name, domainOK := ntlmUser(a.User, a.Domain, cfg.ntlmDomain())
	x.name(name)
	if !x.admit() {
		return x.reject("bad user name")
	}
	if !domainOK {
		return x.reject(fmt.Sprintf("domain %q is not %s", a.Domain, cfg.ntlmDomain()))
	}
	nt, ok := account.NTLMCredentials(x.lookup())
	if !ok {
		return x.reject("unknown user or no NT hash (an {NTLM} or PLAIN secret)")
	}
	serverChallenge := s.challenge[24:32]
	now := ntlmNow()
	var replayKey [16]byte
	switch {
	case len(a.NT) == 24: // NTLMv1 (§3.3.1)
		if !cfg.NTLMAllowV1 {
			return x.reject("NTLMv1 response refused (ntlm_allow_v1 is off)")
		}
		ess := s.flags&ntlmExtendedSession != 0
		if ess && len(a.LM) < 8 {
			return x.reject("NTLMv1 with extended session security but no client challenge")
		}
		var cc []byte
		if ess {
			cc = a.LM[:8]
		}
		if subtle.ConstantTimeCompare(ntlmV1Response(nt, serverChallenge, cc, ess), a.NT) != 1 {
			return x.reject("wrong NTLMv1 response")
		}
		replayKey = md5.Sum(a.NT)
	case len(a.NT) > 24: // NTLMv2 (§3.3.2)
		if len(a.NT) < 16+32 {
			return x.reject("NTLMv2 response too short")
		}
		proof, blobBytes := a.NT[:16], a.NT[16:]
		blob, err := parseNTLMBlob(blobBytes)
		if err != nil {
			return x.reject(err.Error())
		}
		// The client computes with the user and domain it sent; some
		// use an empty domain (§3.2.5.1.2 says to try that too).
		key := ntowfv2(nt, a.User, a.Domain)
		if subtle.ConstantTimeCompare(ntProof(key, serverChallenge, blobBytes), proof) != 1 {
			key = ntowfv2(nt, a.User, "")
			if a.Domain == "" || subtle.ConstantTimeCompare(ntProof(key, serverChallenge, blobBytes), proof) != 1 {
				return x.reject("wrong NTLMv2 response")
			}
		}
		if t, lo, hi := blob.time, filetime(now.Add(-NTLMSkew)), filetime(now.Add(NTLMSkew)); t < lo || t > hi {
			return x.reject("NTLMv2 timestamp outside ±5 minutes")
		}
		if blob.avFlags&avFlagMIC != 0 {
			if a.MIC == nil {
				return x.reject("MsvAvFlags announces a MIC the message has no room for")
			}
			exported, ok := exportedSessionKey(a.Flags, sessionBaseKeyV2(key, proof), a.SessionKey)
			if !ok {
				return x.reject("MIC without a valid EncryptedRandomSessionKey")
			}
			m := hmac.New(md5.New, exported)
			m.Write(s.negotiate)
			m.Write(s.challenge)
			m.Write(msg[:72])
			m.Write(make([]byte, 16))
			m.Write(msg[88:])
			if !hmac.Equal(m.Sum(nil), a.MIC) {
				return x.reject("wrong MIC")
			}
		}
		copy(replayKey[:], proof)
	default:
		return x.reject("no NT response (LM alone is never accepted)")
	}
	if !ntlmReplays.add(replayKey, now) {
		return x.reject("a replayed AUTHENTICATE_MESSAGE")
	}
	return nil
}
