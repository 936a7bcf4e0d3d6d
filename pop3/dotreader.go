package pop3

import (
	"bufio"
	"io"
	"strconv"
)

// DotReader reads the data of a multi-line reply (RFC 1939 §3), as a
// client does: it removes the "." stuffed before lines that start with one
// and stops at the line holding only ".". Line ends are returned as sent;
// only CRLF ends a line, so a bare CR or a bare LF is data (unlike
// net/textproto's DotReader, which also takes a bare LF as a line end and
// turns CRLF into LF). It is the inverse of DotWriter: reading what
// DotWriter wrote gives the CRLF form of what was written to it.
//
// It is a small state machine over the bufio.Reader's buffer: memory stays
// at that buffer, whatever the length of a line, and the slices it copies
// from are never kept past a Read.
type DotReader struct {
	// MaxLine, when above 0, is the longest data line accepted, CRLF
	// included: a longer one is a ProtocolError. RFC 1939 sets no limit
	// on message lines (RFC 5322 §2.1.1 says 1000); 0 accepts any length.
	MaxLine int

	r         *bufio.Reader
	pending   []byte // aliases r's buffer until consumed
	lineLen   int    // octets of the current line read so far
	lineStart bool
	prevCR    bool // the last octet read was CR
	done      bool
}

// NewDotReader returns a DotReader on r, which must be positioned after
// the "+OK" line.
func NewDotReader(r *bufio.Reader) *DotReader { return &DotReader{r: r, lineStart: true} }

// Reset makes d read a new reply from r, keeping MaxLine.
func (d *DotReader) Reset(r *bufio.Reader) { *d = DotReader{r: r, lineStart: true, MaxLine: d.MaxLine} }

// Done reports whether the terminating line has been read.
func (d *DotReader) Done() bool { return d.done }

// Close reads and drops the rest of the reply, up to and including the
// terminating line, so that the next reply can be read. It does not close
// the underlying reader.
func (d *DotReader) Close() error {
	d.pending = nil
	for !d.done {
		if _, err := d.next(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		d.pending = nil
	}
	return nil
}

// Read reads unstuffed data. It returns io.EOF after the terminating line,
// and errTruncated (which is io.ErrUnexpectedEOF) if the input ends before
// it.
func (d *DotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.done {
			return 0, io.EOF
		}
		if _, err := d.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// next reads the next piece of a line into pending: a whole line, or as
// much of a long one as the buffer holds.
func (d *DotReader) next() (int, error) {
	line, err := d.r.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull && len(line) == 0 {
		if err == io.EOF {
			err = errTruncated
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
	d.lineLen += len(line)
	if d.MaxLine > 0 && d.lineLen > d.MaxLine {
		return 0, protocolError("data line longer than "+strconv.Itoa(d.MaxLine)+" octets", line)
	}
	// The next octet starts a line only after CR LF, which may have
	// been split across two reads.
	n := len(line)
	d.lineStart = endsLF && (n >= 2 && line[n-2] == '\r' || n == 1 && d.prevCR)
	if d.lineStart {
		d.lineLen = 0
	}
	if n > 0 {
		d.prevCR = line[n-1] == '\r'
	}
	d.pending = line
	return n, nil
}
