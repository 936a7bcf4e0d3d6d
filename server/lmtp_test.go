package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pop3kit/pop3kit/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
				assert.Equal(t, fmt.Sprintf("+OK 1 %d", len(lmtpMsg)), pc.cmd("LIST 1"))
				assert.Equal(t, fmt.Sprintf("+OK %d octets", len(lmtpMsg)), pc.cmd("RETR 1"))
				got := strings.Join(pc.multi(), "\r\n") + "\r\n"
				assert.Equal(t, lmtpMsg, got, "RETR returns what LMTP delivered")
				pc.cmd("QUIT")
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
	assert.Equal(t, "+OK 0 0", pc.cmd("STAT"))
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
			assert.Equal(t, want, pc.cmd("STAT"))
			res := e.lmtpSend(c, lmtpMsg, "alice@x")
			assert.Equal(t, map[string]*smtp.SMTPError{"alice@x": nil}, res.data, "delivery does not wait for the session")
			assert.Equal(t, want, pc.cmd("STAT"), "not in the open session")
			assert.Equal(t, "+OK 1 1", pc.cmd("UIDL 1"))
			assert.True(t, strings.HasPrefix(pc.cmd("QUIT"), "+OK"))
			pc = e.login("alice", "secret")
			assert.Equal(t, fmt.Sprintf("+OK 2 %d", 2*len(lmtpMsg)), pc.cmd("STAT"), "in the next one")
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
