// Package lmtp is pop3d's LMTP delivery (RFC 2033) into a store: an MTA
// hands mail to it as it does to dovecot-lmtp, recipients are looked up
// as logins look names up, each accepted recipient gets its own reply
// after DATA, and quotas are enforced where mail arrives, with a warning
// message at a threshold (MS-STANXPOP3 E0003, E0004). The protocol is
// go-smtp's.
//
// It imports the store interfaces and the accounts of the server, not the
// server: another server on the same store can deliver with it.
package lmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/store"
)

// An MTA (Postfix's lmtp transport, Exim's
// lmtp or smtp transport with protocol = lmtp) hands mail to pop3d as it
// does to dovecot-lmtp, and pop3d delivers it into the store. The
// protocol is go-smtp's: it is maintained, it has LMTP's server side with
// one reply per recipient (LMTPSession), it removes the dot-stuffing and
// keeps the line ends as sent, and it bounds recipients, line length and
// message size. pop3d adds the recipients' lookup, the delivery, the
// replies, the connection limit and the timeouts.
//
// Recipients are looked up at RCPT, so an unknown one is refused there
// (550 5.1.1) and the MTA bounces for it alone. After DATA every accepted
// recipient gets a reply of its own: 250 when the message is in its
// maildrop, 451 when its delivery failed for a reason that may pass (the
// MTA keeps the message and tries again), 5xx when the message itself was
// refused (too large, a line too long).

// The LMTP limits. Each is on by default; max_message_size is the only
// one a site is expected to change.
const (
	// DefaultMaxMessageSize: 64 MiB, above Postfix's default
	// message_size_limit (10 MB) and Exchange's (35 MB), far below what
	// would fill a disk by accident.
	DefaultMaxMessageSize = 64 << 20
	// lmtpMaxRecipients is what one transaction takes (RFC 5321 §4.5.3.1.8
	// asks for at least 100); an MTA sends the rest in another one.
	lmtpMaxRecipients = 100
	// lmtpMaxLine bounds a line, commands and message alike: RFC 5321's
	// 1,000 octets doubled (go-smtp's default). Postfix and Exim fold or
	// refuse longer message lines before they reach an LMTP server.
	lmtpMaxLine = 2000
	// lmtpTimeout is how long pop3d waits for a command, for the next
	// octets of a message and for the client to take a reply: RFC 5321
	// §4.5.3.2.7's five minutes. A delivering MTA is never that slow.
	lmtpTimeout = 5 * time.Minute
	// lmtpMaxConns bounds the LMTP connections at once. An MTA opens a
	// few (Postfix's default destination concurrency is 20); more are
	// answered 421 and the MTA tries again later.
	lmtpMaxConns = 100
	// lmtpSpoolMemory is the part of a message for several recipients
	// held in memory; the rest goes to an unlinked temporary file, so a
	// connection holds at most this much of a message in memory.
	lmtpSpoolMemory = 1 << 20
)

// Config says what a Server listens on and delivers to.
type Config struct {
	// Addr is host:port, or unix:/absolute/path for a socket (CheckAddr).
	Addr string
	// Domain is the name the server greets with.
	Domain string
	// MaxMessageSize bounds a message (552 5.3.4 beyond it); 0 is
	// DefaultMaxMessageSize.
	MaxMessageSize int64
	// Store takes the deliveries; Users says who the recipients are.
	Store store.Deliverer
	Users account.Authenticator
	// LowerCase looks recipients up with their ASCII letters lower-cased,
	// as logins are under UserNameCase=lower.
	LowerCase bool
	// Quota is every user's quota in octets where the account has none of
	// its own (0: none); QuotaWarning is the percentage of a quota at
	// which one warning message is delivered (0: none).
	Quota        int64
	QuotaWarning int
	// Delivered, when set, is told each delivery's reply code and octets
	// (metrics).
	Delivered func(code int, octets int64)
	// Log receives the deliveries and failures.
	Log *slog.Logger
}

// Server is an LMTP listener delivering into a store.
type Server struct {
	addr   string // Config.Addr: host:port or unix:/path
	srv    *smtp.Server
	log    *slog.Logger
	ctx    context.Context // ended when the server is closed for good
	cancel context.CancelFunc
	// stopping: Shutdown has begun; reads no longer push the deadline.
	stopping atomic.Bool

	mu sync.Mutex
	ln net.Listener
}

