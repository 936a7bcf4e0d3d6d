package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// withLMTP is a newEnv option: an LMTP listener on loopback, and opts'
// further settings.
func withLMTP(opts ...func(*server.Config)) func(*server.Config) {
	return func(c *server.Config) {
		c.LMTP = "127.0.0.1:0"
		for _, o := range opts {
			o(c)
		}
	}
}

// lmtpMsg has a line that starts with a dot (the client stuffs it, the
// server must unstuff it), an empty line, and a line of one dot.
const lmtpMsg = "From: mta@example.org\r\nTo: alice@example.org\r\nSubject: via LMTP\r\n\r\n.a line with a dot\r\n.\r\nlast line\r\n"

// lmtpDial connects to the env's LMTP listener and says LHLO.
func (e *env) lmtpDial() *smtp.Client {
	e.t.Helper()
	addr := e.srv.LMTPAddr()
	require.NotNil(e.t, addr, "the env has no LMTP listener")
	conn, err := net.Dial(addr.Network(), addr.String())
	require.NoError(e.t, err)
	c := smtp.NewClientLMTP(conn)
	require.NoError(e.t, c.Hello("mta.test"))
	e.t.Cleanup(func() { c.Close() })
	return c
}

// lmtpResult is what one transaction got: the RCPT error of each address
// (nil when accepted) and the reply after DATA of each accepted one.
type lmtpResult struct {
	rcpt map[string]error
	data map[string]*smtp.SMTPError // nil: 250
}

// lmtpSend sends body from mta@example.org to rcpts in one transaction.
func (e *env) lmtpSend(c *smtp.Client, body string, rcpts ...string) lmtpResult {
	e.t.Helper()
	res := lmtpResult{rcpt: map[string]error{}, data: map[string]*smtp.SMTPError{}}
	require.NoError(e.t, c.Mail("mta@example.org", nil))
	accepted := 0
	for _, r := range rcpts {
		res.rcpt[r] = c.Rcpt(r, nil)
		if res.rcpt[r] == nil {
			accepted++
		}
	}
	if accepted == 0 {
		require.NoError(e.t, c.Reset())
		return res
	}
	w, err := c.Data()
	require.NoError(e.t, err)
	_, err = w.Write([]byte(body))
	require.NoError(e.t, err)
	resp, err := w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	if err != nil {
		require.True(e.t, errors.As(err, &lerr), "DATA: %v", err)
	}
	for r := range resp {
		res.data[r] = nil
	}
	for r, se := range lerr {
		res.data[r] = se
	}
	return res
}

// maildirFiles lists user's files in sub (tmp, new, cur).
func (e *env) maildirFiles(user, sub string) []string {
	ents, _ := os.ReadDir(filepath.Join(e.root, user, sub))
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

// TestLMTPDeliver: one transaction to a known user, an unknown one and a
// second known one written in capitals: the unknown one is refused at
// RCPT (550 5.1.1), each known one gets its own 250 after DATA, and POP3
// returns the message byte for byte with the LIST size of its CRLF form.
func TestLMTPDeliver(t *testing.T) {
	for _, p := range []string{"rfc1939", "exchange2010"} {
		t.Run(p, func(t *testing.T) {
			e := newEnv(t, p, withLMTP())
			c := e.lmtpDial()
			rcpts := []string{"alice@example.org", "nobody@example.org", "bob+lists@example.org"}
			if p == "exchange2010" { // UserNameCase=lower: as logins fold
				rcpts[2] = "Bob+lists@Example.ORG"
			}
			res := e.lmtpSend(c, lmtpMsg, rcpts...)
			assert.NoError(t, res.rcpt[rcpts[0]])
			var se *smtp.SMTPError
			require.ErrorAs(t, res.rcpt["nobody@example.org"], &se)
			assert.Equal(t, 550, se.Code)
			assert.Equal(t, smtp.EnhancedCode{5, 1, 1}, se.EnhancedCode)
			assert.NoError(t, res.rcpt[rcpts[2]])
			assert.Equal(t, map[string]*smtp.SMTPError{rcpts[0]: nil, rcpts[2]: nil}, res.data)

			for _, u := range []struct{ name, pass string }{{"alice", "secret"}, {"bob", "hunter2"}} {
				assert.Empty(t, e.maildirFiles(u.name, "tmp"))
				news := e.maildirFiles(u.name, "new")
				require.Len(t, news, 1)
				assert.Contains(t, news[0], fmt.Sprintf(",S=%d,W=%d", len(lmtpMsg), len(lmtpMsg)))
				pc := e.login(u.name, u.pass)
				assert.Equal(t, fmt.Sprintf("+OK 1 %d", len(lmtpMsg)), pc.Cmd("LIST 1"))
				assert.Equal(t, fmt.Sprintf("+OK %d octets", len(lmtpMsg)), pc.Cmd("RETR 1"))
				got := strings.Join(pc.Multi(), "\r\n") + "\r\n"
				assert.Equal(t, lmtpMsg, got, "RETR returns what LMTP delivered")
				pc.Cmd("QUIT")
			}
			assert.NoDirExists(t, filepath.Join(e.root, "nobody"))

			// An MTA's idle connection does not hold up a shutdown.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			require.NoError(t, e.srv.Shutdown(ctx))
			assert.Less(t, time.Since(start), 2*time.Second)
		})
	}
}

// TestLMTPNewUser: a known user without a Maildir gets one (0700), and a
// user's name that is a whole address wins over its local part.
func TestLMTPNewUser(t *testing.T) {
	e := newEnv(t, "rfc1939", withLMTP())
	res := e.lmtpSend(e.lmtpDial(), lmtpMsg, "erin@example.org")
	assert.Equal(t, map[string]*smtp.SMTPError{"erin@example.org": nil}, res.data)
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		fi, err := os.Stat(filepath.Join(e.root, "erin", sub))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), sub)
	}
	assert.Len(t, e.maildirFiles("erin", "new"), 1)
}

