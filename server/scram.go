package server

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-sasl"
	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) and SCRAM-SHA-256-PLUS (channel
// binding: RFC 5929's tls-server-end-point, RFC 9266's tls-exporter).
// github.com/xdg-go/scram runs the messages: its server parses both
// client messages, checks the nonce, the channel binding it is given and
// the proof in constant time. pop3d adds what the library cannot know:
// which binding type the client asked for (it takes one per
// conversation), whether the flag fits the mechanism the client chose
// (-PLUS needs "p", the plain one "n" or "y"), the credentials from the
// passwd-file, and the timing rules of every login.

// scramIterations is the iteration count pop3d writes and derives with:
// RFC 7677's minimum and Dovecot's default (doveadm pw -s SCRAM-SHA-256),
// so that an account pop3d wrote and one Dovecot wrote look alike.
const scramIterations = 4096

// maxSCRAMIterations bounds the count a passwd-file line may carry:
// USER/PASS and PLAIN against a SCRAM secret run that many HMACs, and a
// million (about half a second here) is already more than any login
// should cost. Dovecot accepts up to INT_MAX.
const maxSCRAMIterations = 1_000_000

// scramCreds are what a SCRAM server keeps of a password (RFC 5802 §3):
// never the password, and nothing a client can log in with.
type scramCreds struct {
	iters     int
	salt      []byte
	storedKey []byte // H(ClientKey)
	serverKey []byte // HMAC(SaltedPassword, "Server Key")
}

// saslSecrets are an account's secrets for the challenge-response
// mechanisms, beside the password scheme that ParseAccount reads.
type saslSecrets struct {
	scram *scramCreds // {SCRAM-SHA-256}
	cram  *cramKeys   // {CRAM-MD5}
	// derived caches the SCRAM credentials derived from a PLAIN secret
	// at the account's first SCRAM login.
	derived atomic.Pointer[scramCreds]
}

// parseSCRAM reads Dovecot's {SCRAM-SHA-256} secret,
// "iter,salt,storedkey,serverkey" with the last three in base64
// (src/lib-auth/auth-scram.c, auth_scram_credentials_parse).
func parseSCRAM(secret string) (*scramCreds, error) {
	f := strings.Split(secret, ",")
	if len(f) != 4 {
		return nil, errors.New("want iterations,salt,storedkey,serverkey")
	}
	iters, err := strconv.Atoi(f[0])
	if err != nil || iters < scramIterations || iters > maxSCRAMIterations {
		return nil, fmt.Errorf("iteration count %q: want %d to %d", f[0], scramIterations, maxSCRAMIterations)
	}
	c := &scramCreds{iters: iters}
	for i, dst := range []*[]byte{&c.salt, &c.storedKey, &c.serverKey} {
		b, err := base64.StdEncoding.DecodeString(f[i+1])
		if err != nil || len(b) == 0 || (i > 0 && len(b) != sha256.Size) {
			return nil, fmt.Errorf("field %d is not base64 of the right length", i+2)
		}
		*dst = b
	}
	return c, nil
}

// String is the secret in Dovecot's format.
func (c *scramCreds) String() string {
	e := base64.StdEncoding.EncodeToString
	return strconv.Itoa(c.iters) + "," + e(c.salt) + "," + e(c.storedKey) + "," + e(c.serverKey)
}

// deriveSCRAM computes the credentials of password with salt and iters
// (RFC 5802 §3).
func deriveSCRAM(password string, salt []byte, iters int) *scramCreds {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iters, sha256.Size)
	if err != nil { // only for parameters pop3d never passes
		panic(err)
	}
	clientKey := hmacSum(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return &scramCreds{iters: iters, salt: salt, storedKey: stored[:], serverKey: hmacSum(salted, "Server Key")}
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
func (c *scramCreds) verify(password []byte) bool {
	p := string(password)
	if subtle.ConstantTimeCompare(deriveSCRAM(scramPassword(p), c.salt, c.iters).storedKey, c.storedKey) == 1 {
		return true
	}
	return scramPassword(p) != p &&
		subtle.ConstantTimeCompare(deriveSCRAM(p, c.salt, c.iters).storedKey, c.storedKey) == 1
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

// scramCredentials returns the SCRAM credentials of a (nil for an
// unknown user): stored, derived from a PLAIN secret (once per account
// and load), or, for accounts that cannot do SCRAM, random keys no proof
// matches behind the stable salt. ok is false for the latter.
func scramCredentials(a *Account, user string) (c *scramCreds, ok bool) {
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
	c = &scramCreds{iters: scramIterations, salt: stableSalt(user), storedKey: make([]byte, sha256.Size), serverKey: make([]byte, sha256.Size)}
	rand.Read(c.storedKey)
	rand.Read(c.serverKey)
	return c, false
}

// scramServer is one SCRAM exchange.
type scramServer struct {
	x    *exchange
	plus bool
	step int
	conv *scram.ServerConversation
	real bool // the credentials are the user's, not the stand-in
}

func startSCRAM(x *exchange, name string) sasl.Server {
	return &scramServer{x: x, plus: strings.HasSuffix(name, "-PLUS")}
}

var errSCRAMSteps = errors.New("unexpected message after the exchange")

func (s *scramServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		if response == nil {
			return []byte{}, false, nil // "+ ": the client speaks first
		}
		s.step = 1
		return s.first(string(response))
	case 1:
		s.step = 2
		return s.final(string(response))
	case 2:
		// The client's empty answer to the server-final message that
		// carried the verifier (RFC 5034 §4).
		s.step = 3
		if len(response) != 0 {
			return nil, false, s.x.reject("data after the server's verifier")
		}
		return nil, true, nil
	}
	return nil, false, errSCRAMSteps
}

// badClientFirst says what is wrong with a client-first message's bare
// part that the SCRAM library lets through: RFC 5802 §7 wants a user name
// (saslname = 1*(value-safe-char / "=2C" / "=3D")) and a nonce of at least
// one printable character other than ",".
func badClientFirst(msg string) string {
	parts := strings.SplitN(msg, ",", 3)
	if len(parts) < 3 {
		return "no gs2 header"
	}
	fields := strings.Split(parts[2], ",")
	if len(fields) < 2 {
		return "no user name and nonce"
	}
	user, okU := strings.CutPrefix(fields[0], "n=")
	nonce, okR := strings.CutPrefix(fields[1], "r=")
	switch {
	case !okU || user == "":
		return "empty or missing user name"
	case !okR || nonce == "":
		return "empty or missing nonce"
	}
	for i := 0; i < len(nonce); i++ {
		if c := nonce[i]; c < 0x21 || c > 0x7e {
			return "a nonce character that is not printable"
		}
	}
	return ""
}

// first answers the client-first message with the server-first one.
func (s *scramServer) first(msg string) ([]byte, bool, error) {
	x, h := s.x, s.x.h
	// The gs2 channel-binding flag, before the first comma, must fit the
	// mechanism: "p=type" for -PLUS (RFC 5802 §6), "n" or "y" without.
	flag, _, _ := strings.Cut(msg, ",")
	if why := badClientFirst(msg); why != "" {
		return nil, false, x.reject("client-first: " + why)
	}
	cbType, isP := strings.CutPrefix(flag, "p=")
	if isP != s.plus {
		return nil, false, x.reject("channel-binding flag " + strconvQuote(flag) + " does not fit the mechanism")
	}
	// Where -PLUS is offered the server must know its binding even for
	// the plain mechanism, so that a client that says "y" (it supports
	// binding but saw no -PLUS) is caught as downgraded (RFC 5802 §6).
	plusOffered := false
	for _, m := range h.Mechanisms() {
		plusOffered = plusOffered || m == "SCRAM-SHA-256-PLUS"
	}
	var cb scram.ChannelBinding
	if st := h.conn.TLS(); st != nil && (isP || plusOffered) {
		if !isP {
			cbType = "tls-exporter"
			if st.Version < tls.VersionTLS13 {
				cbType = "tls-server-end-point"
			}
		}
		var err error
		if cb, err = h.channelBinding(st, cbType); err != nil {
			return nil, false, x.reject(err.Error())
		}
	}
	var srv *scram.Server
	srv, _ = scram.SHA256.NewServer(func(user string) (scram.StoredCredentials, error) {
		x.name(user)
		c, ok := scramCredentials(x.lookup(), x.user)
		s.real = ok
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.salt), Iters: c.iters},
			StoredKey:  c.storedKey, ServerKey: c.serverKey,
		}, nil
	})
	switch {
	case s.plus:
		s.conv = srv.NewConversationWithChannelBindingRequired(cb)
	case plusOffered:
		s.conv = srv.NewConversationWithChannelBinding(cb)
	default:
		s.conv = srv.NewConversation()
	}
	out, err := s.conv.Step(msg)
	if err != nil {
		return nil, false, x.reject("client-first: " + err.Error())
	}
	if z := s.conv.AuthzID(); z != "" && h.userName(z) != x.user {
		return nil, false, x.reject("proxy authorization is not offered")
	}
	return []byte(out), false, nil
}

