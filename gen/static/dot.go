package static

import "io"

// DotWriter streams a message body as the data of a multi-line reply
// (RFC 1939 §3): every LF that is not already preceded by CR becomes CRLF,
// a line that starts with "." gets another "." in front, and Close ends
// the reply with ".\r\n", after a CRLF when the body did not end with a
// line break. A CR that is not followed by LF is passed through.
//
// It holds two bits of state between writes, never the data: a message of
// any size streams through it without being held in memory. It writes
// the caller's bytes in runs, so it never copies them.
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
// writer fails.
func (d *DotWriter) Write(p []byte) (int, error) {
	start := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !d.midLine && c == '.' {
			d.out(p[start:i])
			d.out(dot)
			start = i // the original "." goes out with the run
		}
		switch c {
		case '\n':
			if !d.pendingCR {
				d.out(p[start:i])
				d.out(crlf)
				start = i + 1
			}
			d.midLine, d.pendingCR = false, false
		case '\r':
			d.midLine, d.pendingCR = true, true
		default:
			d.midLine, d.pendingCR = true, false
		}
	}
	d.out(p[start:])
	if d.err != nil {
		return 0, d.err
	}
	return len(p), nil
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
