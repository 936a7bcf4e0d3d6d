package server

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// CRAM-MD5 (RFC 2195): the server sends a unique challenge, the client
// answers "user HMAC-MD5(secret, challenge)" in hex. The server needs the
// password or Dovecot's {CRAM-MD5} secret (the two MD5 states of the
// HMAC after the key's block); a one-way hash cannot answer. It is
// obsolete (MD5, no salt) and off unless sasl_mechanisms lists it.

// cramKeys are the MD5 chaining values of HMAC-MD5 keyed with the
// password, after the key block: inner (key^ipad) and outer (key^opad).
type cramKeys struct{ inner, outer [4]uint32 }

// parseCRAM reads Dovecot's {CRAM-MD5} secret: 64 hex digits, the outer
// then the inner state, each as four little-endian words
// (src/lib/hmac-cram-md5.c).
func parseCRAM(secret string) (*cramKeys, error) {
	b, err := hex.DecodeString(secret)
	if err != nil || len(b) != 32 {
		return nil, errors.New("want 64 hex digits")
	}
	k := &cramKeys{}
	for i := range 4 {
		k.outer[i] = binary.LittleEndian.Uint32(b[4*i:])
		k.inner[i] = binary.LittleEndian.Uint32(b[16+4*i:])
	}
	return k, nil
}

// String is the secret in Dovecot's format.
func (k *cramKeys) String() string {
	var b [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint32(b[4*i:], k.outer[i])
		binary.LittleEndian.PutUint32(b[16+4*i:], k.inner[i])
	}
	return hex.EncodeToString(b[:])
}

// md5State returns the chaining value of d after whole blocks, read from
// its marshalled form ("md5\x01", a, b, c, d big-endian, the block
// buffer, the length).
func md5State(d hash.Hash) [4]uint32 {
	b, err := d.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil || len(b) < 20 {
		panic("crypto/md5 cannot marshal its state")
	}
	var s [4]uint32
	for i := range 4 {
		s[i] = binary.BigEndian.Uint32(b[4+4*i:])
	}
	return s
}

// md5From returns an MD5 that resumes from chaining value s after one
// block, as Dovecot's hmac_md5_set_cram_context does.
func md5From(s [4]uint32) hash.Hash {
	b := make([]byte, 0, 92)
	b = append(b, "md5\x01"...)
	for _, w := range s {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	b = append(b, make([]byte, md5.BlockSize)...)
	b = binary.BigEndian.AppendUint64(b, md5.BlockSize)
	d := md5.New()
	if err := d.(interface{ UnmarshalBinary([]byte) error }).UnmarshalBinary(b); err != nil {
		panic("crypto/md5 cannot resume its state: " + err.Error())
	}
	return d
}

// cramFromPassword computes the keys of password (RFC 2104: a key longer
// than the block is hashed first).
func cramFromPassword(password string) *cramKeys {
	key := []byte(password)
	if len(key) > md5.BlockSize {
		s := md5.Sum(key)
		key = s[:]
	}
	var ipad, opad [md5.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	in, out := md5.New(), md5.New()
	in.Write(ipad[:])
	out.Write(opad[:])
	return &cramKeys{inner: md5State(in), outer: md5State(out)}
}

// hashCRAM returns a {CRAM-MD5} secret for password.
func hashCRAM(password string) string { return cramFromPassword(password).String() }

// sum is HMAC-MD5(key, msg) from the keys.
func (k *cramKeys) sum(msg []byte) []byte {
	in := md5From(k.inner)
	in.Write(msg)
	out := md5From(k.outer)
	out.Write(in.Sum(nil))
	return out.Sum(nil)
}

// cramCredentials returns the CRAM keys of a: stored, or computed from a
// PLAIN secret; ok is false when a is nil or has only a one-way hash.
func cramCredentials(a *Account) (*cramKeys, bool) {
	if a == nil {
		return nil, false
	}
	if a.sasl.cram != nil {
		return a.sasl.cram, true
	}
	if secret, ok := a.PlainSecret(); ok {
		return cramFromPassword(secret), true
	}
	return nil, false
}

// cramServer is one CRAM-MD5 exchange.
type cramServer struct {
	x         *exchange
	challenge []byte
}

func startCRAM(x *exchange, _ string) sasl.Server { return &cramServer{x: x} }

// maxCRAMResponse bounds the answer: a user name of at most 255 octets,
// a space and 32 hex digits.
const maxCRAMResponse = 255 + 1 + 32

func (s *cramServer) Next(response []byte) ([]byte, bool, error) {
	x := s.x
	if s.challenge == nil {
		if len(response) != 0 {
			return nil, false, x.reject("an initial response where the server speaks first")
		}
		// RFC 2195 §2: a unique challenge in msg-id form.
		var r [8]byte
		rand.Read(r[:])
		s.challenge = fmt.Appendf(nil, "<%x.%d@%s>", r, time.Now().Unix(), x.h.srv.cfg.Hostname)
		return s.challenge, false, nil
	}
	if len(response) > maxCRAMResponse {
		return nil, false, x.reject("response too long")
	}
	user, digest, ok := parseCRAMResponse(string(response))
	if !ok {
		return nil, false, x.reject("malformed response")
	}
	x.name(user)
	if !x.admit() {
		return nil, false, x.reject("bad user name")
	}
	keys, ok := cramCredentials(x.lookup())
	if !ok {
		return nil, false, x.reject("unknown user or no CRAM-MD5 secret")
	}
	want := hex.EncodeToString(keys.sum(s.challenge))
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(digest))) != 1 {
		return nil, false, x.reject("wrong digest")
	}
	return nil, true, nil
}

// parseCRAMResponse splits "user SP digest" at the last space (a user
// name may hold spaces; the digest is 32 hex digits).
func parseCRAMResponse(r string) (user, digest string, ok bool) {
	i := strings.LastIndexByte(r, ' ')
	if i <= 0 || len(r)-i-1 != 2*md5.Size {
		return "", "", false
	}
	if _, err := hex.DecodeString(r[i+1:]); err != nil {
		return "", "", false
	}
	return r[:i], r[i+1:], true
}
