package server

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
)

// FuzzProxyHeader: any bytes from a trusted load balancer — a PROXY v1 or
// v2 header or anything else — are read within the header timeout without
// a panic; what does not start with a header's signature is refused
// (closed, no connection handed on); what is accepted hands on exactly the
// octets that followed the header.
func FuzzProxyHeader(f *testing.F) {
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n")
	for _, s := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.1 192.0.2.2 4000 110\r\nUSER alice\r\n"),
		[]byte("PROXY TCP6 ::1 ::1 1 2\r\n"),
		[]byte("PROXY UNKNOWN\r\nCAPA\r\n"),
		[]byte("PROXY TCP4 999.0.0.1 1.1.1.1 1 2\r\n"),
		append(append([]byte{}, v2...), 0x21, 0x11, 0, 12, 192, 0, 2, 1, 192, 0, 2, 2, 0x0f, 0xa0, 0, 110, 'N', 'O', 'O', 'P'),
		append(append([]byte{}, v2...), 0x20, 0x00, 0, 0),
		[]byte("USER alice\r\n"),
	} {
		f.Add(s)
	}
	l := &proxyListener{from: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, timeout: 50 * time.Millisecond, log: slog.New(slog.DiscardHandler)}
	fuzzbound.Fuzz(f, func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		defer client.Close()
		go func() {
			_, _ = client.Write(data)
			_ = client.Close()
		}()
		start := time.Now()
		pc := l.header(server)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%q: the header took %v", data, d)
		}
		signed := bytes.HasPrefix(data, []byte("PROXY ")) || bytes.HasPrefix(data, v2[:12])
		if pc == nil {
			return
		}
		defer pc.Close()
		if !signed {
			t.Fatalf("%q: accepted without a header's signature", data)
		}
		_ = pc.SetReadDeadline(time.Now().Add(time.Second))
		rest, _ := io.ReadAll(pc)
		if !bytes.HasSuffix(data, rest) {
			t.Fatalf("%q: after the header came %q, not what followed it", data, rest)
		}
	})
}