// New returns the Server cfg describes; Listen opens its listener.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Users == nil {
		return nil, errors.New("lmtp: a store that takes deliveries and a user list are needed")
	}
	max := cfg.MaxMessageSize
	if max <= 0 {
		max = DefaultMaxMessageSize
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l := &Server{addr: cfg.Addr, log: cfg.Log}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	be := &backend{cfg: cfg, max: max, log: l.log, ctx: l.ctx, stopping: &l.stopping}
	l.srv = smtp.NewServer(be)
	l.srv.LMTP = true
	l.srv.Domain = cfg.Domain
	l.srv.MaxRecipients = lmtpMaxRecipients
	l.srv.MaxLineLength = lmtpMaxLine
	// go-smtp's DATA reader refuses a message that reaches its limit
	// (one of exactly max octets too); lmtpInput enforces max exactly, for
	// DATA and BDAT alike, and Mail refuses a larger SIZE=.
	l.srv.MaxMessageBytes = max + 1
	l.srv.ReadTimeout, l.srv.WriteTimeout = lmtpTimeout, lmtpTimeout
	// The message is stored as it comes: UTF-8 in the envelope or the
	// header needs nothing of pop3d.
	l.srv.EnableSMTPUTF8 = true
	l.srv.ErrorLog = slogPrinter{l.log}
	return l, nil
}

// listen opens the listener: a TCP address, or unix:PATH for a socket
// that the MTA reaches by path. A socket file left by a pop3d that is
// gone is replaced; one that answers is not. The socket is mode 0666,
// Dovecot's default for its LMTP socket: who may connect is decided by
// the directory it is in (Postfix's private/, say).
func (l *Server) Listen() (net.Addr, error) {
	var ln net.Listener
	var err error
	if path, ok := strings.CutPrefix(l.addr, "unix:"); ok {
		if fi, serr := os.Lstat(path); serr == nil && fi.Mode().Type() == fs.ModeSocket {
			if c, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
				c.Close()
				return nil, fmt.Errorf("lmtp: %s is in use by another process", path)
			}
			_ = os.Remove(path)
		}
		if ln, err = net.Listen("unix", path); err == nil {
			if err = os.Chmod(path, 0o666); err != nil {
				ln.Close()
			}
		}
	} else {
		ln, err = net.Listen("tcp", l.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("lmtp: %w", err)
	}
	l.mu.Lock()
	l.ln = &limitListener{Listener: ln, slots: make(chan struct{}, lmtpMaxConns), conns: map[*slotConn]struct{}{}}
	l.mu.Unlock()
	return ln.Addr(), nil
}

// listener returns the open listener, or nil.
func (l *Server) listener() net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ln
}

// Serve serves the listener Listen opened until Shutdown.
func (l *Server) Serve() error {
	return l.srv.Serve(l.listener())
}

// Shutdown stops accepting, ends the connections that wait for a command
// (their next read times out; go-smtp answers 421), lets a message being
// read stop at its next read (it is not delivered: the MTA sends it again)
// and a delivery under way finish, and waits for them, or for ctx; then it
// closes what is left.
func (l *Server) Shutdown(ctx context.Context) error {
	l.stopping.Store(true)
	if ln := l.listener(); ln != nil {
		ln.Close() // Serve may not have started
		ln.(*limitListener).interrupt()
	}
	err := l.srv.Shutdown(ctx)
	l.cancel()
	// The listener closed above, or a shutdown before, is no failure.
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	_ = l.srv.Close()
	return err
}

// Addr returns the listener's address, or nil before Listen.
func (l *Server) Addr() net.Addr {
	if ln := l.listener(); ln != nil {
		return ln.Addr()
	}
	return nil
}

// limitListener answers a connection beyond its slots 421 and closes it,
// and knows the connections it let in.
type limitListener struct {
	net.Listener
	slots chan struct{}
	mu    sync.Mutex
	conns map[*slotConn]struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			sc := &slotConn{Conn: c, l: l}
			l.mu.Lock()
			l.conns[sc] = struct{}{}
			l.mu.Unlock()
			return sc, nil
		default:
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(c, "421 4.3.2 Too many connections, try again later\r\n")
				c.Close()
			}()
		}
	}
}

// interrupt makes every connection's read under way, or next, time out.
func (l *limitListener) interrupt() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		_ = c.SetReadDeadline(time.Now())
	}
}

// slotConn gives its slot back when it is closed (once), and bounds the
// reply lines written on it (Write).
type slotConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
	// col is the octets of the reply line being written, without its
	// CRLF; cr, that the last octet written was a CR, held back.
	col int
	cr  bool
	out []byte
}

