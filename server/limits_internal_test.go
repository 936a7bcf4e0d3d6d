package server

import (
	"testing"

	"github.com/stretchr/testify/require"
)

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
