package account

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
)

// CRAMKeys are the MD5 chaining values of HMAC-MD5 keyed with the
// password, after the key block: inner (key^ipad) and outer (key^opad).
type CRAMKeys struct{ inner, outer [4]uint32 }

// parseCRAM reads Dovecot's {CRAM-MD5} secret: 64 hex digits, the outer
// then the inner state, each as four little-endian words
// (src/lib/hmac-cram-md5.c).
func parseCRAM(secret string) (*CRAMKeys, error) {
	b, err := hex.DecodeString(secret)
	if err != nil || len(b) != 32 {
		return nil, errors.New("want 64 hex digits")
	}
	k := &CRAMKeys{}
	for i := range 4 {
		k.outer[i] = binary.LittleEndian.Uint32(b[4*i:])
		k.inner[i] = binary.LittleEndian.Uint32(b[16+4*i:])
	}
	return k, nil
}

// String is the secret in Dovecot's format.
func (k *CRAMKeys) String() string {
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
func cramFromPassword(password string) *CRAMKeys {
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
	return &CRAMKeys{inner: md5State(in), outer: md5State(out)}
}

// hashCRAM returns a {CRAM-MD5} secret for password.
func hashCRAM(password string) string { return cramFromPassword(password).String() }

// sum is HMAC-MD5(key, msg) from the keys.
func (k *CRAMKeys) Sum(msg []byte) []byte {
	in := md5From(k.inner)
	in.Write(msg)
	out := md5From(k.outer)
	out.Write(in.Sum(nil))
	return out.Sum(nil)
}

// CRAMCredentials returns the CRAM keys of a: stored, or computed from a
// PLAIN secret; ok is false when a is nil or has only a one-way hash.
func CRAMCredentials(a *Account) (*CRAMKeys, bool) {
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
