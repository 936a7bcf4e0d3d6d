package account

import (
	"encoding/binary"
	"math/bits"
)

// md4Sum is MD4 (RFC 1320), which NTLM's NT hash is built on
// (MS-NLMP §3.3.1, NTOWFv1). The standard library has none, and
// golang.org/x/crypto/md4 would be a new module for one small function
// pop3d only ever runs over a password of at most a few hundred octets.
// It is checked against RFC 1320's test suite (ntlm_test.go).
func md4Sum(data []byte) [16]byte {
	s := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	n := uint64(len(data))
	// The message, a 1 bit, zeros to 56 mod 64, and the bit length.
	msg := make([]byte, 0, len(data)+72)
	msg = append(msg, data...)
	msg = append(msg, 0x80)
	for len(msg)%64 != 56 {
		msg = append(msg, 0)
	}
	msg = binary.LittleEndian.AppendUint64(msg, n<<3)
	var x [16]uint32
	for len(msg) > 0 {
		for i := range x {
			x[i] = binary.LittleEndian.Uint32(msg[4*i:])
		}
		msg = msg[64:]
		a, b, c, d := s[0], s[1], s[2], s[3]
		// Round 1: F(x,y,z) = xy v not(x)z.
		for _, i := range [4]int{0, 4, 8, 12} {
			a = bits.RotateLeft32(a+(b&c|^b&d)+x[i], 3)
			d = bits.RotateLeft32(d+(a&b|^a&c)+x[i+1], 7)
			c = bits.RotateLeft32(c+(d&a|^d&b)+x[i+2], 11)
			b = bits.RotateLeft32(b+(c&d|^c&a)+x[i+3], 19)
		}
		// Round 2: G(x,y,z) = xy v xz v yz, plus sqrt(2).
		for _, i := range [4]int{0, 1, 2, 3} {
			a = bits.RotateLeft32(a+(b&c|b&d|c&d)+x[i]+0x5a827999, 3)
			d = bits.RotateLeft32(d+(a&b|a&c|b&c)+x[i+4]+0x5a827999, 5)
			c = bits.RotateLeft32(c+(d&a|d&b|a&b)+x[i+8]+0x5a827999, 9)
			b = bits.RotateLeft32(b+(c&d|c&a|d&a)+x[i+12]+0x5a827999, 13)
		}
		// Round 3: H(x,y,z) = x xor y xor z, plus sqrt(3).
		for _, i := range [4]int{0, 2, 1, 3} {
			a = bits.RotateLeft32(a+(b^c^d)+x[i]+0x6ed9eba1, 3)
			d = bits.RotateLeft32(d+(a^b^c)+x[i+8]+0x6ed9eba1, 9)
			c = bits.RotateLeft32(c+(d^a^b)+x[i+4]+0x6ed9eba1, 11)
			b = bits.RotateLeft32(b+(c^d^a)+x[i+12]+0x6ed9eba1, 15)
		}
		s[0] += a
		s[1] += b
		s[2] += c
		s[3] += d
	}
	var out [16]byte
	for i, w := range s {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}
