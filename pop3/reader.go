package pop3

import (
	"bufio"
	"io"
)

// lineReader reads the lines a Session is fed, with bounded memory. Lines
// that fit its buffer are returned in place, without copying. A longer
// line is copied up to the limit into a second slice (SASL responses may
// legitimately be longer than the buffer); past the limit the rest of the
// line is read and thrown away, and what is returned is longer than the
// limit, so that Feed refuses it. Memory stays at the buffer plus at most
// the largest limit asked for, whatever a client sends.
type lineReader struct {
	br   *bufio.Reader
	long []byte
}

// newLineReader returns a lineReader on r with a buffer of size octets;
// MaxCommandOctets+2 is enough for every command.
func newLineReader(r io.Reader, size int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, size)}
}

// Reset makes the reader read from r, dropping what it had buffered.
func (l *lineReader) Reset(r io.Reader) { l.br.Reset(r) }

// Buffered returns the number of octets read from the connection and not
// yet returned. After STLS they must be discarded, never run (RFC 2595 §4).
func (l *lineReader) Buffered() int { return l.br.Buffered() }

// Waiting waits for the next octet from the connection without taking
// it: an error (a deadline) leaves the reader as it was.
func (l *lineReader) Waiting() error {
	_, err := l.br.Peek(1)
	return err
}

// Discard drops everything buffered.
func (l *lineReader) Discard() { _, _ = l.br.Discard(l.br.Buffered()) }

// ReadLine returns the next line with its line end, given the longest line
// (CRLF included) the caller accepts. A line longer than max is returned
// cut to max+2 octets without its line end. The slice is valid until the
// next call. At the end of the input a last line without LF is returned
// with a nil error; the next call returns io.EOF.
func (l *lineReader) ReadLine(max int) ([]byte, error) {
	line, err := l.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			err = nil
		}
		return line, err
	}
	keep := max + 2
	l.long = append(l.long[:0], line[:min(len(line), keep)]...)
	for err == bufio.ErrBufferFull {
		line, err = l.br.ReadSlice('\n')
		if room := keep - len(l.long); room > 0 {
			l.long = append(l.long, line[:min(len(line), room)]...)
		}
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	return l.long, nil
}
