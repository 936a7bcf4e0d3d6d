package saslmech

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
)

// OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's older format): the client
// sends an OAuth 2.0 bearer token, a TokenVerifier says whose it is, and
// the user the message names, if any, must be that one. A bearer token
// is a credential anyone who sees it can use, so both are
// plaintext-equivalent and obey PlaintextAuth.

// TokenVerifier checks a bearer token and names its user. An error means
// the token does not log anyone in: malformed, expired, for another
// issuer or audience, badly signed. Verify must be safe for concurrent
// use; ctx is cancelled when the server shuts down.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (user string, err error)
}

// oauthMessage is what either mechanism's client message says.
type oauthMessage struct {
	user  string // the authzid (OAUTHBEARER, optional) or user (XOAUTH2)
	token string
}

// maxOAuthMessage bounds a client message: the core's line limit
// (MaxSASLOctets) already bounds it, and the parsers say so again so
// that they are safe on their own.
const maxOAuthMessage = 16 << 10

var errOAuthSyntax = errors.New("malformed message")

// kvsep separates the key-value pairs of both formats.
const kvsep = '\x01'

// ParseOAuthBearer reads an OAUTHBEARER client message (RFC 7628 §3.1):
//
//	client-resp = gs2-header kvsep *kvpair kvsep
//	gs2-header  = gs2-cb-flag "," [ "a=" saslname ] ","   ; flag "n" or "y"
//	kvpair      = key "=" value kvsep                      ; key 1*ALPHA
//	auth        = "auth=Bearer" 1*SP b64token
//
// The returned strings are copies: msg may be reused after it returns.
// Channel binding ("p=") is refused: OAUTHBEARER has no -PLUS.
func ParseOAuthBearer(msg []byte) (authzid, token string, err error) {
	if len(msg) > maxOAuthMessage {
		return "", "", errOAuthSyntax
	}
	flag, rest, ok := bytes.Cut(msg, []byte{','})
	if !ok || (string(flag) != "n" && string(flag) != "y") {
		return "", "", errOAuthSyntax
	}
	a, rest, ok := bytes.Cut(rest, []byte{','})
	if !ok {
		return "", "", errOAuthSyntax
	}
	if len(a) > 0 {
		name, isA := bytes.CutPrefix(a, []byte("a="))
		if !isA {
			return "", "", errOAuthSyntax
		}
		if authzid, ok = decodeSASLName(name); !ok || authzid == "" {
			return "", "", errOAuthSyntax
		}
	}
	if len(rest) == 0 || rest[0] != kvsep {
		return "", "", errOAuthSyntax
	}
	pairs, ok := parseKVPairs(rest[1:])
	if !ok {
		return "", "", errOAuthSyntax
	}
	for _, p := range pairs {
		if p[0] == "auth" {
			if token != "" {
				return "", "", errOAuthSyntax // two auth pairs
			}
			if token, ok = bearerToken(p[1]); !ok {
				return "", "", errOAuthSyntax
			}
		}
	}
	if token == "" {
		return "", "", errOAuthSyntax
	}
	return authzid, token, nil
}

// ParseXOAUTH2 reads an XOAUTH2 client message,
// "user=" user %x01 "auth=Bearer " token %x01 %x01, the only form
// Google documents. The returned strings are copies.
func ParseXOAUTH2(msg []byte) (user, token string, err error) {
	if len(msg) > maxOAuthMessage {
		return "", "", errOAuthSyntax
	}
	pairs, ok := parseKVPairs(msg)
	if !ok || len(pairs) != 2 || pairs[0][0] != "user" || pairs[1][0] != "auth" || pairs[0][1] == "" {
		return "", "", errOAuthSyntax
	}
	if token, ok = bearerToken(pairs[1][1]); !ok {
		return "", "", errOAuthSyntax
	}
	return pairs[0][1], token, nil
}

// maxKVPairs bounds the pairs of a message: RFC 7628 names three (auth,
// host, port); a client has no need of dozens.
const maxKVPairs = 16

