package server

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pop3kit/pop3kit/pop3"
)

// parseNetworks reads trusted networks: CIDR prefixes ("10.0.0.0/8",
// "fd00::/8") or single addresses, which stand for themselves (/32, /128).
// IPv4-mapped IPv6 forms are read as IPv4, as connections are.
func parseNetworks(nets []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, n := range nets {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if p, err := netip.ParsePrefix(n); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(n)
		if err != nil {
			return nil, fmt.Errorf("trusted network %q: want a CIDR prefix such as 10.0.0.0/8 or an address", n)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// intermediateTLS returns the TLS settings of Mozilla's "intermediate"
// profile (v5.7): TLS 1.2 and 1.3; for TLS 1.2 only ECDHE key exchange
// with AEAD ciphers (no CBC, no SHA-1 MAC, no static RSA); the curves
// X25519, P-256 and P-384. TLS 1.3's suites are all AEAD and Go does not
// let them be configured.
func intermediateTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12, // RFC 8314 §4.1
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
	}
}

// tlsRequired reports whether authentication must wait for TLS on this
// session (RequireTLS and no TLS yet), so that CAPA does not offer what
// would be refused.
func (h *session) tlsRequired() bool {
	return h.srv.cfg.RequireTLS && h.conn.Session().Mode()&pop3.ModeTLS == 0
}
