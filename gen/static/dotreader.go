package static

import (
	"bufio"
	"io"
)

// DotReader reads the data of a multi-line reply (RFC 1939 §3), as a
// client does: it removes the "." stuffed before lines that start with one
// and stops at the line holding only ".". Line ends are returned as sent;
// only CRLF ends a line, so a bare CR or a bare LF is data. It is the
// inverse of DotWriter: reading what DotWriter wrote gives the CRLF form of
// what was written to it.
type DotReader struct {
	r         *bufio.Reader
	pending   []byte // aliases r's buffer until consumed
	lineStart bool
	prevCR    bool // the last octet read was CR
	done      bool
}

// NewDotReader returns a DotReader on r, which must be positioned after
// the "+OK" line.
func NewDotReader(r *bufio.Reader) *DotReader { return &DotReader{r: r, lineStart: true} }

// Read reads unstuffed data. It returns io.EOF after the terminating line,
// and io.ErrUnexpectedEOF if the input ends before it.
func (d *DotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.done {
			return 0, io.EOF
		}
		line, err := d.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && len(line) == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		endsLF := err == nil
		if d.lineStart && line[0] == '.' {
			if endsLF && len(line) == 3 && line[1] == '\r' {
				d.done = true
				return 0, io.EOF
			}
			line = line[1:]
			d.prevCR = false // the "." came between any CR and this LF
		}
		// The next octet starts a line only after CR LF, which may have
		// been split across two reads.
		n := len(line)
		d.lineStart = endsLF && (n >= 2 && line[n-2] == '\r' || n == 1 && d.prevCR)
		if n > 0 {
			d.prevCR = line[n-1] == '\r'
		}
		d.pending = line
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}
