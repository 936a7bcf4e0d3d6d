package server

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
)

// Local recipients without a domain. An MTA or a fetcher that delivers to
// local accounts by name (fetchmail's --lmtp, procmail-style setups) sends
// RCPT TO:<bob>, which RFC 5321's grammar does not allow and go-smtp's
// parser refuses (501). Dovecot's LMTP takes it as the account bob, and so
// does pop3d: the LMTP connection's command lines — never a message's
// lines, which DATA and BDAT carry — have such a path completed with
// localRcptDomain, a name RFC 2606 keeps from ever being a real domain,
// and resolve takes it off again.

// localRcptDomain completes a recipient that has no domain.
const localRcptDomain = "local.pop3kit.invalid"

// rcptConn is an LMTP connection whose reader completes bare recipients.
type rcptConn struct {
	net.Conn
	r *rcptReader
}

func (c *rcptConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func newRcptConn(c net.Conn) *rcptConn {
	return &rcptConn{Conn: c, r: &rcptReader{br: newBufReader(c)}}
}

// newBufReader is the reader's buffer: a line longer passes in pieces.
func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 4096) }

// rcptReader passes the input through, completing "RCPT TO:<name>" in
// command lines. It follows the protocol's framing so that it never looks
// into a message: after DATA every line up to the lone "." is the
// message's, and BDAT's octets are counted past.
type rcptReader struct {
	br      *bufio.Reader
	pending []byte
	data    bool  // inside DATA's message
	bdat    int64 // BDAT octets still to pass
	midLine bool  // the last piece ended inside a line longer than the buffer
}

func (r *rcptReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// fill reads the next piece: BDAT octets, or a line (or a part of a line
// longer than the buffer, passed through as it is).
func (r *rcptReader) fill() error {
	if r.bdat > 0 {
		buf := make([]byte, min(r.bdat, 32<<10))
		n, err := r.br.Read(buf)
		r.bdat -= int64(n)
		r.pending = buf[:n]
		return err
	}
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.midLine = true
		r.pending = append([]byte(nil), line...)
		return nil
	}
	if len(line) > 0 {
		whole := !r.midLine
		r.midLine = false
		r.pending = append([]byte(nil), line...)
		if whole {
			r.pending = r.command(r.pending)
		}
		return nil
	}
	return err
}

// command looks at one whole line: inside DATA, only for the end of the
// message; outside, for DATA, BDAT and a bare recipient.
func (r *rcptReader) command(line []byte) []byte {
	text := strings.TrimRight(string(line), "\r\n")
	if r.data {
		if text == "." {
			r.data = false
		}
		return line
	}
	upper := strings.ToUpper(text)
	switch {
	case upper == "DATA":
		r.data = true
	case strings.HasPrefix(upper, "BDAT "):
		if f := strings.Fields(text); len(f) >= 2 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n > 0 {
				r.bdat = n
			}
		}
	case strings.HasPrefix(upper, "RCPT TO:<"):
		rest := text[len("RCPT TO:<"):]
		end := strings.IndexByte(rest, '>')
		if end > 0 && !strings.ContainsAny(rest[:end], "@\" ") && !strings.EqualFold(rest[:end], "postmaster") {
			return []byte(text[:len("RCPT TO:<")] + rest[:end] + "@" + localRcptDomain + rest[end:] + string(line[len(text):]))
		}
	}
	return line
}

// bareRecipient returns addr without localRcptDomain, and whether it had it.
func bareRecipient(addr string) (string, bool) {
	if local, ok := strings.CutSuffix(addr, "@"+localRcptDomain); ok {
		return local, true
	}
	return addr, false
}