// TestLMTPSizeLimit: a message of max_message_size octets is delivered;
// one octet more is refused 552 5.3.4 and leaves nothing in tmp/ or new/,
// for one recipient (written straight into tmp/) and for two (spooled); a
// SIZE= over the limit is refused at MAIL; the connection goes on.
func TestLMTPSizeLimit(t *testing.T) {
	const max = 2000
	e := newEnv(t, "rfc1939", withLMTP(func(c *server.Config) { c.MaxMessageSize = max }))
	body := func(n int) string {
		line := strings.Repeat("x", 98) + "\r\n"
		s := strings.Repeat(line, n/len(line)+1)
		return s[len(s)-n:]
	}
	c := e.lmtpDial()
	for _, rcpts := range [][]string{{"alice@x"}, {"alice@x", "bob@x"}} {
		res := e.lmtpSend(c, body(max+1), rcpts...)
		for _, r := range rcpts {
			require.NotNil(t, res.data[r], r)
			assert.Equal(t, 552, res.data[r].Code)
			assert.Equal(t, smtp.EnhancedCode{5, 3, 4}, res.data[r].EnhancedCode)
			assert.Contains(t, res.data[r].Message, "2000 octets")
		}
		for _, u := range []string{"alice", "bob"} {
			assert.Empty(t, e.maildirFiles(u, "tmp"), u)
			assert.Empty(t, e.maildirFiles(u, "new"), u)
		}
	}
	res := e.lmtpSend(c, body(max), "alice@x")
	assert.Equal(t, map[string]*smtp.SMTPError{"alice@x": nil}, res.data, "exactly the limit is delivered")
	err := c.Mail("mta@example.org", &smtp.MailOptions{Size: max + 1})
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 552, se.Code)
	require.NoError(t, c.Noop(), "the connection goes on")
}

// TestLMTPLongLine: a line over the limit is refused with its own reply,
// not delivered, and nothing is left.
func TestLMTPLongLine(t *testing.T) {
	e := newEnv(t, "rfc1939", withLMTP())
	res := e.lmtpSend(e.lmtpDial(), "Subject: x\r\n\r\n"+strings.Repeat("y", 3000)+"\r\n", "alice@x")
	require.NotNil(t, res.data["alice@x"])
	assert.Equal(t, 500, res.data["alice@x"].Code)
	assert.Empty(t, e.maildirFiles("alice", "tmp"))
	assert.Empty(t, e.maildirFiles("alice", "new"))
}

