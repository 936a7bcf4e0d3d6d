package saslmech

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The built-in TokenVerifier: a JWT (RFC 7519) signed with a key of a
// JWKS file (RFC 7517), for the configured issuer and audience, not
// expired, naming its user in a configured claim. github.com/go-jose/go-jose/v4
// reads the JWKS and checks the signature and the registered claims: one
// maintained library for both, with no dependency beyond the standard
// library, and an explicit list of the algorithms it may accept (so no
// "none", and no HMAC with a public key as its secret).

// JWKSConfig configures NewJWKSVerifier.
type JWKSConfig struct {
	Path     string // the JWKS file: {"keys": [...]}
	Issuer   string // the "iss" a token must carry
	Audience string // a value its "aud" must contain
	// UserClaim names the claim holding the user; "": "email", then "sub".
	// A token whose user comes from "email" must also carry
	// "email_verified": true (OpenID Connect Core §5.1): an address the
	// provider did not verify names nobody.
	UserClaim string
	// Domains are the mail domains the site serves: a user claim
	// user@domain with one of them (in any case) names the account user.
	// Any other address is taken whole.
	Domains []string
	// Leeway is the clock skew allowed on exp, nbf and iat; 0: a minute.
	Leeway time.Duration
}

// jwtAlgorithms are the signatures accepted: RSA (PKCS#1 v1.5 and PSS),
// ECDSA and Ed25519. HMAC is not: a JWKS of public keys has no secret.
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// maxJWKSSize bounds the JWKS file: a few keys take a few KiB.
const maxJWKSSize = 1 << 20

// JWKSVerifier is the built-in TokenVerifier. The keys are read once, by
// NewJWKSVerifier; a key rotation means a restart.
type JWKSVerifier struct {
	keys   jose.JSONWebKeySet
	cfg    JWKSConfig
	claims []string
}

// NewJWKSVerifier reads the JWKS file. It fails when the file cannot be
// read, is not a JWKS, or holds no public signing key.
func NewJWKSVerifier(cfg JWKSConfig) (*JWKSVerifier, error) {
	st, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxJWKSSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", cfg.Path, maxJWKSSize)
	}
	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		return nil, err
	}
	v := &JWKSVerifier{cfg: cfg, claims: []string{"email", "sub"}}
	if err := json.Unmarshal(data, &v.keys); err != nil {
		return nil, fmt.Errorf("%s: not a JWKS: %v", cfg.Path, err)
	}
	n := 0
	for _, k := range v.keys.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("%s: key %q is private: the file needs only public keys", cfg.Path, k.KeyID)
		}
		if k.Use == "" || k.Use == "sig" {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no signing key", cfg.Path)
	}
	if cfg.UserClaim != "" {
		v.claims = []string{cfg.UserClaim}
	}
	if v.cfg.Leeway == 0 {
		v.cfg.Leeway = jwt.DefaultLeeway
	}
	return v, nil
}

var (
	errNoKey      = errors.New("no key of the JWKS verifies the token")
	errNoExp      = errors.New("the token has no exp")
	errNoUser     = errors.New("the token names no user")
	errUnverified = errors.New("the token's email is not verified (email_verified is not true)")
	errTooLong    = errors.New("the token is too long")
)

// maxTokenSize bounds a token before it is parsed.
const maxTokenSize = 8 << 10

// Verify checks the token's signature against the key its kid names (or
// every signing key, without kid), then iss, aud, exp (required), nbf and
// iat, and returns the user claim.
func (v *JWKSVerifier) Verify(_ context.Context, token string) (string, error) {
	if len(token) > maxTokenSize {
		return "", errTooLong
	}
	tok, err := jwt.ParseSigned(token, jwtAlgorithms)
	if err != nil {
		return "", err
	}
	h := tok.Headers[0]
	keys := v.keys.Keys
	if h.KeyID != "" {
		keys = v.keys.Key(h.KeyID)
	}
	var (
		claims jwt.Claims
		extra  map[string]any
		ok     bool
	)
	for _, k := range keys {
		if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		if tok.Claims(k.Key, &claims, &extra) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return "", errNoKey
	}
	if claims.Expiry == nil {
		return "", errNoExp
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{
		Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience{v.cfg.Audience}, Time: time.Now(),
	}, v.cfg.Leeway); err != nil {
		return "", err
	}
	for _, c := range v.claims {
		s, _ := extra[c].(string)
		if s == "" {
			continue
		}
		if c == "email" {
			if verified, _ := extra["email_verified"].(bool); !verified {
				return "", errUnverified
			}
		}
		return v.account(s), nil
	}
	return "", errNoUser
}

// account maps a user claim to the account it names: the local part of
// an address in one of the site's domains, else the claim as it is.
func (v *JWKSVerifier) account(user string) string {
	at := strings.LastIndexByte(user, '@')
	if at <= 0 {
		return user
	}
	for _, d := range v.cfg.Domains {
		if strings.EqualFold(user[at+1:], d) {
			return user[:at]
		}
	}
	return user
}
