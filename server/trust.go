package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// errTLSRequired answers every authentication command (USER, PASS, APOP,
// AUTH) sent before TLS where RequireTLS is on. It names the two ways in,
// so that a client's user can tell what to change.
var errTLSRequired = pop3gen.NewError(pop3gen.CodeAuth, "this server requires TLS before any login: use STLS first, or connect to the implicit-TLS port")

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

// remoteIP returns the client's address, IPv4-mapped IPv6 read as IPv4,
// or an invalid Addr for connections without one (net.Pipe).
func remoteIP(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// trusted reports whether a connection from a counts as secure
// (PlaintextAuth=secure) without TLS: only when it comes from a
// configured trusted network. Nothing is trusted by default, loopback
// included: behind a local proxy every client is 127.0.0.1.
func (s *Server) trusted(a net.Addr) bool {
	ip := remoteIP(a)
	if !ip.IsValid() {
		return false
	}
	for _, p := range s.trustedNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// isAuthCommand reports whether line is an authentication command (USER,
// PASS, APOP or AUTH), read with the session's own lexer so that what is
// refused here is exactly what the core would have run.
func isAuthCommand(line []byte, v *pop3gen.Variations, m pop3gen.Mode) bool {
	var c pop3gen.Command
	if c.Parse(line, v, m) != nil {
		return false
	}
	switch c.Cmd {
	case pop3gen.CmdUSER, pop3gen.CmdPASS, pop3gen.CmdAPOP, pop3gen.CmdAUTH:
		return true
	}
	return false
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

// handshakeFailure says in words why a server-side TLS handshake failed,
// for the log. Go reports a client that refuses the certificate in two
// ways: under TLS 1.2, and under TLS 1.3 from Go clients, as the client's
// alert ("remote error: tls: bad certificate"); under TLS 1.3 from
// OpenSSL, whose alert is encrypted with keys the server cannot yet use,
// as "local error: tls: bad record MAC", which says nothing true about the
// server. The original error is logged beside this text.
func handshakeFailure(err error) string {
	var ne net.Error
	var rh tls.RecordHeaderError
	var oe *net.OpError
	switch {
	case errors.As(err, &rh):
		return "client does not speak TLS (plain text on the TLS port, or STLS followed by plain text)"
	case errors.As(err, &ne) && ne.Timeout():
		return "TLS handshake timed out"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return "client closed the connection during the TLS handshake"
	case errors.As(err, &oe) && oe.Op == "remote error" && strings.Contains(oe.Err.Error(), "certificate"):
		return "client rejected the server certificate"
	case errors.As(err, &oe) && oe.Op == "remote error":
		return "client aborted the TLS handshake"
	case errors.As(err, &oe) && oe.Op == "local error" && strings.Contains(oe.Err.Error(), "bad record MAC"):
		return "client aborted the TLS handshake: it probably rejected the server certificate"
	case strings.Contains(err.Error(), "no cipher suite") || strings.Contains(err.Error(), "unsupported versions") ||
		strings.Contains(err.Error(), "no mutual") || strings.Contains(err.Error(), "no ECDHE curve"):
		return "client offers no TLS version, cipher suite or curve this server accepts"
	}
	return "TLS handshake failed"
}

// tlsRequired reports whether authentication must wait for TLS on this
// session (RequireTLS and no TLS yet), so that CAPA does not offer what
// would be refused.
func (h *session) tlsRequired() bool {
	return h.srv.cfg.RequireTLS && h.s.Mode()&pop3gen.ModeTLS == 0
}