// TestLMTPLongAddress: go-smtp puts a recipient's address in each of its
// replies, so an address longer than RFC 5321's 254 octets is refused at
// RCPT (501 5.1.3) with a reply that does not repeat it; one of 254 is
// taken and its replies stay within 512 octets. Before, an unknown
// address of 600 octets got a 550 line of 640 (the fuzzer's find).
func TestLMTPLongAddress(t *testing.T) {
	e := newEnv(t, "rfc1939", withLMTP())
	conn, err := net.Dial("tcp", e.srv.LMTPAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	r := bufio.NewReader(conn)
	long := "alice+" + strings.Repeat("y", 600) + "@x"
	fits := "alice+" + strings.Repeat("y", 254-len("alice+@x")) + "@x"
	require.Len(t, fits, 254)
	_, err = fmt.Fprintf(conn, "LHLO mta\r\nMAIL FROM:<a@x>\r\nRCPT TO:<%s>\r\nRCPT TO:<nobody%s@x>\r\nRCPT TO:<%s>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
		long, strings.Repeat("z", 600), fits)
	require.NoError(t, err)
	var replies []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		assert.LessOrEqual(t, len(line), 512, "%q", line)
		if !strings.HasPrefix(line, "250-") {
			replies = append(replies, strings.TrimSuffix(line, "\r\n"))
		}
	}
	require.Len(t, replies, 9, "%q", replies)
	assert.Equal(t, "501 5.1.3 The address is longer than 254 octets", replies[3])
	assert.Equal(t, "501 5.1.3 The address is longer than 254 octets", replies[4])
	assert.Equal(t, "250 2.0.0 <"+fits+"> Saved", replies[7])
	assert.Len(t, e.maildirFiles("alice", "new"), 1)
}

// TestLMTPDroppedInData: a connection that drops in the middle of DATA,
// once the delivery has begun writing tmp/, leaves nothing behind.
func TestLMTPDroppedInData(t *testing.T) {
	e := newEnv(t, "rfc1939", withLMTP())
	conn, err := net.Dial("tcp", e.srv.LMTPAddr().String())
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	expect := func(code string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(line, code), "want %s, got %q", code, line)
			if line[3] == ' ' {
				return
			}
		}
	}
	send := func(s string) {
		_, err := conn.Write([]byte(s))
		require.NoError(t, err)
	}
	expect("220")
	send("LHLO mta.test\r\n")
	expect("250")
	send("MAIL FROM:<mta@example.org>\r\n")
	expect("250")
	send("RCPT TO:<alice@example.org>\r\n")
	expect("250")
	send("DATA\r\n")
	expect("354")
	send("Subject: cut off\r\n\r\n" + strings.Repeat("some text\r\n", 10000))
	require.Eventually(t, func() bool { return len(e.maildirFiles("alice", "tmp")) == 1 },
		5*time.Second, 5*time.Millisecond, "the delivery writes tmp/")
	conn.Close()
	require.Eventually(t, func() bool { return len(e.maildirFiles("alice", "tmp")) == 0 },
		5*time.Second, 5*time.Millisecond, "the cut-off delivery removes its tmp/ file")
	assert.Empty(t, e.maildirFiles("alice", "new"))
	pc := e.login("alice", "secret")
	assert.Equal(t, "+OK 0 0", pc.Cmd("STAT"))
}

// TestLMTPDuringSession: a message delivered while a session is open is
// not in that session (its snapshot, or the locked maildrop's listing),
// and is in the next one.
func TestLMTPDuringSession(t *testing.T) {
	for _, p := range []string{"rfc1939", "exchange2010"} { // lock, snapshot
		t.Run(p, func(t *testing.T) {
			e := newEnv(t, p, withLMTP())
			c := e.lmtpDial()
			e.lmtpSend(c, lmtpMsg, "alice@x")
			pc := e.login("alice", "secret")
			want := fmt.Sprintf("+OK 1 %d", len(lmtpMsg))
			assert.Equal(t, want, pc.Cmd("STAT"))
			res := e.lmtpSend(c, lmtpMsg, "alice@x")
			assert.Equal(t, map[string]*smtp.SMTPError{"alice@x": nil}, res.data, "delivery does not wait for the session")
			assert.Equal(t, want, pc.Cmd("STAT"), "not in the open session")
			assert.Equal(t, "+OK 1 1", pc.Cmd("UIDL 1"))
			assert.True(t, strings.HasPrefix(pc.Cmd("QUIT"), "+OK"))
			pc = e.login("alice", "secret")
			assert.Equal(t, fmt.Sprintf("+OK 2 %d", 2*len(lmtpMsg)), pc.Cmd("STAT"), "in the next one")
		})
	}
}

