// Package memdrop is a maildrop held in memory, a pop3.Maildrop of
// values: for the tests of a server built on the runtime, for examples,
// and for a backend that fetches a user's messages whole (from an API, a
// database row) and serves them from memory.
//
// A Handler returns one from its login:
//
//	func (h *handler) Pass(user, secret []byte) (pop3.Maildrop, error) {
//		// … check the password …
//		return memdrop.New(
//			memdrop.Message{UID: "a1", Body: []byte("Subject: hello\n\nhi\n")},
//		), nil
//	}
//
// The runtime then answers STAT, LIST, UIDL, RETR, TOP, DELE and RSET
// from it, and UPDATE calls Remove with the messages marked deleted.
// Removed says which those were; the Maildrop itself keeps its list, as a
// session's snapshot does.
package memdrop

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/pop3kit/pop3kit/pop3"
)

// Message is one message of a Maildrop.
type Message struct {
	// UID is the message's unique-id (1 to 70 octets from 0x21 to 0x7E,
	// RFC 1939 §7); empty, New gives it the decimal of its position.
	UID string
	// Body is the message as stored, with LF or CRLF line ends; the
	// runtime sends it in CRLF form, dot-stuffed.
	Body []byte
}

// Maildrop is a list of messages fixed when it is made. It is safe for
// concurrent use, so that a test can look at it while a Server serves it.
type Maildrop struct {
	// StorageSizes makes Size state the octets of each Body as stored
	// (MS-STANXPOP3 §2.1.4, ExactSizes off); by default it states the
	// exact size of its CRLF form, as RFC 1939 asks. RETR's +OK states
	// the exact size either way (pop3.ExactSizer).
	StorageSizes bool

	msgs  []Message
	exact []int64

	mu      sync.Mutex
	removed []int
	closes  int
}

var (
	_ pop3.Maildrop   = (*Maildrop)(nil)
	_ pop3.ExactSizer = (*Maildrop)(nil)
)

// New returns a maildrop of msgs, in their order: message 1 on the wire is
// msgs[0]. It keeps the slice; the caller must not change it after.
func New(msgs ...Message) *Maildrop {
	d := &Maildrop{msgs: msgs, exact: make([]int64, len(msgs))}
	for i := range msgs {
		if msgs[i].UID == "" {
			msgs[i].UID = strconv.Itoa(i + 1)
		}
		b := msgs[i].Body
		// Every LF not preceded by CR becomes CRLF on the wire.
		d.exact[i] = int64(len(b) + bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n")))
	}
	return d
}

// Len returns the number of messages.
func (d *Maildrop) Len() int { return len(d.msgs) }

// Size returns the size STAT and LIST state for message i (from 0).
func (d *Maildrop) Size(i int) int64 {
	if d.StorageSizes {
		return int64(len(d.msgs[i].Body))
	}
	return d.exact[i]
}

// ExactSize returns the octets of message i's CRLF form.
func (d *Maildrop) ExactSize(i int) int64 { return d.exact[i] }

// UniqueID returns message i's unique-id.
func (d *Maildrop) UniqueID(i int) string { return d.msgs[i].UID }

// Open returns message i from its first octet. The reader is an
// io.Seeker too, with which the runtime measures what TOP sends.
func (d *Maildrop) Open(i int) (io.ReadCloser, error) {
	return readSeekCloser{bytes.NewReader(d.msgs[i].Body)}, nil
}

type readSeekCloser struct{ *bytes.Reader }

func (readSeekCloser) Close() error { return nil }

// Remove records the messages at indexes as removed; an index out of range
// or removed before is an error, and nothing is removed then.
func (d *Maildrop) Remove(indexes []int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[int]bool, len(indexes)+len(d.removed))
	for _, i := range d.removed {
		seen[i] = true
	}
	for _, i := range indexes {
		if i < 0 || i >= len(d.msgs) || seen[i] {
			return fmt.Errorf("memdrop: Remove of index %d, out of range or removed before", i)
		}
		seen[i] = true
	}
	d.removed = append(d.removed, indexes...)
	return nil
}

// Removed returns the indexes Remove removed, in the order it was given
// them.
func (d *Maildrop) Removed() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.removed...)
}

// Close counts a release of the maildrop; it removes nothing.
func (d *Maildrop) Close() error {
	d.mu.Lock()
	d.closes++
	d.mu.Unlock()
	return nil
}

// Closes returns how many times Close was called: once per session the
// maildrop was given to, when the connection ends.
func (d *Maildrop) Closes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closes
}
