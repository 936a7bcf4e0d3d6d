package pop3

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client is a POP3 client connection built on ReplyReader: one command at
// a time, in the order of RFC 1939. It is small on purpose, for tools,
// tests and proxies; it is not safe for concurrent use.
//
// A command that gets "-ERR" returns an *Error with the server's code and
// text (use errors.As, or Reply.HasCode on the Reply that Cmd returns).
// Transport and protocol errors are returned as they are; after one the
// connection is in an unknown state and should be closed.
type Client struct {
	conn      net.Conn
	rr        *ReplyReader
	out       []byte // the command being sent, reused
	body      *DotReader
	greeting  string
	timestamp string
}

// Dial connects to a POP3 server at addr ("host:port") and reads its
// greeting.
func Dial(addr string) (*Client, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return newClientClosing(conn)
}

// DialTLS connects to a POP3 server on an implicit-TLS port (RFC 8314 §3)
// and reads its greeting.
func DialTLS(addr string, config *tls.Config) (*Client, error) {
	conn, err := tls.Dial("tcp", addr, config)
	if err != nil {
		return nil, err
	}
	return newClientClosing(conn)
}

func newClientClosing(conn net.Conn) (*Client, error) {
	c, err := NewClient(conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

// NewClient returns a Client on conn after reading the greeting, which
// must be "+OK". The caller keeps conn's deadlines in hand.
func NewClient(conn net.Conn) (*Client, error) {
	c := &Client{conn: conn, rr: NewReplyReader(conn)}
	r, err := c.rr.ReadReply()
	if err != nil {
		return nil, err
	}
	if r.Status != StatusOK {
		if err := r.Err(); err != nil {
			return nil, err
		}
		return nil, protocolError("greeting is not +OK", r.Text)
	}
	c.greeting = string(r.Text)
	c.timestamp = string(timestamp(r.Text))
	return c, nil
}

// Greeting returns the text of the server's "+OK" greeting.
func (c *Client) Greeting() string { return c.greeting }

// Timestamp returns the APOP timestamp of the greeting with its brackets,
// or "" when the server sent none (and so does not offer APOP).
func (c *Client) Timestamp() string { return c.timestamp }

// Conn returns the connection, which is the TLS connection after STLS.
func (c *Client) Conn() net.Conn { return c.conn }

// Reader returns the ReplyReader, for commands that Client does not wrap:
// send one with Cmd and read its listing or data from here.
func (c *Client) Reader() *ReplyReader { return c.rr }

// Close closes the connection without QUIT: no message is removed.
func (c *Client) Close() error { return c.conn.Close() }

// Cmd sends line (without CRLF) and reads the status line. It first reads
// and drops what is left of a body returned earlier. The Reply is valid
// until the next call; a "-ERR" reply is returned together with its
// error. A continuation ("+ ") comes back with a nil error: answer it
// with Cmd. A line holding CR or LF is refused, so that an argument
// cannot smuggle a second command.
func (c *Client) Cmd(line string) (Reply, error) {
	if strings.ContainsAny(line, "\r\n") {
		return Reply{}, errors.New("pop3: command line holds CR or LF")
	}
	if c.body != nil {
		err := c.body.Close()
		c.body = nil
		if err != nil {
			return Reply{}, err
		}
	}
	c.out = append(append(c.out[:0], line...), '\r', '\n')
	if _, err := c.conn.Write(c.out); err != nil {
		return Reply{}, err
	}
	r, err := c.rr.ReadReply()
	if err != nil {
		return r, err
	}
	return r, r.Err()
}

// cmdOK runs a command that must get "+OK".
func (c *Client) cmdOK(line string) (Reply, error) {
	r, err := c.Cmd(line)
	if err == nil && r.Status != StatusOK {
		err = protocolError("expected +OK to "+keyword(line), r.Text)
	}
	return r, err
}

func keyword(line string) string {
	k, _, _ := strings.Cut(line, " ")
	return k
}

// Lines reads the lines of a multi-line listing after its "+OK", copied.
func (c *Client) Lines() ([]string, error) {
	var out []string
	for {
		l, err := c.rr.ReadListLine()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(l))
	}
}

// User sends USER name.
func (c *Client) User(name string) error {
	_, err := c.cmdOK("USER " + name)
	return err
}

// Pass sends PASS password.
func (c *Client) Pass(password string) error {
	_, err := c.cmdOK("PASS " + password)
	return err
}

// APOP logs in with the MD5 digest of the greeting's timestamp and secret
// (RFC 1939 §7).
func (c *Client) APOP(name, secret string) error {
	if c.timestamp == "" {
		return errors.New("pop3: the greeting has no APOP timestamp")
	}
	sum := md5.Sum([]byte(c.timestamp + secret))
	_, err := c.cmdOK("APOP " + name + " " + hex.EncodeToString(sum[:]))
	return err
}

// Auth runs a SASL exchange (RFC 5034 §4). initial is the initial
// response (nil for none, empty for "="). next answers each challenge,
// given decoded; when it fails, Auth cancels the exchange with "*" and
// returns next's error. A nil next suits mechanisms that need no
// challenge (PLAIN with an initial response): a challenge then cancels.
func (c *Client) Auth(mechanism string, initial []byte, next func(challenge []byte) ([]byte, error)) error {
	line := "AUTH " + mechanism
	switch {
	case initial == nil:
	case len(initial) == 0:
		line += " ="
	default:
		line += " " + base64.StdEncoding.EncodeToString(initial)
	}
	r, err := c.Cmd(line)
	for err == nil && r.Status == StatusContinue {
		challenge, derr := base64.StdEncoding.DecodeString(string(r.Text))
		if derr != nil {
			_, _ = c.Cmd("*")
			return protocolError("SASL challenge is not base64", r.Text)
		}
		if next == nil {
			_, _ = c.Cmd("*")
			return protocolError("unexpected SASL challenge", r.Text)
		}
		resp, nerr := next(challenge)
		if nerr != nil {
			_, _ = c.Cmd("*")
			return nerr
		}
		r, err = c.Cmd(base64.StdEncoding.EncodeToString(resp))
	}
	return err
}

// Capabilities is a CAPA reply, in the server's order.
type Capabilities []Capability

// Capability is one CAPA line as strings: "SASL PLAIN LOGIN" has Name
// "SASL" and Args ["PLAIN", "LOGIN"].
type Capability struct {
	Name string
	Args []string
}

// Get returns the capability called name (case-insensitively).
func (cs Capabilities) Get(name string) (Capability, bool) {
	for _, c := range cs {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Capability{}, false
}

// Has reports whether the server announced name.
func (cs Capabilities) Has(name string) bool {
	_, ok := cs.Get(name)
	return ok
}

// SASL returns the SASL mechanisms announced.
func (cs Capabilities) SASL() []string {
	c, _ := cs.Get("SASL")
	return c.Args
}

// LoginDelay returns LOGIN-DELAY's minimum seconds between logins
// (RFC 2449 §6.5).
func (cs Capabilities) LoginDelay() (time.Duration, bool) {
	c, ok := cs.Get("LOGIN-DELAY")
	if !ok || len(c.Args) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(c.Args[0])
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// Expire returns EXPIRE's retention in days (RFC 2449 §6.7); never is true
// for "EXPIRE NEVER".
func (cs Capabilities) Expire() (days int, never, ok bool) {
	c, ok := cs.Get("EXPIRE")
	if !ok || len(c.Args) == 0 {
		return 0, false, false
	}
	if strings.EqualFold(c.Args[0], "NEVER") {
		return 0, true, true
	}
	n, err := strconv.Atoi(c.Args[0])
	if err != nil || n < 0 {
		return 0, false, false
	}
	return n, false, true
}

// Implementation returns the IMPLEMENTATION text (RFC 2449 §6.9).
func (cs Capabilities) Implementation() string {
	c, _ := cs.Get("IMPLEMENTATION")
	return strings.Join(c.Args, " ")
}

// Capa sends CAPA and returns the capabilities.
func (c *Client) Capa() (Capabilities, error) {
	if _, err := c.cmdOK("CAPA"); err != nil {
		return nil, err
	}
	var cs Capabilities
	for {
		l, err := c.rr.ReadListLine()
		if err == io.EOF {
			return cs, nil
		}
		if err != nil {
			return cs, err
		}
		cl := parseCapaLine(l)
		if cl.Name == nil {
			continue
		}
		cp := Capability{Name: string(cl.Name)}
		for rest := cl.Args; ; {
			var w []byte
			if w, rest = nextWord(rest); w == nil {
				break
			}
			cp.Args = append(cp.Args, string(w))
		}
		cs = append(cs, cp)
	}
}

// STLS upgrades the connection to TLS (RFC 2595 §4). Octets that arrived
// after the "+OK" and before the handshake are an injection attempt, and
// fail the upgrade.
func (c *Client) STLS(ctx context.Context, config *tls.Config) error {
	if _, err := c.cmdOK("STLS"); err != nil {
		return err
	}
	if n := c.rr.Buffered(); n > 0 {
		return &ProtocolError{Reason: strconv.Itoa(n) + " octets after +OK to STLS, before TLS"}
	}
	tc := tls.Client(c.conn, config)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.conn = tc
	c.rr.Reset(tc)
	return nil
}

// Stat returns the number of messages and the size of the maildrop.
func (c *Client) Stat() (count int, octets int64, err error) {
	r, err := c.cmdOK("STAT")
	if err != nil {
		return 0, 0, err
	}
	n, size, ok := twoNumbers(r.Text)
	if !ok {
		return 0, 0, protocolError("bad STAT reply", r.Text)
	}
	return int(n), size, nil
}

// ListEntry is a scan listing: a message number and its size in octets.
type ListEntry struct {
	Msg    uint32
	Octets int64
}

// UIDEntry is a unique-id listing: a message number and its unique-id.
type UIDEntry struct {
	Msg uint32
	UID string
}

// List returns the scan listing of every message.
func (c *Client) List() ([]ListEntry, error) {
	return listing(c, "LIST", "bad scan listing", func(l []byte) (ListEntry, bool) {
		n, size, ok := twoNumbers(l)
		return ListEntry{Msg: n, Octets: size}, ok
	})
}

// listing sends cmd and reads its multi-line listing, one entry a line.
func listing[T any](c *Client, cmd, bad string, parse func([]byte) (T, bool)) ([]T, error) {
	if _, err := c.cmdOK(cmd); err != nil {
		return nil, err
	}
	var out []T
	for {
		l, err := c.rr.ReadListLine()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		e, ok := parse(l)
		if !ok {
			return out, protocolError(bad, l)
		}
		out = append(out, e)
	}
}

// ListMsg returns the scan listing of message msg.
func (c *Client) ListMsg(msg uint32) (ListEntry, error) {
	r, err := c.cmdOK("LIST " + strconv.FormatUint(uint64(msg), 10))
	if err != nil {
		return ListEntry{}, err
	}
	n, size, ok := twoNumbers(r.Text)
	if !ok {
		return ListEntry{}, protocolError("bad scan listing", r.Text)
	}
	return ListEntry{Msg: n, Octets: size}, nil
}

// UIDL returns the unique-id listing of every message.
func (c *Client) UIDL() ([]UIDEntry, error) {
	return listing(c, "UIDL", "bad unique-id listing", uidEntry)
}

// UIDLMsg returns the unique-id of message msg.
func (c *Client) UIDLMsg(msg uint32) (UIDEntry, error) {
	r, err := c.cmdOK("UIDL " + strconv.FormatUint(uint64(msg), 10))
	if err != nil {
		return UIDEntry{}, err
	}
	e, ok := uidEntry(r.Text)
	if !ok {
		return UIDEntry{}, protocolError("bad unique-id listing", r.Text)
	}
	return e, nil
}

func uidEntry(l []byte) (UIDEntry, bool) {
	num, uid := nextWord(l)
	n, ok := number(num)
	if !ok || n > 1<<32-1 || !validUID(uid) {
		return UIDEntry{}, false
	}
	return UIDEntry{Msg: uint32(n), UID: string(uid)}, true
}

// Retr sends RETR msg and returns the message's data, dot-unstuffed with
// CRLF line ends. The reader is valid until the next command, which drops
// what was not read.
func (c *Client) Retr(msg uint32) (io.Reader, error) {
	return c.body1("RETR " + strconv.FormatUint(uint64(msg), 10))
}

// Top sends TOP msg lines and returns the header and the first lines of
// the body, as Retr does.
func (c *Client) Top(msg, lines uint32) (io.Reader, error) {
	return c.body1("TOP " + strconv.FormatUint(uint64(msg), 10) + " " + strconv.FormatUint(uint64(lines), 10))
}

func (c *Client) body1(line string) (io.Reader, error) {
	if _, err := c.cmdOK(line); err != nil {
		return nil, err
	}
	c.body = c.rr.Body(0)
	return c.body, nil
}

// Dele marks message msg deleted.
func (c *Client) Dele(msg uint32) error {
	_, err := c.cmdOK("DELE " + strconv.FormatUint(uint64(msg), 10))
	return err
}

// Noop sends NOOP.
func (c *Client) Noop() error {
	_, err := c.cmdOK("NOOP")
	return err
}

// Rset unmarks the messages marked deleted.
func (c *Client) Rset() error {
	_, err := c.cmdOK("RSET")
	return err
}

// Quit sends QUIT, which removes the marked messages when the session is
// in TRANSACTION, and closes the connection.
func (c *Client) Quit() error {
	_, err := c.cmdOK("QUIT")
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// validUID checks a unique-id as RFC 1939 §7 defines it: 1 to
// MaxUIDOctets octets from 0x21 to 0x7E.
func validUID(uid []byte) bool {
	if len(uid) == 0 || len(uid) > MaxUIDOctets {
		return false
	}
	for _, c := range uid {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// twoNumbers reads "n size" (a STAT or scan listing), ignoring anything
// after the size, as RFC 1939 §5 allows.
func twoNumbers(b []byte) (uint32, int64, bool) {
	a, rest := nextWord(b)
	s, _ := nextWord(rest)
	n, ok1 := number(a)
	size, ok2 := number(s)
	if !ok1 || !ok2 || n > 1<<32-1 {
		return 0, 0, false
	}
	return uint32(n), size, true
}

// number reads a non-negative decimal of at most 18 digits.
func number(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
