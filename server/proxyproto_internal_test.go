package server

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProxyHeaderTimeout: a listed proxy that sends no header is closed
// after the header timeout, and meanwhile holds up no one: a connection
// from elsewhere is handed on at once.
func TestProxyHeaderTimeout(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := newProxyListener(inner, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 4, slog.New(slog.DiscardHandler))
	l.timeout = 200 * time.Millisecond
	defer l.Close()
	silent, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer silent.Close()
	// From 127.0.0.2, not listed: handed on untouched while the silent
	// proxy's header is still awaited.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	other, err := d.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer other.Close()
	got, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2", got.RemoteAddr().(*net.TCPAddr).IP.String())
	got.Close()
	// Closed well before this read's own deadline would end it.
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = silent.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed for want of a header")
}

// TestProxyPendingBound: headers awaited at once are bounded; a listed
// proxy's connection beyond the bound is closed at once.
func TestProxyPendingBound(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := newProxyListener(inner, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 1, slog.New(slog.DiscardHandler))
	l.timeout = 5 * time.Second
	defer l.Close()
	go func() { _, _ = l.Accept() }()
	first, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer first.Close()
	time.Sleep(100 * time.Millisecond) // the first takes the one slot
	second, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = second.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed: no slot to await its header")
}
