package pop3

import (
	"bytes"
	"io"
)

// DotWriter streams a message body as the data of a multi-line reply
// (RFC 1939 §3): every LF that is not already preceded by CR becomes CRLF,
// a line that starts with "." gets another "." in front, and Close ends
// the reply with ".\r\n", after a CRLF when the body did not end with a
// line break. A CR that is not followed by LF is passed through.
//
// It holds two bits of state between writes, never the data: a message of
// any size streams through it a block at a time, converted into a pooled
// buffer and written in one call, without being held in memory.
type DotWriter struct {
	w         io.Writer
	midLine   bool // the last byte written was not a line end
	pendingCR bool // the last byte written was CR
	n         int64
	err       error
}

// NewDotWriter returns a DotWriter on w.
func NewDotWriter(w io.Writer) *DotWriter { return &DotWriter{w: w} }

// Reset makes d a fresh DotWriter on w.
func (d *DotWriter) Reset(w io.Writer) { *d = DotWriter{w: w} }

// Written returns the octets written to the underlying writer so far.
func (d *DotWriter) Written() int64 { return d.n }

func (d *DotWriter) out(b []byte) {
	if d.err != nil || len(b) == 0 {
		return
	}
	var n int
	n, d.err = d.w.Write(b)
	d.n += int64(n)
}

var (
	crlf   = []byte("\r\n")
	dot    = []byte(".")
	endDot = []byte(".\r\n")
)

// Write converts and writes p. It returns len(p) unless the underlying
// writer fails. Lines are found with bytes.IndexByte, so a body streams at
// memory speed rather than octet by octet, and each block of up to
// copyBlock octets is converted into a pooled buffer and written in one
// call.
func (d *DotWriter) Write(p []byte) (int, error) {
	total := len(p)
	wp := wireBufs.Get().(*[]byte)
	defer wireBufs.Put(wp)
	for len(p) > 0 && d.err == nil {
		n := min(len(p), copyBlock)
		*wp = d.appendWire((*wp)[:0], p[:n])
		d.out(*wp)
		p = p[n:]
	}
	if d.err != nil {
		return 0, d.err
	}
	return total, nil
}

// appendWire appends p's wire form to dst, as Write would write it, and
// keeps the state for what follows: the block path of RETR, which writes
// a converted block in one call rather than a line at a time.
func (d *DotWriter) appendWire(dst, p []byte) []byte {
	for len(p) > 0 {
		if !d.midLine && p[0] == '.' {
			dst = append(dst, '.')
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			dst = append(dst, p...)
			d.midLine, d.pendingCR = true, p[len(p)-1] == '\r'
			break
		}
		if i > 0 && p[i-1] == '\r' || i == 0 && d.pendingCR {
			dst = append(dst, p[:i+1]...) // already CRLF
		} else {
			dst = append(dst, p[:i]...)
			dst = append(dst, '\r', '\n')
		}
		d.midLine, d.pendingCR = false, false
		p = p[i+1:]
	}
	return dst
}

// Close ends the multi-line reply. It does not close the underlying
// writer.
func (d *DotWriter) Close() error {
	if d.midLine {
		d.out(crlf)
		d.midLine, d.pendingCR = false, false
	}
	d.out(endDot)
	return d.err
}
