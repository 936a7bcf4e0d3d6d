package pop3

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// Maildrop is a maildrop as a backend opens it at login: a list of
// messages that does not change during the session (the snapshot; the
// backend decides whether it is also locked, as the MaildropAccess
// variation says). The core serves STAT, LIST, UIDL, RETR, TOP, DELE,
// RSET and the UPDATE state from it, and writes, terminates and
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
	//
	// A Maildrop that also has a method Idle() is told when its session
	// has waited idleAfter (a second) for the client's next command: it
	// may let go of what it holds between commands (a directory, a
	// database connection, buffers) and take it again at its next call,
	// so that thousands of idle sessions cost little.
	Close() error
}

// TopOpener is a Maildrop that can open just the top of a message (a
// proxy asks its backend for TOP rather than fetch the whole message):
// the core sends what OpenTop returns, cut at the same line if it runs
// longer.
type TopOpener interface {
	OpenTop(i int, lines uint32) (io.ReadCloser, error)
}

// Event is one command a session answered, as Server.Observe sees it.
type Event struct {
	// Cmd is the command; CmdNone for a line that did not parse.
	Cmd Cmd
	// Command is its keyword; "" for a line that did not parse.
	Command string
	// Err is the -ERR it was answered with; nil for +OK.
	Err *Error
	// Octets are the octets of the message RETR or TOP sent (before
	// dot-stuffing, line ends as stored).
	Octets int64
	// Elapsed is the time from the line's arrival to the end of the
	// reply's writing into the connection's buffer.
	Elapsed time.Duration
	// Penalty is how long a login waited for its address's turn
	// (LoginPolicy); 0 for none.
	Penalty time.Duration
	// Continued is set for a step of a SASL exchange answered with a
	// challenge: the command goes on, and its last step's Event says how
	// it ended. Count a command where Continued is false.
	Continued bool
}

// SessionStats is what a session did, for a logout line (Dovecot's
// top=, retr=, del=, size=).
type SessionStats struct {
	Messages   int   // in the maildrop at login
	Size       int64 // its size at login, as STAT stated it
	Retr, Top  int   // RETR and TOP answered +OK
	RetrOctets int64
	TopOctets  int64
	Deleted    int // messages removed at UPDATE
}

// Stats returns what the session did so far.
func (s *Session) Stats() SessionStats { return s.stats }

// countReader counts what is read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ExactSizer is a Maildrop that knows the exact size of each message's
// CRLF form even where Size states the storage size (ExactSizes off):
// RETR's +OK then states it, as RFC 1939's examples do.
type ExactSizer interface {
	ExactSize(i int) int64
}

var (
	errNoSuchMessage = NewError("", "no such message")
	errMarkedDeleted = NewError("", "message is marked deleted")
	errNoMaildrop    = NewError(CodeSysTemp, "the maildrop could not be opened")
	errUnreadable    = NewError(CodeSysTemp, "message cannot be read now")
	errNotRemoved    = NewError(CodeSysTemp, "some messages marked deleted could not be removed")
	errNoTLS         = NewError("", "TLS is not available on this connection")
	// errBadSize answers a size the Maildrop gave as negative after it
	// was checked at login, which Maildrop's contract does not allow.
	errBadSize = NewError(CodeSysTemp, "message size cannot be stated now")
)

// open starts serving the maildrop a login returned, or answers its
// error; it writes the +OK of a successful login with the totals.
func (s *Session) open(md Maildrop, err error) error {
	if err != nil {
		if md != nil {
			_ = md.Close()
		}
		return err
	}
	if md == nil {
		return errNoMaildrop
	}
	if err := checkMaildrop(md); err != nil {
		s.logBackend("the maildrop a login returned is refused", err)
		_ = md.Close()
		return errNoMaildrop
	}
	if user, ok := s.owner(md); ok && s.admit != nil {
		// MaxSessionsPerUser, whatever the Handler does: the session
		// counts for its user before the +OK goes out.
		if e := s.admit(user); e != nil {
			_ = md.Close()
			return e
		}
	}
	s.md, s.deleted = md, make([]bool, md.Len())
	s.stats.Messages, s.stats.Size = s.totals()
	s.okTotals()
	return nil
}

