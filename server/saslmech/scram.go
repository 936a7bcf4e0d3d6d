package saslmech

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/xdg-go/scram"

	"github.com/pop3kit/pop3kit/server/account"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) and SCRAM-SHA-256-PLUS (channel
// binding: RFC 5929's tls-server-end-point, RFC 9266's tls-exporter).
// github.com/xdg-go/scram runs the messages: its server parses both
// client messages, checks the nonce, the channel binding it is given and
// the proof in constant time. This package adds what the library cannot
// know: which binding type the client asked for (it takes one per
// conversation), whether the flag fits the mechanism the client chose
// (-PLUS needs "p", the plain one "n" or "y"), the credentials from the
// host's accounts, and the timing rules of every login.

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

// maxClientNonce bounds the client's nonce. The server-first message
// carries it back with the server's nonce, the salt and the iteration
// count, and its challenge line must stay within a reply's 512 octets
// (RFC 2449 §4, MS-STANXPOP3 C0001): 200 octets leave room for a salt of
// 64 base64 characters. Clients send 24 to 32.
const maxClientNonce = 200

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
	case len(nonce) > maxClientNonce:
		return "a nonce longer than " + strconv.Itoa(maxClientNonce) + " octets"
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
	if st := h.TLS(); st != nil && (isP || plusOffered) {
		if !isP {
			cbType = "tls-exporter"
			if st.Version < tls.VersionTLS13 {
				cbType = "tls-server-end-point"
			}
		}
		var err error
		if cb, err = channelBinding(st, h.Certificate, cbType); err != nil {
			return nil, false, x.reject(err.Error())
		}
	}
	var srv *scram.Server
	srv, _ = scram.SHA256.NewServer(func(user string) (scram.StoredCredentials, error) {
		x.name(user)
		c, ok := account.SCRAMCredentials(x.lookup(), x.user)
		s.real = ok
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iters},
			StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
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
	if z := s.conv.AuthzID(); z != "" && h.UserName(z) != x.user {
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
// certificate, which certificate returns, SHA-256 for MD5 and SHA-1
// signatures). tls-unique is not offered: RFC 9266 retires it, and TLS
// 1.3 has none.
func channelBinding(st *tls.ConnectionState, certificate func() *x509.Certificate, typ string) (scram.ChannelBinding, error) {
	switch scram.ChannelBindingType(typ) {
	case scram.ChannelBindingTLSExporter:
		data, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			return scram.ChannelBinding{}, fmt.Errorf("tls-exporter: %v", err)
		}
		return scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: data}, nil
	case scram.ChannelBindingTLSServerEndpoint:
		cert := certificate()
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

// strconvQuote quotes client text for the log, bounded: a log line must
// not carry a client's 12 KiB.
func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
