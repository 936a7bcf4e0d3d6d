package account

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/xdg-go/stringprep"
)

// scramIterations is the iteration count pop3d writes and derives with:
// RFC 7677's minimum and Dovecot's default (doveadm pw -s SCRAM-SHA-256),
// so that an account pop3d wrote and one Dovecot wrote look alike.
const scramIterations = 4096

// maxSCRAMIterations bounds the count a passwd-file line may carry:
// USER/PASS and PLAIN against a SCRAM secret run that many HMACs, and a
// million (about half a second here) is already more than any login
// should cost. Dovecot accepts up to INT_MAX.
const maxSCRAMIterations = 1_000_000

// SCRAM are what a SCRAM server keeps of a password (RFC 5802 §3):
// never the password, and nothing a client can log in with.
type SCRAM struct {
	Iters     int
	Salt      []byte
	StoredKey []byte // H(ClientKey)
	ServerKey []byte // HMAC(SaltedPassword, "Server Key")
}

// saslSecrets are an account's secrets for the challenge-response
// mechanisms, beside the password scheme that ParseAccount reads.
type saslSecrets struct {
	scram *SCRAM    // {SCRAM-SHA-256}
	cram  *CRAMKeys // {CRAM-MD5}
	// derived caches the SCRAM credentials derived from a PLAIN secret
	// at the account's first SCRAM login.
	derived atomic.Pointer[SCRAM]
}

// parseSCRAM reads Dovecot's {SCRAM-SHA-256} secret,
// "iter,salt,storedkey,serverkey" with the last three in base64
// (src/lib-auth/auth-scram.c, auth_scram_credentials_parse).
func parseSCRAM(secret string) (*SCRAM, error) {
	f := strings.Split(secret, ",")
	if len(f) != 4 {
		return nil, errors.New("want iterations,salt,storedkey,serverkey")
	}
	iters, err := strconv.Atoi(f[0])
	if err != nil || iters < scramIterations || iters > maxSCRAMIterations {
		return nil, fmt.Errorf("iteration count %q: want %d to %d", f[0], scramIterations, maxSCRAMIterations)
	}
	c := &SCRAM{Iters: iters}
	for i, dst := range []*[]byte{&c.Salt, &c.StoredKey, &c.ServerKey} {
		b, err := base64.StdEncoding.DecodeString(f[i+1])
		if err != nil || len(b) == 0 || (i > 0 && len(b) != sha256.Size) {
			return nil, fmt.Errorf("field %d is not base64 of the right length", i+2)
		}
		*dst = b
	}
	return c, nil
}

// String is the secret in Dovecot's format.
func (c *SCRAM) String() string {
	e := base64.StdEncoding.EncodeToString
	return strconv.Itoa(c.Iters) + "," + e(c.Salt) + "," + e(c.StoredKey) + "," + e(c.ServerKey)
}

// deriveSCRAM computes the credentials of password with salt and iters
// (RFC 5802 §3).
func deriveSCRAM(password string, salt []byte, iters int) *SCRAM {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iters, sha256.Size)
	if err != nil { // only for parameters pop3d never passes
		panic(err)
	}
	clientKey := hmacSum(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return &SCRAM{Iters: iters, Salt: salt, StoredKey: stored[:], ServerKey: hmacSum(salted, "Server Key")}
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramPassword is the password as SCRAM hashes it: SASLprep'd (RFC 5802
// §2.2) where that succeeds, as the SCRAM library's client does, and as
// it is otherwise (Dovecot hashes it unprepared; for ASCII the two agree).
func scramPassword(password string) string {
	if p, err := stringprep.SASLprep.Prepare(password); err == nil {
		return p
	}
	return password
}

// hashSCRAM returns a new {SCRAM-SHA-256} secret for password, with a
// random 16-octet salt as Dovecot makes.
func hashSCRAM(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	return deriveSCRAM(scramPassword(password), salt, scramIterations).String()
}

// verifySCRAM checks a password (USER/PASS, PLAIN) against SCRAM
// credentials, prepared or not.
func (c *SCRAM) verify(password []byte) bool {
	p := string(password)
	if subtle.ConstantTimeCompare(deriveSCRAM(scramPassword(p), c.Salt, c.Iters).StoredKey, c.StoredKey) == 1 {
		return true
	}
	return scramPassword(p) != p &&
		subtle.ConstantTimeCompare(deriveSCRAM(p, c.Salt, c.Iters).StoredKey, c.StoredKey) == 1
}

// fakeKey keys the salts of users that have no SCRAM credentials, for the
// process's lifetime.
var fakeKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// stableSalt is the salt shown for user when no stored one exists: the
// same at every attempt, so that an unknown user, a user with only a
// one-way hash and a PLAIN user all look like an account with stored
// credentials and Dovecot's default count.
func stableSalt(user string) []byte {
	m := hmac.New(sha256.New, fakeKey)
	m.Write([]byte("SCRAM-SHA-256 salt\x00" + user))
	return m.Sum(nil)[:16]
}

// SCRAMCredentials returns the SCRAM credentials of a (nil for an
// unknown user): stored, derived from a PLAIN secret (once per account
// and load), or, for accounts that cannot do SCRAM, random keys no proof
// matches behind the stable salt. ok is false for the latter.
func SCRAMCredentials(a *Account, user string) (c *SCRAM, ok bool) {
	if a != nil {
		if a.sasl.scram != nil {
			return a.sasl.scram, true
		}
		if c := a.sasl.derived.Load(); c != nil {
			return c, true
		}
		if secret, plain := a.PlainSecret(); plain {
			c := deriveSCRAM(scramPassword(secret), stableSalt(user), scramIterations)
			a.sasl.derived.Store(c)
			return c, true
		}
	}
	c = &SCRAM{Iters: scramIterations, Salt: stableSalt(user), StoredKey: make([]byte, sha256.Size), ServerKey: make([]byte, sha256.Size)}
	rand.Read(c.StoredKey)
	rand.Read(c.ServerKey)
	return c, false
}