// Owner is a Maildrop that names its user: the runtime counts the session
// toward Server.MaxSessionsPerUser under that name, whichever command
// logged in (PASS, APOP, AUTH). Without it a PASS login counts under
// USER's name and an APOP login under its own, as UserNameCase reads
// them; an AUTH login, whose identity only the mechanism knows, is counted
// only if the Handler calls Conn.Login.
type Owner interface {
	Owner() string
}

// owner returns the user a login that opened md counts for.
func (s *Session) owner(md Maildrop) (string, bool) {
	if o, ok := md.(Owner); ok {
		return o.Owner(), true
	}
	name := s.user // PASS: USER's name
	switch {
	case s.p.Commands[s.ev.Cmd].After != CmdNone:
	case s.p.Commands[s.ev.Cmd].Args == NameDigest:
		name = s.cmd.Arg1 // APOP: its own
	default:
		return "", false
	}
	if len(name) == 0 {
		return "", false
	}
	if s.v.UserNameCase == UserNameCaseLower {
		// ASCII only, as UserNameCase documents (Dovecot's %Lu): a
		// Unicode fold would count "\u212Aate" (KELVIN SIGN) as kate.
		return lower(string(name)), true
	}
	return string(name), true
}

// checkMaildrop checks, once at login, what the core will state of md for
// the whole session: a count that is not negative, sizes that are not
// negative and unique-ids RFC 1939 allows (1 to 70 octets from 0x21 to
// 0x7E). Size and UniqueID return no error, so a listing can never fail
// half-way on a value: a maildrop that cannot give them all at login is
// refused then, before anything is written.
func checkMaildrop(md Maildrop) error {
	n := md.Len()
	if n < 0 {
		return fmt.Errorf("Len returned %d", n)
	}
	for i := range n {
		if size := md.Size(i); size < 0 {
			return fmt.Errorf("Size(%d) returned %d", i, size)
		}
		if uid := md.UniqueID(i); !ValidUID(uid) {
			return fmt.Errorf("UniqueID(%d) returned %.80q, which RFC 1939 §7 does not allow", i, uid)
		}
	}
	return nil
}

// logBackend logs err, which a Handler or a Maildrop returned, with what
// the core was doing: an error the backend did not choose as a reply is
// answered for it ([SYS/TEMP], errInternal) and would otherwise be lost.
func (s *Session) logBackend(what string, err error) {
	if s.log != nil {
		s.log.Warn(what, "command", s.ev.Command, "err", err)
	}
}

// logFailure logs a command's failure that is not a reply the backend
// chose: any error but an *Error, and any error once the reply had begun
// (the connection closes without its end).
func (s *Session) logFailure(err error) {
	if err == nil {
		return
	}
	if _, ok := err.(*Error); ok && s.w.lines() == 0 {
		return
	}
	if s.w.lines() > 0 {
		s.logBackend("reply cut short: closing the connection", err)
		return
	}
	s.logBackend("backend error", err)
}

// Close releases the maildrop, if a login opened one; the runtime calls
// it when the connection ends, however it ends. It removes nothing.
func (s *Session) Close() error {
	if s.md == nil {
		return nil
	}
	err := s.md.Close()
	s.md, s.deleted = nil, nil
	return err
}

// LoggedIn reports whether a login opened the maildrop.
func (s *Session) LoggedIn() bool { return s.md != nil }

// okTotals writes "+OK maildrop has n messages (size octets)".
func (s *Session) okTotals() {
	s.w.totals(s.totals())
}

// totals counts the messages not marked deleted and their size, which
// saturates rather than wrap: sizes may come from file names a local
// user writes, and STAT must never state a negative maildrop.
func (s *Session) totals() (int, int64) {
	n, size := 0, int64(0)
	for i, del := range s.deleted {
		if del {
			continue
		}
		n++
		if m := s.md.Size(i); m > 0 && size > math.MaxInt64-m {
			size = math.MaxInt64
		} else if m > 0 {
			size += m
		}
	}
	return n, size
}

// Message returns the index in the Maildrop of message msg (from 1), or
// the -ERR for a message that does not exist or is marked deleted (RFC
// 1939 §5). A Handler method of a command the table adds uses it to
// refer to messages as the core does.
func (s *Session) Message(msg uint32) (int, error) {
	if msg == 0 || int64(msg) > int64(len(s.deleted)) {
		return 0, errNoSuchMessage
	}
	if s.deleted[msg-1] {
		return 0, errMarkedDeleted
	}
	return int(msg - 1), nil
}