// maxReplyText is the text of a reply line: RFC 5321 §4.5.3.1.5's 512
// octets less the CRLF.
const maxReplyText = 510

// Write passes go-smtp's replies on with every line held to RFC 5321
// §4.5.3.1.5's 512 octets, CRLF included, and its text to printable
// US-ASCII (§4.2's textstring; other octets become "?"): go-smtp echoes
// LHLO's argument, up to a whole command line of any octets, in its
// greeting ("250-Hello <domain>"). A line's excess is dropped; a CR not
// before an LF is one more octet of text. The listener has no TLS, so the
// bytes written are the replies themselves.
func (c *slotConn) Write(p []byte) (int, error) {
	out := c.out[:0]
	text := func(b byte) {
		if c.col >= maxReplyText {
			return
		}
		if b < 0x20 && b != '\t' || b >= 0x7f {
			b = '?'
		}
		out = append(out, b)
		c.col++
	}
	for _, b := range p {
		if c.cr {
			c.cr = false
			if b == '\n' {
				out = append(out, '\r', '\n')
				c.col = 0
				continue
			}
			text('\r')
		}
		switch b {
		case '\r':
			c.cr = true
		case '\n':
			out = append(out, '\r', '\n') // a bare LF ends the line too
			c.col = 0
		default:
			text(b)
		}
	}
	c.out = out[:0]
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *slotConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return c.Conn.Close()
}

// slogPrinter is go-smtp's error log on pop3d's.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (p slogPrinter) Println(v ...any) { p.log.Warn(strings.TrimSpace(fmt.Sprintln(v...))) }

// backend is the go-smtp backend: one session per connection.
type backend struct {
	cfg Config
	max int64 // cfg.MaxMessageSize, or the default
	log *slog.Logger
	ctx context.Context
	// stopping is the server's: a read under it does not wait longer.
	stopping *atomic.Bool

	// quotaTurns serialize the deliveries to each user under a quota
	// (quota.go).
	quotaMu    sync.Mutex
	quotaTurns map[string]*quotaLock
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &lmtpSession{b: b, conn: c}, nil
}

// lmtpSession is one connection's transaction.
type lmtpSession struct {
	b     *backend
	conn  *smtp.Conn
	rcpts []lmtpRcpt // accepted, in RCPT order, repeats included
	size  int64      // MAIL's SIZE=, or -1
}

// lmtpRcpt is an accepted recipient: the address as go-smtp keys its
// status, and the user it delivers to.
type lmtpRcpt struct{ addr, user string }

var _ smtp.LMTPSession = (*lmtpSession)(nil)

func (s *lmtpSession) Reset()        { s.rcpts = s.rcpts[:0] }
func (s *lmtpSession) Logout() error { return nil }

func (s *lmtpSession) Mail(from string, opts *smtp.MailOptions) error {
	if opts != nil && opts.Size > s.b.max {
		return s.b.tooLarge()
	}
	s.size = -1
	if opts != nil && opts.Size > 0 {
		s.size = opts.Size
	}
	return nil
}

// lmtpMaxAddress is RFC 5321's longest forward-path (§4.5.3.1.3: 256
// octets) less its angle brackets. go-smtp puts the address in each of
// its recipient's replies, which must stay within 512 octets (§4.5.3.1.5).
const lmtpMaxAddress = 254

var lmtpAddressLong = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
	Message: fmt.Sprintf("The address is longer than %d octets", lmtpMaxAddress)}

func (s *lmtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if len(to) > lmtpMaxAddress {
		return lmtpAddressLong
	}
	user, err := s.b.resolve(to)
	if err != nil {
		return err
	}
	s.rcpts = append(s.rcpts, lmtpRcpt{addr: to, user: user})
	return nil
}

// Data is never called: go-smtp calls LMTPData in LMTP mode.
func (s *lmtpSession) Data(r io.Reader) error {
	return s.LMTPData(r, nil)
}

