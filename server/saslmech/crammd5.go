package saslmech

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/pop3kit/pop3kit/server/account"
)

// CRAM-MD5 (RFC 2195): the server sends a unique challenge, the client
// answers "user HMAC-MD5(secret, challenge)" in hex. The server needs the
// password or Dovecot's {CRAM-MD5} secret (the two MD5 states of the
// HMAC after the key's block); a one-way hash cannot answer. It is
// obsolete (MD5, no salt) and off unless Config.Mechanisms (pop3d:
// sasl_mechanisms) lists it.

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
		s.challenge = fmt.Appendf(nil, "<%x.%d@%s>", r, time.Now().Unix(), x.cfg.Hostname)
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
	keys, ok := account.CRAMCredentials(x.lookup())
	if !ok {
		return nil, false, x.reject("unknown user or no CRAM-MD5 secret")
	}
	want := hex.EncodeToString(keys.Sum(s.challenge))
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