// stat answers STAT.
func (s *Session) stat() error {
	n, size := s.totals()
	s.w.Stat(n, size)
	return nil
}

// list answers LIST.
func (s *Session) list(msg uint32) error {
	if msg != 0 {
		i, err := s.Message(msg)
		if err != nil {
			return err
		}
		size := s.md.Size(i)
		if size < 0 {
			return errBadSize
		}
		s.w.ScanListing(false, int(msg), size)
		return nil
	}
	n, total := s.totals()
	s.w.Begin(strconv.Itoa(n) + messages(n) + " (" + strconv.FormatInt(total, 10) + " octets)")
	for i, del := range s.deleted {
		if !del {
			size := s.md.Size(i)
			if size < 0 {
				return errBadSize // within the listing: the connection closes
			}
			s.w.ScanListing(true, i+1, size)
		}
	}
	s.w.End()
	return nil
}

// uidl answers UIDL. A unique-id RFC 1939 forbids is an error: before the
// listing it answers -ERR, within it the connection closes.
func (s *Session) uidl(msg uint32) error {
	if msg != 0 {
		i, err := s.Message(msg)
		if err != nil {
			return err
		}
		return s.w.UniqueID(false, int(msg), s.md.UniqueID(i))
	}
	s.w.Begin("unique-id listing follows")
	for i, del := range s.deleted {
		if !del {
			if err := s.w.UniqueID(true, i+1, s.md.UniqueID(i)); err != nil {
				return err
			}
		}
	}
	s.w.End()
	return nil
}

// retr answers RETR: the message, dot-stuffed, LF turned into CRLF. The
// +OK states its octets where they are known exactly.
func (s *Session) retr(msg uint32) error {
	return s.send(msg, -1)
}

// top answers TOP: the header, the blank line and the first lines body
// lines (RFC 1939 §7; a count beyond the body sends the whole message).
// The +OK states the octets of what is sent where the message can be read
// twice (its reader is an io.Seeker): measured, then rewound.
func (s *Session) top(msg, lines uint32) error {
	return s.send(msg, int64(lines))
}

// send streams message msg, all of it (lines < 0) or its top.
func (s *Session) send(msg uint32, lines int64) error {
	i, err := s.Message(msg)
	if err != nil {
		return err
	}
	var r io.ReadCloser
	if t, ok := s.md.(TopOpener); ok && lines >= 0 {
		r, err = t.OpenTop(i, uint32(lines))
	} else {
		r, err = s.md.Open(i)
	}
	if err != nil {
		if _, ok := err.(*Error); ok {
			return err
		}
		s.logBackend("message cannot be opened", err)
		return errUnreadable
	}
	defer r.Close()
	status := "message follows"
	switch {
	case lines >= 0:
		status = "top of message follows"
		if sk, ok := r.(io.Seeker); ok {
			var c crlfCounter
			if err := copyTop(&c, r, uint32(lines)); err != nil {
				s.logBackend("message cannot be measured", err)
				return errUnreadable
			}
			if _, err := sk.Seek(0, io.SeekStart); err != nil {
				s.logBackend("message cannot be measured", err)
				return errUnreadable
			}
			status = strconv.FormatInt(c.n, 10) + " octets"
		}
	case s.v.ExactSizes:
		if size := s.md.Size(i); size >= 0 {
			status = strconv.FormatInt(size, 10) + " octets"
		}
	default:
		if es, ok := s.md.(ExactSizer); ok {
			if size := es.ExactSize(i); size >= 0 {
				status = strconv.FormatInt(size, 10) + " octets"
			}
		}
	}
	s.w.Begin(status)
	d := s.w.Message()
	s.cr = countReader{r: r}
	if lines < 0 {
		err = copyMessage(d, &s.cr)
		s.ev.Octets = s.cr.n
	} else {
		// What TOP sends is what reaches the DotWriter: the reader may
		// have read ahead of the lines the client asked for.
		cw := countWriter{w: d}
		err = copyTop(&cw, &s.cr, uint32(lines))
		s.ev.Octets = cw.n
	}
	s.cr.r = nil
	if err != nil {
		// The status line is out: finish closes the connection rather
		// than write -ERR into the body.
		return err
	}
	if err := d.Close(); err != nil {
		return err
	}
	if lines < 0 {
		s.stats.Retr++
		s.stats.RetrOctets += s.ev.Octets
	} else {
		s.stats.Top++
		s.stats.TopOctets += s.ev.Octets
	}
	return nil
}