// parseKVPairs reads *(key "=" value kvsep) kvsep to the end of b.
func parseKVPairs(b []byte) ([][2]string, bool) {
	var pairs [][2]string
	for {
		if len(b) == 1 && b[0] == kvsep {
			return pairs, true
		}
		pair, rest, ok := bytes.Cut(b, []byte{kvsep})
		if !ok || len(pairs) == maxKVPairs {
			return nil, false
		}
		k, v, ok := bytes.Cut(pair, []byte{'='})
		if !ok || len(k) == 0 {
			return nil, false
		}
		for _, c := range k {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return nil, false
			}
		}
		for _, c := range v { // VCHAR / SP / HTAB / CR / LF
			if c >= 0x7f || (c < 0x20 && c != '\t' && c != '\r' && c != '\n') {
				return nil, false
			}
		}
		pairs = append(pairs, [2]string{string(k), string(v)})
		b = rest
	}
}

// bearerToken reads "Bearer" 1*SP b64token (RFC 6750 §2.1; the scheme's
// case does not matter).
func bearerToken(v string) (string, bool) {
	if len(v) < 7 || !strings.EqualFold(v[:6], "Bearer") || v[6] != ' ' {
		return "", false
	}
	t := strings.TrimLeft(v[6:], " ")
	body := strings.TrimRight(t, "=")
	if body == "" {
		return "", false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return "", false
		}
	}
	return t, true
}

// decodeSASLName undoes the gs2 escapes of a saslname (RFC 5801 §4): "=2C"
// is ",", "=3D" is "=", and any other "=" is an error.
func decodeSASLName(b []byte) (string, bool) {
	if bytes.IndexByte(b, '=') < 0 {
		return string(b), true
	}
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] != '=' {
			out.WriteByte(b[i])
			continue
		}
		switch {
		case i+2 < len(b) && string(b[i+1:i+3]) == "2C":
			out.WriteByte(',')
		case i+2 < len(b) && string(b[i+1:i+3]) == "3D":
			out.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return out.String(), true
}

// The error challenges: RFC 7628 §3.2.2's JSON for OAUTHBEARER, and
// Google's for XOAUTH2. Neither says why, which would tell a guesser
// more than a failure.
var (
	oauthBearerError = []byte(`{"status":"invalid_token"}`)
	xoauth2Error     = []byte(`{"status":"401","schemes":"bearer"}`)
)

// oauthServer is one OAUTHBEARER or XOAUTH2 exchange.
type oauthServer struct {
	x       *exchange
	xoauth2 bool
	spoke   bool
}

func startOAuth(x *exchange, name string) sasl.Server {
	return &oauthServer{x: x, xoauth2: name == "XOAUTH2"}
}

func (s *oauthServer) Next(response []byte) ([]byte, bool, error) {
	x := s.x
	if s.spoke {
		// Only after a failure answered with the error challenge, which
		// the exchange returns before asking again.
		return nil, false, x.reject("unexpected message")
	}
	if response == nil {
		return []byte{}, false, nil // "+ ": the client speaks first
	}
	s.spoke = true
	var claimed, token string
	var err error
	if s.xoauth2 {
		claimed, token, err = ParseXOAUTH2(response)
	} else {
		claimed, token, err = ParseOAuthBearer(response)
	}
	if err != nil {
		return nil, false, x.reject(err.Error())
	}
	if claimed != "" {
		x.name(claimed)
	}
	// The address's penalty is waited, under the claimed name (if any),
	// before the token is checked, as before a password's check.
	admitted := x.admit() || claimed == ""
	failure := func(why string) ([]byte, bool, error) {
		if !x.failNow(why) {
			return nil, false, errRejected
		}
		if s.xoauth2 {
			return xoauth2Error, false, nil
		}
		return oauthBearerError, false, nil
	}
	if !admitted {
		return failure("bad user name")
	}
	v := x.cfg.TokenVerifier
	if v == nil {
		return failure("no token verifier")
	}
	user, err := v.Verify(x.h.Context(), token)
	if err != nil {
		return failure("token refused: " + err.Error())
	}
	user = x.h.UserName(user)
	if claimed != "" && x.user != user {
		return failure("the token is " + strconvQuote(user) + "'s, not the named user's")
	}
	x.user = user
	if x.lookup() == nil {
		return failure("the token's user has no account")
	}
	return nil, true, nil
}
