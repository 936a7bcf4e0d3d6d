package server

import (
	"net"
	"net/netip"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// addrKey groups client addresses for the failed-login penalties as the
// core groups them for MaxPreauthPerAddr: an IPv4 address alone, an IPv6
// address by its /64, the smallest block a site is given, so that one
// host cannot dodge a penalty by rotating through its own interface
// identifiers.
func addrKey(a net.Addr) netip.Prefix {
	ip := pop3gen.RemoteIP(a)
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}