// TestLMTPSymlinkedMaildir: a user directory that is a symbolic link to
// elsewhere is refused (451 4.3.0: the MTA keeps the message), nothing is
// written outside the mail root, and the other recipient of the same
// message gets it.
func TestLMTPSymlinkedMaildir(t *testing.T) {
	e := newEnv(t, "rfc1939", withLMTP())
	outside := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(outside, sub), 0o700))
	}
	require.NoError(t, os.Symlink(outside, filepath.Join(e.root, "alice")))
	c := e.lmtpDial()
	for _, rcpts := range [][]string{{"alice@x"}, {"alice@x", "bob@x"}} {
		res := e.lmtpSend(c, lmtpMsg, rcpts...)
		require.NotNil(t, res.data["alice@x"])
		assert.Equal(t, 451, res.data["alice@x"].Code)
		assert.Equal(t, smtp.EnhancedCode{4, 3, 0}, res.data["alice@x"].EnhancedCode)
		if len(rcpts) == 2 {
			assert.Nil(t, res.data["bob@x"], "bob's delivery is his own")
		}
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(outside, sub))
		require.NoError(t, err)
		assert.Empty(t, ents, "nothing written outside the mail root")
	}
	assert.Len(t, e.maildirFiles("bob", "new"), 1)
}

// TestLMTPUnixSocket: unix:/path listens on a socket that the MTA reaches
// by path; a stale socket file is replaced.
func TestLMTPUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	stale, err := net.Listen("unix", sock)
	require.NoError(t, err)
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	e := newEnv(t, "rfc1939", func(c *server.Config) { c.LMTP = "unix:" + sock })
	res := e.lmtpSend(e.lmtpDial(), lmtpMsg, "alice@x")
	assert.Equal(t, map[string]*smtp.SMTPError{"alice@x": nil}, res.data)
}

