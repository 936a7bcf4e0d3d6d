package server

import (
	"io"

	"github.com/pop3kit/pop3kit/pop3gen"
)

// rewinder is an open message that can be read again from its start
// (*MessageFile).
type rewinder interface {
	io.Reader
	Rewind() error
}

// topOctets returns the octets that TOP msg lines sends after its status
// line: the header, the blank line and the first lines body lines (all of
// the body when it has fewer), counted in their CRLF form as STAT and LIST
// count a message, so that TOP with a count beyond the body states the
// message's exact size. It measures by running pop3gen.CopyTop itself into a
// counter, so the count and the bytes sent cannot disagree, then rewinds
// f for the copy that follows. It reads only what TOP sends.
func topOctets(f rewinder, lines uint32) (int64, error) {
	var c crlfCounter
	if err := pop3gen.CopyTop(&c, f, lines); err != nil {
		return 0, err
	}
	return c.n, f.Rewind()
}

// crlfCounter counts the octets written to it as they are in CRLF form:
// an LF not preceded by CR counts two.
type crlfCounter struct {
	n      int64
	prevCR bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	for i, b := range p {
		if b == '\n' && !(i > 0 && p[i-1] == '\r' || i == 0 && c.prevCR) {
			c.n++
		}
	}
	if len(p) > 0 {
		c.prevCR = p[len(p)-1] == '\r'
	}
	return len(p), nil
}
