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

// bufferedWriter is a buffered writer (a bufio.Writer, the session's own)
// whose free space a DotWriter converts into directly.
type bufferedWriter interface {
	io.Writer
	Available() int
	AvailableBuffer() []byte
	Flush() error
}

// minRoom is the free space below which a DotWriter converting into its
// writer's buffer flushes it first.
const minRoom = 1 << 10

// Write converts and writes p. It returns len(p) unless the underlying
// writer fails. Lines are found with bytes.IndexByte, so a body streams at
// memory speed rather than octet by octet. On a buffered writer (a
// bufio.Writer) the body is converted straight into the writer's buffer,
// behind what is already there (the "+OK" line), so a message smaller than
// the buffer leaves in one write with its status line and its end;
// otherwise each block of up to copyBlock octets is converted into a
// pooled buffer and written in one call.
func (d *DotWriter) Write(p []byte) (int, error) {
	if bw, ok := d.w.(bufferedWriter); ok {
		return d.writeBuffered(bw, p)
	}
	return d.writeBlocks(p)
}

// writeBlocks is Write through a pooled buffer, a block at a time.
func (d *DotWriter) writeBlocks(p []byte) (int, error) {
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

// writeBuffered is Write into bw's buffer: each part of p as large as half
// the free space (the wire form is at most twice as long: an LF becomes
// CRLF, a line's leading "." two) is converted in place, the buffer
// flushed when little space is left.
func (d *DotWriter) writeBuffered(bw bufferedWriter, p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 && d.err == nil {
		if bw.Available() < minRoom {
			if d.err = bw.Flush(); d.err != nil {
				break
			}
		}
		buf := bw.AvailableBuffer()
		n := min(len(p), cap(buf)/2)
		if n == 0 {
			break // a buffer too small to convert into: the blocks' way
		}
		out := d.appendWire(buf, p[:n])
		var w int
		w, d.err = bw.Write(out)
		d.n += int64(w)
		p = p[n:]
	}
	if d.err != nil {
		return 0, d.err
	}
	if len(p) > 0 {
		if _, err := d.writeBlocks(p); err != nil {
			return 0, err
		}
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