// final checks the client-final message, after the attempt's turn, and
// answers the server's verifier.
func (s *scramServer) final(msg string) ([]byte, bool, error) {
	x := s.x
	if !x.admit() {
		return nil, false, x.reject("bad user name")
	}
	out, err := s.conv.Step(msg)
	switch {
	case err != nil:
		return nil, false, x.reject("client-final: " + err.Error())
	case !s.conv.Valid() || !s.real:
		return nil, false, x.reject("wrong proof, or no SCRAM credentials for the user")
	}
	return []byte(out), false, nil
}

// channelBinding returns the connection's binding data of type typ:
// tls-exporter (RFC 9266: the exporter with label
// "EXPORTER-Channel-Binding" and no context, 32 octets; TLS 1.3, or 1.2
// with the extended master secret, which Go requires for it) or
// tls-server-end-point (RFC 5929 §4.1: the hash of the server's
// certificate, SHA-256 for MD5 and SHA-1 signatures). tls-unique is not
// offered: RFC 9266 retires it, and TLS 1.3 has none.
func (h *session) channelBinding(st *tls.ConnectionState, typ string) (scram.ChannelBinding, error) {
	switch scram.ChannelBindingType(typ) {
	case scram.ChannelBindingTLSExporter:
		data, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			return scram.ChannelBinding{}, fmt.Errorf("tls-exporter: %v", err)
		}
		return scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: data}, nil
	case scram.ChannelBindingTLSServerEndpoint:
		cert := h.serverCertificate()
		if cert == nil {
			return scram.ChannelBinding{}, errors.New("tls-server-end-point: no server certificate")
		}
		var hf func() hash.Hash
		switch cert.SignatureAlgorithm {
		case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
			hf = sha512.New384
		case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
			hf = sha512.New
		case x509.PureEd25519:
			return scram.ChannelBinding{}, errors.New("tls-server-end-point: undefined for Ed25519 certificates")
		default:
			hf = sha256.New
		}
		d := hf()
		d.Write(cert.Raw)
		return scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: d.Sum(nil)}, nil
	}
	return scram.ChannelBinding{}, fmt.Errorf("channel-binding type %s is not offered", strconvQuote(typ))
}

// serverCertificate is the certificate the server presents on this
// connection: the one configured when it began (a reload changes the
// certificate for later connections only).
func (h *session) serverCertificate() *x509.Certificate {
	if h.tlsc == nil || len(h.tlsc.Certificates) == 0 {
		return nil
	}
	c := h.tlsc.Certificates[0]
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// strconvQuote quotes client text for the log, bounded: a log line must
// not carry a client's 12 KiB.
func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
