package pop3

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
)

// FuzzClient: the client (pop3probe's, and a proxy's) against a server
// that answers anything: wire is all the server sends after its greeting,
// ops the calls the client makes. Whatever the bytes, no call panics or
// waits past the connection's deadline; what a call returns as success is
// what the grammar allows: counts and sizes from digits, message numbers
// of 32 bits, unique-ids RFC 1939 §7 allows; an error is the server's
// -ERR (*Error), a reply off the grammar (*ProtocolError) or the
// connection's.
func FuzzClient(f *testing.F) {
	f.Add([]byte("+OK 2 300\r\n+OK\r\n1 100\r\n2 200\r\n.\r\n+OK\r\n1 a1\r\n2 b2\r\n.\r\n+OK\r\nline\r\n..dot\r\n.\r\n"), []byte{0, 1, 2, 3, 4})
	f.Add([]byte("+OK\r\nTOP\r\nSASL PLAIN\r\nUIDL\r\n.\r\n-ERR [IN-USE] busy\r\n+ Y2hhbGxlbmdl\r\n"), []byte{5, 6, 7})
	f.Add([]byte("+OK\r\n1 \x01bad\r\n.\r\n+OK 1\r\n+OK\r\n0 4294967296\r\n"), []byte{2, 0, 1})
	fuzzbound.Fuzz(f, func(t *testing.T, wire, ops []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			go func() { _, _ = io.Copy(io.Discard, server) }() // the client's commands
			_, _ = server.Write(append([]byte("+OK fuzz\r\n"), wire...))
			server.Close()
		}()
		_ = client.SetDeadline(time.Now().Add(500 * time.Millisecond))
		c, err := NewClient(client)
		if err != nil {
			return
		}
		for _, op := range ops {
			switch op % 8 {
			case 0:
				n, size, err := c.Stat()
				if err == nil && (n < 0 || size < 0) {
					t.Fatalf("STAT %d %d", n, size)
				}
			case 1:
				list, _ := c.List()
				for _, e := range list {
					if e.Octets < 0 {
						t.Fatalf("LIST entry %+v", e)
					}
				}
			case 2:
				uids, _ := c.UIDL()
				for _, u := range uids {
					if !ValidUID(u.UID) {
						t.Fatalf("UIDL gave %q, which RFC 1939 §7 does not allow", u.UID)
					}
				}
			case 3:
				if r, err := c.Retr(1); err == nil {
					_, _ = io.Copy(io.Discard, r)
				}
			case 4:
				_, _ = c.Capa()
			case 5:
				_ = c.Noop()
			case 6:
				_ = c.Auth("PLAIN", []byte("\x00u\x00p"), func(ch []byte) ([]byte, error) { return nil, nil })
			case 7:
				_ = c.Quit()
			}
		}
	})
}