// LMTPData delivers the message to every accepted recipient and sets the
// status of each. One user's message is written straight from the
// connection into the store; for several it is read once (spooled) and
// delivered to each in turn, so that one user's failure is that user's
// alone.
func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	in := &lmtpInput{r: r, conn: s.conn.Conn(), left: s.b.max, stopping: s.b.stopping}
	var users []string
	for _, rc := range s.rcpts {
		if !contains(users, rc.user) {
			users = append(users, rc.user)
		}
	}
	replies := make(map[string]error, len(users))
	if len(users) == 1 {
		replies[users[0]] = s.deliver(users[0], in, in)
	} else {
		msg, err := spool(in)
		if err != nil {
			in.drain()
			rep := s.b.reply(in, err)
			s.b.log.Warn("message not read", "remote", s.conn.Conn().RemoteAddr().String(), "err", err,
				"reply", rep.(*smtp.SMTPError).Code)
			if msg != nil {
				msg.Close()
			}
			for _, u := range users {
				replies[u] = rep
			}
		} else {
			for _, u := range users {
				replies[u] = s.deliver(u, in, msg.reader())
			}
			msg.Close()
		}
	}
	if status == nil { // SMTP's single reply; not reached in LMTP mode
		for _, rep := range replies {
			if rep.(*smtp.SMTPError).Code/100 != 2 {
				return rep
			}
		}
		return nil
	}
	for _, rc := range s.rcpts {
		status.SetStatus(rc.addr, replies[rc.user])
	}
	return nil
}

// deliver delivers the message from r to user and returns the reply.
func (s *lmtpSession) deliver(user string, in *lmtpInput, r io.Reader) error {
	// Under a quota, one delivery to a user at a time: each is checked
	// against the usage the one before it left, so that concurrent
	// deliveries without SIZE= overshoot the quota by one message at most.
	unlock, err := s.b.quotaTurn(s.b.ctx, user)
	if err != nil {
		in.drain()
		return s.b.reply(in, err)
	}
	defer unlock()
	qc, err := s.b.checkQuota(s.b.ctx, user, s.size)
	if err == nil {
		err = s.b.cfg.Store.Deliver(s.b.ctx, user, r)
		if err == nil {
			// The message's octets: all the input read so far.
			s.b.afterDelivery(s.b.ctx, user, qc, s.b.max-in.left)
		}
	}
	// The replies follow the whole message, however early the delivery
	// stopped (a store that failed at once, an input refused).
	in.drain()
	rep := s.b.reply(in, err)
	code := rep.(*smtp.SMTPError).Code
	octets := s.b.max - in.left
	if err != nil {
		s.b.log.Warn("delivery failed", "user", user, "remote", s.conn.Conn().RemoteAddr().String(), "size", octets, "err", err,
			"reply", code)
	} else {
		// As Dovecot's LMTP logs each one: who, how big, the result.
		s.b.log.Info("saved mail", "user", user, "remote", s.conn.Conn().RemoteAddr().String(), "size", octets, "reply", code)
	}
	if s.b.cfg.Delivered != nil {
		s.b.cfg.Delivered(code, octets)
	}
	return rep
}

// The replies, in one place. go-smtp writes each recipient's as
// "CODE X.Y.Z <address> text".
var (
	lmtpSaved      = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Saved"}
	lmtpNoUser     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	lmtpUsersDown  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "The user list cannot be read now; try again later"}
	lmtpLineLong   = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: fmt.Sprintf("A line is longer than %d octets", lmtpMaxLine)}
	lmtpCutOff     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "The message was cut off; nothing was delivered"}
	lmtpTimedOut   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timed out reading the message; nothing was delivered"}
	lmtpNoSpace    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage; try again later"}
	lmtpQuota      = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox is over its quota; try again later"}
	lmtpOverQuota  = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox is full (over its quota)"}
	lmtpStopping   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "The server is shutting down; try again later"}
	lmtpNotDone    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot deliver now (see the server's log); try again later"}
	errTooLarge    = errors.New("message exceeds max_message_size")
	errSpoolFailed = errors.New("cannot hold the message for its recipients")
)

// tooLarge is 552 with the limit in the text.
func (b *backend) tooLarge() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: fmt.Sprintf("The message exceeds the limit of %d octets", b.max)}
}

// reply is the recipient's reply to a delivery that ended with err. The
// input's fault (in.err) comes first: whatever the store said then, it
// said it because the message could not be read.
func (b *backend) reply(in *lmtpInput, err error) error {
	if err == nil {
		return lmtpSaved
	}
	var ne net.Error
	switch {
	case errors.Is(in.err, errTooLarge), errors.Is(in.err, smtp.ErrDataTooLarge):
		return b.tooLarge()
	case errors.Is(in.err, smtp.ErrTooLongLine):
		return lmtpLineLong
	case errors.As(in.err, &ne) && ne.Timeout():
		return lmtpTimedOut
	case in.err != nil:
		return lmtpCutOff
	case errors.Is(err, syscall.ENOSPC):
		return lmtpNoSpace
	case errors.Is(err, syscall.EDQUOT):
		return lmtpQuota
	case errors.Is(err, errOverQuota):
		return lmtpOverQuota
	case b.ctx.Err() != nil:
		return lmtpStopping
	}
	return lmtpNotDone
}

