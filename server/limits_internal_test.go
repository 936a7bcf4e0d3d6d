package server

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
)

// TestLimitAddrKey: MaxPreauthPerIP counts an IPv4 address alone, an IPv6
// address with the rest of its /64, and an IPv4-mapped IPv6 address as
// the IPv4 address it is.
func TestLimitAddrKey(t *testing.T) {
	key := func(ip string) string {
		return pop3.AddrKey(&net.TCPAddr{IP: net.ParseIP(ip), Port: 110}).String()
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
	require.False(t, pop3.AddrKey(&net.UnixAddr{Name: "x"}).IsValid(), "a connection without an IP address is not counted per address")
}

// TestTrustParseNetworks: prefixes and single addresses; an IPv4-mapped
// prefix is read as IPv4; a bad entry is an error naming it.
func TestTrustParseNetworks(t *testing.T) {
	got, err := parseNetworks([]string{"10.0.0.0/8", " ::1 ", "192.0.2.1", "::ffff:198.51.100.0/120", ""})
	require.NoError(t, err)
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	require.Equal(t, []string{"10.0.0.0/8", "::1/128", "192.0.2.1/32", "198.51.100.0/24"}, s)
	_, err = parseNetworks([]string{"10.0.0.0/33"})
	require.ErrorContains(t, err, `trusted network "10.0.0.0/33"`)
}
