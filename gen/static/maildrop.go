//go:build pop3gen_core

package static

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"sync"
)

// Maildrop is a maildrop as a backend opens it at login: a list of
// messages that does not change during the session (the snapshot; the
// backend decides whether it is also locked, as the MaildropAccess
// variation says). MaildropHandler serves STAT, LIST, UIDL, RETR, TOP,
// DELE, RSET and the UPDATE state from it, and writes, terminates and
// dot-stuffs every reply itself: a backend only returns values.
type Maildrop interface {
	// Len returns the number of messages; they are numbered 1 to Len on
	// the wire and 0 to Len-1 here.
	Len() int
	// Size returns the octets of message i that STAT and LIST state: the
	// exact size of its CRLF form, or the storage size, as the
	// ExactSizes variation says (the backend honours it).
	Size(i int) int64
	// UniqueID returns message i's unique-id: 1 to MaxUIDOctets octets
	// from 0x21 to 0x7E, never given to another message (RFC 1939 §7).
	UniqueID(i int) string
	// Open returns message i from its first octet, with LF or CRLF line
	// ends. An error answers -ERR (an *Error as it is); an error while
	// it is read closes the connection, since the reply has begun.
	Open(i int) (io.ReadCloser, error)
	// Remove removes the messages at the indexes given, and no other
	// (the UPDATE state, RFC 1939 §6). An error answers -ERR [SYS/TEMP]
	// (or the *Error given): some may not have been removed
	// (MS-STANXPOP3 V0006).
	Remove(indexes []int) error
	// Close releases the maildrop when the connection ends, however it
	// ends. It removes nothing.
	Close() error
}

// MaildropHandler implements the TRANSACTION commands of Handler over a
// Maildrop, and QUIT with UPDATE: a server embeds it, implements USER,
// PASS, AUTH (…) and calls Open with the maildrop when a login succeeds.
//
//	type session struct{ pop3gen.MaildropHandler; … }
//	func (s *session) Pass(w *pop3gen.Writer, pw []byte) error {
//		md, err := s.store.Login(s.user, pw)
//		if err != nil { return err }
//		return s.Open(w, md)
//	}
type MaildropHandler struct {
	md      Maildrop
	deleted []bool
}

var (
	errNoSuchMessage = NewError("", "no such message")
	errMarkedDeleted = NewError("", "message is marked deleted")
)

