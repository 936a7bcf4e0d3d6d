package server

import (
	"net"
	"net/netip"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// addrKey groups client addresses for the failed-login penalties as the
// core groups them for its per-address limits (pop3gen.AddrKey).
func addrKey(a net.Addr) netip.Prefix { return pop3gen.AddrKey(a) }