// TestLMTPConfig: Check refuses an address that cannot be listened on
// and a size limit out of range.
func TestLMTPConfig(t *testing.T) {
	for _, tc := range []struct {
		name, lmtp string
		max        server.Bytes
		err        string
	}{
		{name: "relative socket", lmtp: "unix:lmtp.sock", err: "unix:/absolute/path"},
		{name: "no port", lmtp: "127.0.0.1", err: "host:port"},
		{name: "negative size", lmtp: "127.0.0.1:24", max: -1, err: "max message size"},
		{name: "huge size", lmtp: "127.0.0.1:24", max: 2 << 30, err: "max message size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.Listen, cfg.MailRoot, cfg.Passwd = []string{"127.0.0.1:0"}, t.TempDir(), "passwd"
			cfg.LMTP, cfg.MaxMessageSize = tc.lmtp, tc.max
			err := cfg.Check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

// BenchmarkLMTPDeliver measures LMTP deliveries of a 4 kB message over
// one connection, against writing the same file into the Maildir directly
// (tmp/, rename into new/): without syncs, as a test harness does, and
// with the two syncs a durable delivery needs, as LMTP does.
func BenchmarkLMTPDeliver(b *testing.B) {
	line := strings.Repeat("x", 76) + "\r\n"
	body := "Subject: bench\r\n\r\n" + strings.Repeat(line, 4096/len(line))
	b.Run("lmtp", func(b *testing.B) {
		e := newEnv(b, "rfc1939", withLMTP())
		c := e.lmtpDial()
		// Correctness before the timer.
		require.Equal(b, map[string]*smtp.SMTPError{"alice@x": nil}, e.lmtpSend(c, body, "alice@x").data)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := c.SendMail("mta@example.org", []string{"alice@x"}, strings.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	})
	for _, durable := range []bool{false, true} {
		name := "baseline-write-rename"
		if durable {
			name = "baseline-write-fsync-rename"
		}
		b.Run(name, func(b *testing.B) {
			md := b.TempDir()
			for _, sub := range []string{"cur", "new", "tmp"} {
				require.NoError(b, os.Mkdir(filepath.Join(md, sub), 0o700))
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				name := fmt.Sprintf("%d.M%dP%d.bench", time.Now().Unix(), i, os.Getpid())
				tmp := filepath.Join(md, "tmp", name)
				if !durable {
					if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
						b.Fatal(err)
					}
				} else {
					f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := f.WriteString(body); err != nil {
						b.Fatal(err)
					}
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
				if err := os.Rename(tmp, filepath.Join(md, "new", name)); err != nil {
					b.Fatal(err)
				}
				if durable {
					d, err := os.Open(filepath.Join(md, "new"))
					if err != nil {
						b.Fatal(err)
					}
					_ = d.Sync()
					d.Close()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// TestLMTPLimits: the 101st connection is answered 421 4.3.2 and closed
// (a slot freed lets the next in), and the 101st recipient of a
// transaction 452 4.5.3 while the first 100 are delivered to.
func TestLMTPLimits(t *testing.T) {
	e := newEnv(t, "rfc1939", withLMTP())
	addr := e.srv.LMTPAddr().String()
	greeting := func(c net.Conn) string {
		t.Helper()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		line, err := bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
		return line
	}
	var conns []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.True(t, strings.HasPrefix(greeting(c), "220 "))
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	assert.Equal(t, "421 4.3.2 Too many connections, try again later\r\n", greeting(extra))
	extra.Close()
	conns[0].Close()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return strings.HasPrefix(greeting(c), "220 ")
	}, 5*time.Second, 20*time.Millisecond, "a freed slot lets the next connection in")
	for _, c := range conns[1:] {
		c.Close()
	}
	// The server frees the closed connections' slots as it notices them:
	// wait until a connection gets in before the recipients' test.
	var c *smtp.Client
	require.Eventually(t, func() bool {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		cl := smtp.NewClientLMTP(conn)
		if cl.Hello("mta.test") != nil {
			cl.Close()
			return false
		}
		c = cl
		return true
	}, 10*time.Second, 20*time.Millisecond, "the slots are freed")
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Mail("mta@example.org", nil))
	for i := range 100 {
		require.NoError(t, c.Rcpt(fmt.Sprintf("alice+%d@x", i), nil))
	}
	var se *smtp.SMTPError
	require.ErrorAs(t, c.Rcpt("bob@x", nil), &se)
	assert.Equal(t, 452, se.Code)
	w, err := c.Data()
	require.NoError(t, err)
	_, err = w.Write([]byte(lmtpMsg))
	require.NoError(t, err)
	resp, err := w.CloseWithLMTPResponse()
	require.NoError(t, err)
	assert.Len(t, resp, 100, "one reply per accepted recipient")
	assert.Len(t, e.maildirFiles("alice", "new"), 1, "one user, one delivery, however many addresses")
}

// postfixMaster is a master.cf with the services a private Postfix needs,
// none chrooted; %s is its SMTP listener.
const postfixMaster = `%s inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// TestLMTPPostfix: a real Postfix (Debian's package), run privately in a
// temporary directory, takes a message over SMTP for a known and an
// unknown local user and hands it to pop3d with its lmtp client as
// mailbox_transport: the known user's POP3 RETR returns the message (with
// the headers Postfix adds), and Postfix logs pop3d's per-recipient
// replies, 250 for the one and 550 5.1.1 (a bounce) for the other. It
// needs the postfix package and root (Postfix's master starts as root
// and runs as its postfix account); without them it is skipped.
func TestLMTPPostfix(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no real MTA")
	}
	if _, err := exec.LookPath("postfix"); err != nil {
		if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
			missing(t, "postfix is not installed (apt-get install postfix)")
			return
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil || os.Geteuid() != 0 {
		missing(t, "needs root and the postfix account")
		return
	}
	uid, _ := strconv.Atoi(pf.Uid)
	e := newEnv(t, "rfc1939", withLMTP())
	dir, err := os.MkdirTemp("", "pop3kit-postfix")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) // the postfix account works below it
	for _, sub := range []string{"etc", "queue", "data"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, sub), 0o755))
	}
	require.NoError(t, os.Chown(filepath.Join(dir, "data"), uid, -1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	smtpAddr := ln.Addr().String()
	ln.Close()
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
syslog_name = pop3kit-postfix
myhostname = mta.test
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
local_recipient_maps =
alias_maps =
alias_database =
smtputf8_enable = no
biff = no
mailbox_transport = lmtp:inet:%[2]s
`, dir, e.srv.LMTPAddr().String())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", "main.cf"), []byte(mainCF), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", "master.cf"), []byte(fmt.Sprintf(postfixMaster, smtpAddr)), 0o644))
	postfix := func(cmd string) error {
		out, err := exec.Command("postfix", "-c", filepath.Join(dir, "etc"), cmd).CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			return fmt.Errorf("postfix %s: %v\n%s\n%s", cmd, err, out, log)
		}
		return nil
	}
	require.NoError(t, postfix("start"))
	t.Cleanup(func() { _ = postfix("abort") })

	const body = "Subject: through Postfix\r\n\r\n.a line with a dot\r\nlast line\r\n"
	var c *smtp.Client
	require.Eventually(t, func() bool { c, err = smtp.Dial(smtpAddr); return err == nil }, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, c.Hello("client.test"))
	require.NoError(t, c.SendMail("sender@mta.test", []string{"alice@localhost", "nobody@localhost"}, strings.NewReader(body)))
	c.Quit()

	maillog := func() string { b, _ := os.ReadFile(filepath.Join(dir, "maillog")); return string(b) }
	require.Eventually(t, func() bool {
		return len(e.maildirFiles("alice", "new")) == 1 && strings.Contains(maillog(), "nobody@localhost")
	},
		30*time.Second, 100*time.Millisecond, "Postfix delivers through pop3d's LMTP\n%s", maillog())
	log := maillog()
	assert.Regexp(t, `to=<alice@localhost>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent \(250 2\.0\.0 <alice@localhost> Saved\)`, log)
	assert.Regexp(t, `to=<nobody@localhost>, .*status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 <nobody@localhost> No such user here`, log)

	pc := e.login("alice", "secret")
	r := pc.Cmd("RETR 1")
	require.True(t, strings.HasPrefix(r, "+OK"), r)
	got := strings.Join(pc.Multi(), "\r\n") + "\r\n"
	assert.Contains(t, got, "Received: from client.test")
	assert.True(t, strings.HasSuffix(got, "\r\n.a line with a dot\r\nlast line\r\n"), "the body arrives as sent:\n%s", got)
	assert.Empty(t, e.maildirFiles("alice", "tmp"))
}

// TestLMTPDeliveriesLoggedAndCounted: every LMTP delivery is logged, as
// Dovecot's "saved mail to INBOX" is (recipient, size, reply), and counted
// in the metrics; a refused one too; and a refused plaintext POP3 login is
// logged. Before, a successful delivery was logged at debug only and not
// counted, and a plaintext refusal not at all.
func TestLMTPDeliveriesLoggedAndCounted(t *testing.T) {
	e, logs := newLoggedEnv(t, "exchange2010", nil, withLMTP(func(c *server.Config) { c.TrustedNetworks = nil }))
	hs := httptest.NewServer(e.srv.MetricsHandler())
	defer hs.Close()
	res := e.lmtpSend(e.lmtpDial(), lmtpMsg, "alice@example.org", "bob@example.org")
	require.Equal(t, map[string]*smtp.SMTPError{"alice@example.org": nil, "bob@example.org": nil}, res.data)
	require.Eventually(t, func() bool { return strings.Count(logs.String(), `msg="saved mail"`) == 2 }, 5*time.Second, 20*time.Millisecond, logs.String())
	assert.Regexp(t, `msg="saved mail" proto=lmtp user=alice remote=127\.0\.0\.1:\d+ size=`+strconv.Itoa(len(lmtpMsg))+` reply=250`, logs.String())
	m := scrape(t, hs.URL)
	assert.Equal(t, 2.0, m[`pop3d_lmtp_deliveries_total{result="saved"}`])
	assert.Equal(t, float64(2*len(lmtpMsg)), m[`pop3d_lmtp_delivered_bytes_total`])

	c := e.dial()
	assert.Contains(t, c.Cmd("USER alice"), "-ERR [AUTH]")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "login refused: no plaintext login on this connection")
	},
		5*time.Second, 20*time.Millisecond, logs.String())
}