// Open starts serving md and writes the +OK of a successful login with
// the maildrop's totals.
func (m *MaildropHandler) Open(w *Writer, md Maildrop) error {
	m.md, m.deleted = md, make([]bool, md.Len())
	n, size := m.totals()
	w.OK("maildrop has " + strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	return nil
}

// Close releases the maildrop; the runtime calls it when the connection
// ends. It removes nothing.
func (m *MaildropHandler) Close() error {
	if m.md == nil {
		return nil
	}
	err := m.md.Close()
	m.md = nil
	return err
}

// totals counts the messages not marked deleted and their size, which
// saturates rather than wrap.
func (m *MaildropHandler) totals() (int, int64) {
	n, size := 0, int64(0)
	for i, del := range m.deleted {
		if del {
			continue
		}
		n++
		if s := m.md.Size(i); s > 0 && size > math.MaxInt64-s {
			size = math.MaxInt64
		} else if s > 0 {
			size += s
		}
	}
	return n, size
}

// message returns the index of message msg (from 1) unless it does not
// exist or is marked deleted (RFC 1939 §5).
func (m *MaildropHandler) message(msg uint32) (int, error) {
	if msg == 0 || int64(msg) > int64(len(m.deleted)) {
		return 0, errNoSuchMessage
	}
	if m.deleted[msg-1] {
		return 0, errMarkedDeleted
	}
	return int(msg - 1), nil
}

// Stat answers STAT.
func (m *MaildropHandler) Stat(w *Writer) error {
	n, size := m.totals()
	w.Stat(n, size)
	return nil
}

// List answers LIST.
func (m *MaildropHandler) List(w *Writer, msg uint32) error {
	if msg != 0 {
		i, err := m.message(msg)
		if err != nil {
			return err
		}
		w.ScanListing(false, int(msg), m.md.Size(i))
		return nil
	}
	n, size := m.totals()
	w.Begin(strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	for i, del := range m.deleted {
		if !del {
			w.ScanListing(true, i+1, m.md.Size(i))
		}
	}
	w.End()
	return nil
}

// UIDL answers UIDL. A unique-id RFC 1939 forbids is an error: before
// the listing it answers -ERR, within it the connection closes.
func (m *MaildropHandler) UIDL(w *Writer, msg uint32) error {
	if msg != 0 {
		i, err := m.message(msg)
		if err != nil {
			return err
		}
		return w.UniqueID(false, int(msg), m.md.UniqueID(i))
	}
	w.Begin("unique-id listing follows")
	for i, del := range m.deleted {
		if !del {
			if err := w.UniqueID(true, i+1, m.md.UniqueID(i)); err != nil {
				return err
			}
		}
	}
	w.End()
	return nil
}

// Retr answers RETR: the message, dot-stuffed, LF turned into CRLF.
func (m *MaildropHandler) Retr(w *Writer, msg uint32) error {
	return m.send(w, msg, -1)
}

// Top answers TOP: the header, the blank line and the first lines body
// lines (RFC 1939 §7; a count beyond the body sends the whole message).
func (m *MaildropHandler) Top(w *Writer, msg, lines uint32) error {
	return m.send(w, msg, int64(lines))
}

// send streams message msg, all of it (lines < 0) or its top.
func (m *MaildropHandler) send(w *Writer, msg uint32, lines int64) error {
	i, err := m.message(msg)
	if err != nil {
		return err
	}
	r, err := m.md.Open(i)
	if err != nil {
		return err
	}
	defer r.Close()
	if lines < 0 {
		w.Begin("message follows")
	} else {
		w.Begin("top of message follows")
	}
	d := w.Message()
	if lines < 0 {
		if err := CopyMessage(d, r); err != nil {
			return err
		}
		return d.Close()
	}
	if err := CopyTop(d, r, uint32(lines)); err != nil {
		return err
	}
	return d.Close()
}

// Dele answers DELE: the message is marked, and removed only at UPDATE.
func (m *MaildropHandler) Dele(w *Writer, msg uint32) error {
	i, err := m.message(msg)
	if err != nil {
		return err
	}
	m.deleted[i] = true
	w.OK("message " + strconv.FormatUint(uint64(msg), 10) + " deleted")
	return nil
}

// Noop answers NOOP.
func (m *MaildropHandler) Noop(w *Writer) error { return nil }

// Rset answers RSET: every mark is taken back.
func (m *MaildropHandler) Rset(w *Writer) error {
	clear(m.deleted)
	n, size := m.totals()
	w.OK("maildrop has " + strconv.Itoa(n) + " messages (" + strconv.FormatInt(size, 10) + " octets)")
	return nil
}

// Quit answers QUIT before login: nothing to remove.
func (m *MaildropHandler) Quit(w *Writer) error {
	w.OK("signing off")
	return nil
}

// Update is the UPDATE state: the marked messages, and only they, are
// removed.
func (m *MaildropHandler) Update(w *Writer) error {
	var idx []int
	for i, del := range m.deleted {
		if del {
			idx = append(idx, i)
		}
	}
	if len(idx) > 0 {
		if err := m.md.Remove(idx); err != nil {
			if _, ok := err.(*Error); ok {
				return err
			}
			return NewError(CodeSysTemp, "some messages marked deleted could not be removed")
		}
	}
	w.OK("signing off (" + strconv.Itoa(len(idx)) + " messages removed)")
	return nil
}

// copyBufs holds the buffers CopyMessage streams messages with: a RETR
// borrows 32 KiB for its duration instead of allocating it.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// CopyMessage streams r to w (normally the reply's DotWriter) through a
// pooled buffer: no message is ever held whole in memory.
func CopyMessage(w io.Writer, r io.Reader) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	_, err := io.CopyBuffer(writerOnly{w}, readerOnly{r}, *bp)
	return err
}

// writerOnly and readerOnly hide ReadFrom/WriteTo so that io.CopyBuffer
// uses the pooled buffer instead of allocating its own.
type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// topReaders holds the buffered readers CopyTop reads headers with.
var topReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16*1024) }}

// CopyTop copies from r to w the header of a message, the blank line
// after it and the first lines lines of its body (RFC 1939 §7 TOP; a
// count beyond the body copies the whole message). w is normally the
// DotWriter of the reply; CopyTop also serves to measure what TOP sends.
func CopyTop(w io.Writer, r io.Reader, lines uint32) error {
	br := topReaders.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() { br.Reset(nil); topReaders.Put(br) }()
	header, lineStart := true, true
	var n uint32
	for {
		if !header && lineStart && n >= lines {
			return nil
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			blank := complete && (len(chunk) == 1 || len(chunk) == 2 && chunk[0] == '\r')
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			switch {
			case header && lineStart && blank:
				header = false
			case complete && !header:
				n++
			}
			lineStart = complete
		}
		if err == io.EOF {
			return nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
	}
}