// resolve returns the user an address delivers to: the whole address when
// the users have one by that name, else its local part, else the local
// part before a "+detail" (Dovecot's recipient_delimiter); each looked up
// as a login looks names up (UserNameCase). An unknown address is 550
// 5.1.1, a user list that cannot be read 451.
func (b *backend) resolve(addr string) (string, error) {
	local := addr
	var names []string
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local = addr[:i]
		names = append(names, addr)
	}
	names = append(names, local)
	if i := strings.IndexByte(local, '+'); i > 0 {
		names = append(names, local[:i])
	}
	for _, n := range names {
		if b.cfg.LowerCase {
			n = account.LowerASCII(n)
		}
		if account.CheckUserName(n) != nil {
			continue
		}
		_, ok, err := b.cfg.Users.Lookup(n)
		if err != nil {
			b.log.Error("recipient lookup failed", "addr", addr, "err", err)
			return "", lmtpUsersDown
		}
		if ok {
			return n, nil
		}
	}
	// The address in the text, as Dovecot gives it: the MTA's bounce
	// then names the recipient.
	return "", &smtp.SMTPError{Code: lmtpNoUser.Code, EnhancedCode: lmtpNoUser.EnhancedCode,
		Message: "<" + addr + "> " + lmtpNoUser.Message}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lmtpInput is the message as go-smtp reads it (dot-stuffing removed, line
// ends as sent). Each read pushes the connection's read deadline
// lmtpTimeout ahead (go-smtp sets it once per command line, which would
// bound a whole DATA); more than max octets is errTooLarge. err keeps the
// first error other than EOF, so that a failed delivery can tell the
// input's fault (too large, cut off, too slow) from the store's.
type lmtpInput struct {
	r        io.Reader
	conn     net.Conn
	left     int64
	err      error
	stopping *atomic.Bool
}

// extend pushes the read deadline ahead, unless the server is stopping.
func (in *lmtpInput) extend() {
	if !in.stopping.Load() {
		_ = in.conn.SetReadDeadline(time.Now().Add(lmtpTimeout))
	}
}

func (in *lmtpInput) Read(p []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	in.extend()
	n, err := in.r.Read(p)
	if int64(n) > in.left {
		in.left, in.err = 0, errTooLarge
		return 0, in.err
	}
	in.left -= int64(n)
	if err != nil && err != io.EOF {
		in.err = err
	}
	return n, err
}

// drain reads and discards the rest of a message that was refused, so
// that the replies follow the whole of it (DATA's final dot, BDAT's LAST).
// It stops at the first error: a connection that failed has nothing more.
func (in *lmtpInput) drain() {
	buf := make([]byte, 32<<10)
	for {
		in.extend()
		if _, err := in.r.Read(buf); err != nil {
			return
		}
	}
}

// spooled is a message read once for several recipients: its first
// lmtpSpoolMemory octets in memory, the rest in an unlinked temporary
// file.
type spooled struct {
	head []byte
	file *os.File
	size int64 // octets in file
}

// spool reads in to its end. On an error of in it returns in's error.
func spool(in *lmtpInput) (*spooled, error) {
	m := &spooled{}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(in, lmtpSpoolMemory))
	m.head = buf.Bytes()
	if err != nil {
		return m, err
	}
	if n < lmtpSpoolMemory {
		return m, nil
	}
	f, err := os.CreateTemp("", "pop3d-lmtp-")
	if err != nil {
		return m, fmt.Errorf("%w: %w", errSpoolFailed, err)
	}
	_ = os.Remove(f.Name()) // nothing is left behind, whatever happens
	m.file = f
	if m.size, err = io.Copy(f, in); err != nil {
		return m, err
	}
	return m, nil
}

// reader returns the whole message from its first octet.
func (m *spooled) reader() io.Reader {
	if m.file == nil {
		return bytes.NewReader(m.head)
	}
	return io.MultiReader(bytes.NewReader(m.head), io.NewSectionReader(m.file, 0, m.size))
}

func (m *spooled) Close() {
	if m.file != nil {
		m.file.Close()
	}
}

// CheckAddr checks a listening address as Listen takes it: host:port, or
// unix:/absolute/path.
func CheckAddr(addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("--lmtp %q: want unix:/absolute/path", addr)
		}
	} else if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("--lmtp %q: want host:port or unix:/path (%v)", addr, err)
	}
	return nil
}
