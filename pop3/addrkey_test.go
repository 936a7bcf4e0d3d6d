package pop3

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLimitAddrKey: MaxPreauthPerIP counts an IPv4 address alone, an IPv6
// address with the rest of its /64, and an IPv4-mapped IPv6 address as
// the IPv4 address it is.
func TestLimitAddrKey(t *testing.T) {
	key := func(ip string) string {
		return addrKey(&net.TCPAddr{IP: net.ParseIP(ip), Port: 110}).String()
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
	} {
		require.Equal(t, key(tc.a), key(tc.b), "%s and %s share a key", tc.a, tc.b)
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.7", "192.0.2.8"},
	} {
		require.NotEqual(t, key(tc.a), key(tc.b), "%s and %s are counted apart", tc.a, tc.b)
	}
	require.Equal(t, "2001:db8:1:2::/64", key("2001:db8:1:2::1"))
	require.False(t, addrKey(&net.UnixAddr{Name: "x"}).IsValid(), "a connection without an IP address is not counted per address")
}
