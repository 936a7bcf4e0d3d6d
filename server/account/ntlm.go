package account

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"unicode/utf16"
)

// NTHash is NTOWFv1 (MS-NLMP §3.3.1): MD4 of the UTF-16LE password.
func NTHash(password string) [16]byte { return md4Sum(UTF16LE(password)) }

// hashNTLM returns an {NTLM} secret for password, as Dovecot writes it.
func hashNTLM(password string) string {
	h := NTHash(password)
	return hex.EncodeToString(h[:])
}

// parseNTLMSecret reads an {NTLM} secret: 32 hex digits.
func parseNTLMSecret(secret string) ([16]byte, error) {
	var h [16]byte
	b, err := hex.DecodeString(secret)
	if err != nil || len(b) != len(h) {
		return h, errors.New("want 32 hex digits (the MD4 of the UTF-16LE password)")
	}
	copy(h[:], b)
	return h, nil
}

// NTLMCredentials returns the NT hash of a: its {NTLM} secret or the
// hash of its PLAIN secret; ok is false when a is nil or has only a
// one-way hash.
func NTLMCredentials(a *Account) (h [16]byte, ok bool) {
	if a == nil {
		return h, false
	}
	if a.Scheme == "NTLM" {
		h, err := parseNTLMSecret(a.secret) // checked by ParseAccount
		return h, err == nil
	}
	if secret, ok := a.PlainSecret(); ok {
		return NTHash(secret), true
	}
	return h, false
}

// UTF16LE encodes s as UTF-16LE, as NTLM's UNICODE() does.
func UTF16LE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}