// countWriter counts the octets written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// crlfCounter counts the octets written to it as they are in CRLF form:
// an LF not preceded by CR counts two, as the DotWriter sends it.
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

// dele answers DELE: the message is marked, and removed only at UPDATE.
func (s *Session) dele(msg uint32) error {
	i, err := s.Message(msg)
	if err != nil {
		return err
	}
	s.deleted[i] = true
	s.w.OK("message " + strconv.FormatUint(uint64(msg), 10) + " deleted")
	return nil
}

// noop answers NOOP.
func (s *Session) noop() error { return nil }

// rset answers RSET: every mark is taken back.
func (s *Session) rset() error {
	clear(s.deleted)
	s.okTotals()
	return nil
}

// stls answers STLS: the runtime has a TLS configuration (SetTLS), or
// there is nothing to start.
func (s *Session) stls() error {
	if !s.offerTLS {
		return errNoTLS
	}
	s.w.OK("Begin TLS negotiation now")
	return nil
}

// CapaHandler is implemented by a Handler that adds to CAPA what only
// the server knows (Implementation, Expire, LoginDelay, lines of its
// own); the core has filled in the rest for the current state.
type CapaHandler interface {
	Capa(info *CapaInfo)
}

// capa answers CAPA from the session's state, its variations (in which
// the commands the Handler does not serve are off) and what the Handler
// adds.
func (s *Session) capa() error {
	info := s.CapaInfo()
	if h, ok := s.h.(CapaHandler); ok {
		h.Capa(&info)
	}
	s.writeCapa(&info)
	return nil
}

// quit answers QUIT where it does not enter UPDATE: nothing to remove.
func (s *Session) quit() error {
	s.w.OK("signing off")
	return nil
}

// update is the UPDATE state: the marked messages, and only they, are
// removed (RFC 1939 §6); if some could not be, -ERR says so
// (MS-STANXPOP3 V0006).
func (s *Session) update() error {
	var idx []int
	for i, del := range s.deleted {
		if del {
			idx = append(idx, i)
		}
	}
	var err error
	if len(idx) > 0 {
		err = s.md.Remove(idx)
	}
	// Release the maildrop (its lock) before the reply goes out: a client
	// that reconnects as soon as it reads +OK must find it free.
	if cerr := s.Close(); cerr != nil {
		s.logBackend("Maildrop.Close", cerr)
	}
	if err != nil {
		if _, ok := err.(*Error); ok {
			return err
		}
		s.logBackend("messages marked deleted were not removed", err)
		return errNotRemoved
	}
	s.stats.Deleted = len(idx)
	s.w.OK("signing off (" + strconv.Itoa(len(idx)) + messages(len(idx)) + " removed)")
	return nil
}

// copyBlock is how much of a message RETR reads at once: large enough
// that a megabyte costs sixteen system calls each way, small enough that
// ten thousand sessions sending at once to slow readers hold 2 GiB (the
// block and its converted copy, borrowed only while it sends).
const copyBlock = 64 << 10

// copyBufs holds the blocks copyMessage reads messages into, and the
// buffers it converts them into (a block's CRLF form, stuffed, at most
// twice its size and a line end): a RETR borrows them for its duration.
var (
	copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBlock); return &b }}
	wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*copyBlock+3); return &b }}
)

// copyMessage streams r to d, a block at a time: each block is converted
// (CRLF, dot-stuffing) into one pooled buffer and written in one call, so
// a message costs a write per block rather than per line. No message is
// ever held whole in memory.
func copyMessage(d *DotWriter, r io.Reader) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	in := *bp
	for {
		n, err := r.Read(in)
		if n > 0 {
			if _, err := d.Write(in[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// topReaders holds the buffered readers copyTop reads headers with.
var topReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16*1024) }}

// copyTop copies from r to w the header of a message, the blank line
// after it and the first lines lines of its body (RFC 1939 §7 TOP; a
// count beyond the body copies the whole message). w is normally the
// DotWriter of the reply; copyTop also serves to measure what TOP sends.
func copyTop(w io.Writer, r io.Reader, lines uint32) error {
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
