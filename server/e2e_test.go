package server_test

import (
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/store"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/maildir"
)

const (
	msg1 = "From: a@example.org\nSubject: one\n\nHello.\n"                       // 41 octets, 4 LF → 45 in CRLF form
	msg2 = "From: b@example.org\nSubject: two\n\n.dot line\n.\nline 2\nline 3\n" // 60 octets, 7 LF → 67
)

var allProfiles = []string{"rfc1939", "exchange2007", "exchange2010"}

// TestEveryCommandEveryProfile runs a full session with every command of
// RFC 1939 under every profile, over real TCP (C0006, RFC1939-5-STAT,
// RFC1939-5-LIST, RFC1939-5-RETR, RFC1939-5-DELE, RFC1939-5-NOOP,
// RFC1939-5-RSET, RFC1939-7-TOP, RFC1939-7-UIDL, RFC1939-6-UPDATE).
func TestEveryCommandEveryProfile(t *testing.T) {
	clause.Covers(t,
		"C0006", "RFC1939-5-DELE", "RFC1939-5-LIST", "RFC1939-5-NOOP", "RFC1939-5-RETR",
		"RFC1939-5-RSET", "RFC1939-5-STAT", "RFC1939-6-UPDATE", "RFC1939-7-TOP", "RFC1939-7-UIDL")
	for _, p := range allProfiles {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, p)
			e.deliver("alice", msg1, "")
			e.deliver("alice", msg2, "")
			c := e.login("alice", "secret")
			size1, size2 := "45", "67"
			if p != "rfc1939" { // storage sizes: the files hold LF
				size1, size2 = "41", "60"
			}
			total, _ := strconv.Atoi(size1)
			s2, _ := strconv.Atoi(size2)
			assert.Equal(t, fmt.Sprintf("+OK 2 %d", total+s2), c.Cmd("STAT"))
			assert.Equal(t, fmt.Sprintf("+OK 2 messages (%d octets)", total+s2), c.Cmd("LIST"))
			assert.Equal(t, []string{"1 " + size1, "2 " + size2}, c.Multi())
			assert.Equal(t, "+OK 2 "+size2, c.Cmd("LIST 2"))
			assert.Equal(t, "+OK 67 octets", c.Cmd("RETR 2"))
			assert.Equal(t, []string{"From: b@example.org", "Subject: two", "", ".dot line", ".", "line 2", "line 3"}, c.Multi())
			assert.Equal(t, "+OK 48 octets", c.Cmd("TOP 2 1"), "the octets TOP sends, not the message's 67")
			assert.Equal(t, []string{"From: b@example.org", "Subject: two", "", ".dot line"}, c.Multi())
			assert.Equal(t, "+OK unique-id listing follows", c.Cmd("UIDL"))
			assert.Equal(t, []string{"1 1", "2 2"}, c.Multi())
			assert.Equal(t, "+OK 2 2", c.Cmd("UIDL 2"))
			assert.Equal(t, "+OK message 1 deleted", c.Cmd("DELE 1"))
			assert.Equal(t, "-ERR message is marked deleted", c.Cmd("RETR 1"))
			assert.Equal(t, "-ERR no such message", c.Cmd("RETR 3"))
			assert.Equal(t, "+OK", c.Cmd("NOOP"))
			assert.Equal(t, fmt.Sprintf("+OK maildrop has 2 messages (%d octets)", total+s2), c.Cmd("RSET"))
			assert.Equal(t, "+OK message 2 deleted", c.Cmd("DELE 2"))
			assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
			assert.True(t, c.Closed())
			files := e.files("alice")
			require.Len(t, files, 1, "RFC1939-6-UPDATE: only the marked message is removed")
			assert.Contains(t, files[0], "cur/")
		})
	}
}

// TestMaildirNewToCur: messages in new/ move to cur/ with ":2," at login,
// and ,S= and ,W= in file names are used for the sizes (C0011).
func TestMaildirNewToCur(t *testing.T) {
	clause.Covers(t, "C0011")
	e := newEnv(t, "rfc1939")
	name := e.deliver("alice", msg1, ",S=41,W=999")
	c := e.login("alice", "secret")
	assert.Equal(t, []string{"cur/" + name + ":2,"}, e.files("alice"))
	assert.Equal(t, "+OK 1 999", c.Cmd("STAT"), "the ,W= field is the exact size")
	c.Cmd("QUIT")
	e2 := newEnv(t, "exchange2010")
	e2.deliver("alice", msg1, ",S=4000")
	c = e2.login("alice", "secret")
	assert.Equal(t, "+OK 1 4000", c.Cmd("STAT"), "the ,S= field is the storage size")
}

// TestDropWithoutQuitRemovesNothing: a session that ends any way but QUIT
// from TRANSACTION removes nothing (RFC1939-3-TIMER, V0006).
func TestDropWithoutQuitRemovesNothing(t *testing.T) {
	clause.Covers(t, "RFC1939-3-TIMER", "V0006")
	e := newEnv(t, "rfc1939")
	e.deliver("alice", msg1, "")
	e.deliver("alice", msg2, "")
	c := e.login("alice", "secret")
	c.Cmd("DELE 1")
	c.Cmd("DELE 2")
	_ = c.C.Close()
	// A second session can log in once the first is gone, and sees both.
	require.Eventually(t, func() bool {
		c2 := e.dial()
		c2.Cmd("USER alice")
		return strings.HasPrefix(c2.Cmd("PASS secret"), "+OK maildrop has 2 messages")
	}, 10*time.Second, 20*time.Millisecond)
	assert.Len(t, e.files("alice"), 2)
}

// TestShutdownRemovesNothing: a server shutdown ends sessions with
// [SYS/TEMP] and no message is removed.
func TestShutdownRemovesNothing(t *testing.T) {
	e := newEnv(t, "exchange2010")
	e.deliver("alice", msg1, "")
	c := e.login("alice", "secret")
	c.Cmd("DELE 1")
	go func() { _ = e.srv.Shutdown(t.Context()) }()
	assert.Equal(t, "-ERR [SYS/TEMP] server shutting down, nothing was removed", c.Line())
	assert.Len(t, e.files("alice"), 1)
}

// TestUIDsPersistAndNeverRepeat: C0007, C0008, C0009 — decimal, increasing,
// stable across sessions, never reused after deletion; identical copies
// get different ids.
func TestUIDsPersistAndNeverRepeat(t *testing.T) {
	clause.Covers(t, "C0007", "C0008", "C0009")
	e := newEnv(t, "exchange2010")
	e.deliver("alice", msg1, "")
	e.deliver("alice", msg1, "") // an identical copy
	c := e.login("alice", "secret")
	c.Cmd("UIDL")
	assert.Equal(t, []string{"1 1", "2 2"}, c.Multi())
	c.Cmd("DELE 2")
	c.Cmd("QUIT")
	e.deliver("alice", msg2, "")
	c = e.login("alice", "secret")
	c.Cmd("UIDL")
	assert.Equal(t, []string{"1 1", "2 3"}, c.Multi(), "uid 2 is never given again")
	c.Cmd("QUIT")
	c = e.login("alice", "secret")
	c.Cmd("UIDL")
	assert.Equal(t, []string{"1 1", "2 3"}, c.Multi(), "stable across sessions")
}

// TestDovecotUIDList: an existing dovecot-uidlist is honoured, and with
// UIDLFormat=dovecot the unique-ids are the ones Dovecot gave
// (%08Xu%08Xv), so clients do not download everything again.
func TestDovecotUIDList(t *testing.T) {
	e := newEnv(t, "exchange2010", set("UIDLFormat=dovecot"))
	a := e.deliver("alice", msg1, "")
	b := e.deliver("alice", msg2, "")
	uidlist := "3 V1234567890 N100 Gabc\n41 :" + a + "\n57 W67 S60 :" + b + ":2,S\n"
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "alice", "dovecot-uidlist"), []byte(uidlist), 0o600))
	e.deliver("alice", "Subject: new\n\nnew\n", "")
	c := e.login("alice", "secret")
	c.Cmd("UIDL")
	assert.Equal(t, []string{"1 00000029499602d2", "2 00000039499602d2", "3 00000064499602d2"}, c.Multi())
}

// TestTwoProcessesShareUIDs: two servers (as two pop3d processes would) on
// one mail root never give one message two uids or two messages one.
func TestTwoProcessesShareUIDs(t *testing.T) {
	e := newEnv(t, "exchange2010")
	for i := 0; i < 20; i++ {
		e.deliver("alice", fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i), "")
	}
	results := make(chan []string, 8)
	for i := 0; i < 8; i++ {
		go func() {
			// A mail root of its own, as another process would have.
			mr, err := maildir.OpenMailRoot(e.root)
			if err != nil {
				results <- []string{err.Error()}
				return
			}
			defer mr.Close()
			d, err := mr.OpenDrop("alice", store.OpenOptions{})
			if err != nil {
				results <- []string{err.Error()}
				return
			}
			defer d.Close()
			var out []string
			for i := range d.Len() {
				f, err := d.Open(i)
				if err != nil {
					results <- []string{err.Error()}
					return
				}
				body, _ := io.ReadAll(f)
				f.Close()
				out = append(out, fmt.Sprintf("%d %q", d.UID(i), body))
			}
			results <- out
		}()
	}
	first := <-results
	require.Len(t, first, 20)
	for i := 1; i < 8; i++ {
		assert.Equal(t, first, <-results)
	}
}

// TestSizesStatEqualsSumOfList: MS-2.1.4, MS-2.1.5 — exact CRLF sizes
// under rfc1939 or with ExactSizes, storage sizes otherwise; within a
// session STAT is the sum of LIST.
func TestSizesStatEqualsSumOfList(t *testing.T) {
	clause.Covers(t, "MS-2.1.4", "MS-2.1.5")
	for _, tc := range []struct {
		profile, set string
		want         []string
	}{
		{"rfc1939", "", []string{"1 45", "2 67", "3 7"}},
		{"exchange2010", "", []string{"1 41", "2 60", "3 6"}},
		{"exchange2007", "ExactSizes=true", []string{"1 45", "2 67", "3 7"}},
	} {
		var opts []func(*server.Config)
		if tc.set != "" {
			opts = append(opts, set(tc.set))
		}
		e := newEnv(t, tc.profile, opts...)
		e.deliver("alice", msg1, "")
		e.deliver("alice", msg2, "")
		e.deliver("alice", "a\r\nb\nc", "") // CRLF already, and no final newline
		c := e.login("alice", "secret")
		c.Cmd("LIST")
		list := c.Multi()
		assert.Equal(t, tc.want, list, tc.profile)
		sum := 0
		for _, l := range list {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			sum += n
		}
		assert.Equal(t, "+OK 3 "+strconv.Itoa(sum), c.Cmd("STAT"))
	}
}

// TestRetrStreamsCRLF: RETR converts LF to CRLF and dot-stuffs on the fly;
// a message larger than every buffer arrives intact (RFC1939-3-MULTILINE).
func TestRetrStreamsCRLF(t *testing.T) {
	clause.Covers(t, "RFC1939-3-MULTILINE")
	e := newEnv(t, "rfc1939")
	var b strings.Builder
	b.WriteString("Subject: big\n\n")
	for i := 0; b.Len() < 300*1024; i++ {
		if i%7 == 0 {
			b.WriteString(".")
		}
		fmt.Fprintf(&b, "line %d of a long message\n", i)
	}
	body := b.String()
	e.deliver("alice", body, "")
	c := e.login("alice", "secret")
	exact := len(body) + strings.Count(body, "\n")
	assert.Equal(t, "+OK "+strconv.Itoa(exact)+" octets", c.Cmd("RETR 1"))
	got := strings.Join(c.Multi(), "\n") + "\n"
	assert.Equal(t, body, got)
}

// TestTopHeaderAndLines: TOP n k sends the header, the blank line and k
// body lines; TOP n 0 only the header (RFC1939-7-TOP).
func TestTopHeaderAndLines(t *testing.T) {
	clause.Covers(t, "RFC1939-7-TOP")
	e := newEnv(t, "exchange2010")
	e.deliver("alice", "A: 1\r\nB: 2\r\n\r\nx\r\ny\r\nz\r\n", "")
	e.deliver("alice", "Only: header\n", "")
	c := e.login("alice", "secret")
	c.Cmd("TOP 1 0")
	assert.Equal(t, []string{"A: 1", "B: 2", ""}, c.Multi())
	c.Cmd("TOP 1 2")
	assert.Equal(t, []string{"A: 1", "B: 2", "", "x", "y"}, c.Multi())
	c.Cmd("TOP 1 100")
	assert.Equal(t, []string{"A: 1", "B: 2", "", "x", "y", "z"}, c.Multi())
	c.Cmd("TOP 2 5")
	assert.Equal(t, []string{"Only: header"}, c.Multi())
}

// TestLockInUse: RFC1939-4-LOCK, MS-2.1.3 — under rfc1939 a second login
// gets [IN-USE] (RFC2449-8.1.2-IN-USE), also from another server process
// on the same maildrop; the lock goes with the session.
func TestLockInUse(t *testing.T) {
	clause.Covers(t, "MS-2.1.3", "RFC1939-4-LOCK", "RFC2449-8.1.2-IN-USE")
	e := newEnv(t, "rfc1939")
	e.deliver("alice", msg1, "")
	first := e.login("alice", "secret")
	c := e.dial()
	c.Cmd("USER alice")
	assert.Equal(t, "-ERR [IN-USE] maildrop is locked by another session, try again later", c.Cmd("PASS secret"))
	// Another server on the same mail root and passwd-file.
	other := newEnv(t, "rfc1939", func(cfg *server.Config) { cfg.MailRoot = e.root })
	c = other.dial()
	c.Cmd("USER alice")
	assert.Equal(t, "-ERR [IN-USE] maildrop is locked by another session, try again later", c.Cmd("PASS secret"))
	first.Cmd("QUIT")
	require.True(t, first.Closed())
	c = e.login("alice", "secret")
	assert.Equal(t, "+OK 1 45", c.Cmd("STAT"))
}

// TestSnapshot: C0004 — under Exchange two sessions share the maildrop;
// each works on the list taken at its login: later deliveries are ignored,
// and a message another session removed answers RETR and TOP with -ERR
// while the numbering stays.
func TestSnapshot(t *testing.T) {
	clause.Covers(t, "C0004")
	e := newEnv(t, "exchange2010")
	e.deliver("alice", msg1, "")
	e.deliver("alice", msg2, "")
	a := e.login("alice", "secret")
	b := e.login("alice", "secret")
	e.deliver("alice", "Subject: later\n\nlater\n", "")
	assert.Equal(t, "+OK 2 101", a.Cmd("STAT"), "later deliveries are not in the snapshot")
	b.Cmd("DELE 1")
	assert.Equal(t, "+OK signing off (1 message removed)", b.Cmd("QUIT"))
	require.True(t, b.Closed())
	assert.Equal(t, "-ERR message was removed by another session since login", a.Cmd("RETR 1"))
	assert.Equal(t, "-ERR message was removed by another session since login", a.Cmd("TOP 1 0"))
	assert.Equal(t, "+OK 67 octets", a.Cmd("RETR 2"), "numbering unchanged")
	a.Multi()
	assert.Equal(t, "+OK 2 101", a.Cmd("STAT"))
}

// TestPasswdSchemes: PLAIN, SHA512-CRYPT, BLF-CRYPT and ARGON2ID users log
// in; a wrong password is refused with [AUTH] (RFC3206-5-AUTH).
func TestPasswdSchemes(t *testing.T) {
	clause.Covers(t, "RFC3206-5-AUTH", "V0011")
	e := newEnv(t, "rfc1939")
	for _, u := range users {
		if strings.Contains(u.password, " ") {
			continue // PASS with spaces: TestPassKeepsSpaces
		}
		c := e.login(u.name, u.password)
		c.Cmd("QUIT")
		c = e.dial()
		c.Cmd("USER " + u.name)
		assert.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd("PASS wrong"), u.scheme)
	}
}

// TestUserReplies: V0008, V0009 — under Exchange USER is +OK for any
// name; under rfc1939 it is +OK too except for names that cannot be user
// names, so no reply tells whether a user exists (RFC1939-7-USER).
func TestUserReplies(t *testing.T) {
	clause.Covers(t, "RFC1939-7-USER", "V0008", "V0009")
	for _, p := range allProfiles {
		e := newEnv(t, p)
		c := e.dial()
		assert.Equal(t, "+OK", c.Cmd("USER nobody"), p)
		assert.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd("PASS secret"), p)
		assert.Equal(t, "+OK", c.Cmd("USER alice"), p)
		assert.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd("PASS wrong"), p, "the same reply as for an unknown user")
	}
}

// TestUserNamesStayInRoot: names with "..", "/", NUL or that are absolute
// never reach outside the mail root.
func TestUserNamesStayInRoot(t *testing.T) {
	// Twelve connections from one address: above the default per-address
	// limit, which this test is not about.
	e := newEnv(t, "exchange2010", func(c *server.Config) { c.MaxPreauthPerIP = 100 })
	outside := filepath.Join(e.dir, "outside")
	require.NoError(t, os.MkdirAll(filepath.Join(outside, "new"), 0o700))
	for _, name := range []string{"..", "../outside", "/etc", "a/../../outside", ".hidden", "a\\b"} {
		c := e.dial()
		c.Cmd("USER " + name)
		assert.True(t, strings.HasPrefix(c.Cmd("PASS x"), "-ERR [AUTH]"), name)
		c = e.dial()
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + name + "\x00x"))
		assert.True(t, strings.HasPrefix(c.Cmd("AUTH PLAIN "+ir), "-ERR [AUTH]"), name)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/abs", "nul\x00", "a:b"} {
		assert.Error(t, account.CheckUserName(bad), "%q", bad)
	}
	ents, _ := os.ReadDir(e.root)
	assert.Empty(t, ents, "no directory was created for a bad name")
}

// TestPlaintextPolicy: V0010 — where plaintext is not permitted USER, PASS
// and AUTH PLAIN get -ERR [AUTH] and CAPA lists no USER or SASL.
func TestPlaintextPolicy(t *testing.T) {
	clause.Covers(t, "V0010")
	e := newEnv(t, "exchange2010", set("PlaintextAuth=never"))
	c := e.dial()
	assert.Equal(t, "-ERR [AUTH] plaintext authentication is disabled on this server", c.Cmd("USER alice"))
	assert.Equal(t, "-ERR [AUTH] plaintext authentication is disabled on this server", c.Cmd("AUTH PLAIN"))
	c.Cmd("CAPA")
	capa := c.Multi()
	assert.NotContains(t, capa, "USER")
	assert.NotContains(t, strings.Join(capa, " "), "SASL")
	// secure: the env trusts loopback (--trusted-networks), so it is
	// secure; limits_test.go shows an untrusted loopback refused.
	e = newEnv(t, "exchange2010")
	c = e.dial()
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "USER")
}

// TestPassKeepsSpaces: V0011 — under Exchange the rest of the PASS line is
// the password; under rfc1939 a space ends the argument.
func TestPassKeepsSpaces(t *testing.T) {
	clause.Covers(t, "V0011")
	e := newEnv(t, "exchange2010")
	e.login("erin", "open sesame")
	r := newEnv(t, "rfc1939")
	c := r.dial()
	c.Cmd("USER erin")
	assert.Equal(t, "-ERR too many arguments", c.Cmd("PASS open sesame"))
}

// TestAPOP: V0012 — APOP where the profile enables it, with the timestamp
// in the greeting; refused for users whose secret is a hash; not offered
// under Exchange (RFC1939-7-APOP).
func TestAPOP(t *testing.T) {
	clause.Covers(t, "RFC1939-7-APOP", "V0012")
	e := newEnv(t, "rfc1939")
	c := e.dial()
	i, j := strings.IndexByte(c.Greeting, '<'), strings.IndexByte(c.Greeting, '>')
	require.True(t, i > 0 && j > i, "greeting %q carries a timestamp", c.Greeting)
	stamp := c.Greeting[i : j+1]
	assert.Contains(t, stamp, "@pop3kit.test>")
	sum := md5.Sum([]byte(stamp + "secret"))
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("APOP alice "+hex.EncodeToString(sum[:])))
	c = e.dial()
	assert.Equal(t, "-ERR [AUTH] invalid user name or digest", c.Cmd("APOP alice "+hex.EncodeToString(sum[:])), "another greeting, another timestamp")
	stamp = c.Greeting[strings.IndexByte(c.Greeting, '<') : strings.IndexByte(c.Greeting, '>')+1]
	sum = md5.Sum([]byte(stamp + "hunter2"))
	assert.Equal(t, "-ERR [AUTH] invalid user name or digest", c.Cmd("APOP bob "+hex.EncodeToString(sum[:])), "bob's secret is a hash")

	x := newEnv(t, "exchange2010")
	c = x.dial()
	assert.NotContains(t, c.Greeting, "<")
	assert.Equal(t, "-ERR command not supported by this server", c.Cmd("APOP alice "+hex.EncodeToString(sum[:])))
}

// TestAuthPlain: RFC5034-4-AUTH with an initial response, RFC5034-4-INITIAL
// "=", continuation, RFC5034-4-CANCEL, and MSPOP3-2.2.1 listing (E0002:
// PLAIN and USER/PASS are the mechanisms offered).
func TestAuthPlain(t *testing.T) {
	clause.Covers(t, "RFC4616-2-PLAIN")
	clause.Covers(t,
		"E0002", "MSPOP3-2.2.1", "RFC5034-4-AUTH", "RFC5034-4-CANCEL", "RFC5034-4-INITIAL")
	e := newEnv(t, "exchange2010")
	ir := base64.StdEncoding.EncodeToString([]byte("\x00bob\x00hunter2"))
	c := e.dial()
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("AUTH PLAIN "+ir))
	c = e.dial()
	assert.Equal(t, "+ ", c.Cmd("AUTH plain"))
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd(ir))
	c = e.dial()
	assert.Equal(t, "+ ", c.Cmd("AUTH PLAIN"))
	assert.Equal(t, "-ERR authentication cancelled", c.Cmd("*"))
	assert.Equal(t, "-ERR command valid only after login", c.Cmd("STAT"))
	c = e.dial()
	assert.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd("AUTH PLAIN ="))
	c = e.dial()
	assert.Equal(t, "-ERR [AUTH] invalid user name or password",
		c.Cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("admin\x00bob\x00hunter2"))), "no proxy authorization")
	c = e.dial()
	assert.Equal(t, "-ERR "+pop3.ErrUnknownMechanism.Text, c.Cmd("AUTH GSSAPI"))
	assert.Equal(t, "+OK SASL mechanisms follow", c.Cmd("AUTH"))
	assert.Equal(t, []string{"PLAIN", "LOGIN"}, c.Multi())
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "SASL PLAIN LOGIN")
}

// TestAuthLogin: the LOGIN mechanism that older clients use — challenges
// "Username:" and "Password:" in base64, with or without the user name as
// the initial response (RFC5034-4-AUTH continuation lines).
func TestAuthLogin(t *testing.T) {
	clause.Covers(t, "RFC5034-4-AUTH")
	e := newEnv(t, "exchange2010")
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	c := e.dial()
	assert.Equal(t, "+ "+b64("Username:"), c.Cmd("AUTH LOGIN"))
	assert.Equal(t, "+ "+b64("Password:"), c.Cmd(b64("bob")))
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd(b64("hunter2")))
	c = e.dial()
	assert.Equal(t, "+ "+b64("Password:"), c.Cmd("AUTH login "+b64("bob")))
	assert.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd(b64("wrong")))
	c = e.dial()
	c.Cmd("AUTH LOGIN")
	assert.Equal(t, "-ERR authentication cancelled", c.Cmd("*"))
}

// TestFailedLoginDelay: failed logins wait the configured delay, in their
// own session: another session is answered meanwhile.
func TestFailedLoginDelay(t *testing.T) {
	e := newEnv(t, "exchange2010", func(c *server.Config) { c.FailDelay = server.Duration(2 * time.Second) })
	slow := e.dial()
	slow.Cmd("USER alice")
	slow.Send("PASS wrong")
	fast := e.dial()
	assert.Equal(t, "+OK", fast.Cmd("NOOP"[:0]+"USER bob"), "another session is served during the delay")
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", fast.Cmd("PASS hunter2"))
	_ = slow.C.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := slow.R.ReadString('\n')
	require.Error(t, err, "the failed login is still waiting")
	_ = slow.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	assert.Equal(t, "-ERR [AUTH] invalid user name or password", slow.Line())
}

// TestSTLS: RFC2595-4-STLS — STLS upgrades the plain connection; it is
// refused inside TLS and after login; CAPA lists it only where it can be
// used.
func TestSTLS(t *testing.T) {
	clause.Covers(t, "RFC2595-4-STLS")
	e := newEnv(t, "rfc1939")
	c := e.dial()
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "STLS")
	assert.Equal(t, "+OK Begin TLS negotiation now", c.Cmd("STLS"))
	tc := tls.Client(c.C, &tls.Config{RootCAs: e.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	require.NoError(t, tc.Handshake())
	c.C, c.R = tc, newReader(tc)
	assert.Equal(t, "-ERR TLS is already active", c.Cmd("STLS"))
	c.Cmd("CAPA")
	assert.NotContains(t, c.Multi(), "STLS")
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	assert.Equal(t, "-ERR command valid only before login", c.Cmd("STLS"))

	c = e.dialTLS()
	assert.Equal(t, "-ERR TLS is already active", c.Cmd("STLS"))
}

// TestSTLSInjection: bytes the client pipelined after STLS, before the
// handshake, are discarded and never run (the STARTTLS command-injection
// class, RFC2595-4-STLS).
func TestSTLSInjection(t *testing.T) {
	clause.Covers(t, "RFC2595-4-STLS")
	e := newEnv(t, "rfc1939")
	c := e.dial()
	c.Send("STLS\r\nUSER alice")
	assert.Equal(t, "+OK Begin TLS negotiation now", c.Line())
	tc := tls.Client(c.C, &tls.Config{RootCAs: e.pool, ServerName: "localhost"})
	require.NoError(t, tc.Handshake())
	c.C, c.R = tc, newReader(tc)
	assert.Equal(t, "-ERR PASS must follow a successful USER", c.Cmd("PASS secret"), "the injected USER was not run")
}

// TestImplicitTLS: RFC8314-3-IMPLICIT — TLS from the first octet, TLS 1.2
// or newer only.
func TestImplicitTLS(t *testing.T) {
	clause.Covers(t, "RFC8314-3-IMPLICIT")
	e := newEnv(t, "exchange2010")
	c := e.dialTLS()
	c.Cmd("USER bob")
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("PASS hunter2"))
	_, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: e.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS11})
	assert.Error(t, err, "TLS 1.1 is refused")
}

// TestInactivityTimers: V0002, V0003 — the unauthenticated timer closes an
// idle session; Exchange sends a notice first, RFC 1939 closes silently.
func TestInactivityTimers(t *testing.T) {
	clause.Covers(t, "V0002", "V0003")
	if testing.Short() {
		t.Skip("waits for the 10 s minimum inactivity timer; skipped in -short runs")
	}
	for _, tc := range []struct{ profile, want string }{
		{"exchange2010", "-ERR autologout: idle for too long, closing connection"},
		{"rfc1939", ""},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.profile, set("UnauthTimeout=10s"))
			c := e.dial()
			_ = c.C.SetReadDeadline(time.Now().Add(30 * time.Second))
			l, err := c.R.ReadString('\n')
			if tc.want == "" {
				assert.Error(t, err, "closed without a response")
				assert.Empty(t, l)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.want+"\r\n", l)
				assert.True(t, c.Closed())
			}
		})
	}
}

// TestLongLinesAndFloods: a line over the command limit gets -ERR and the
// session goes on (E0006, E0007); a megabyte without a line end does not
// grow memory or end the session.
func TestLongLinesAndFloods(t *testing.T) {
	clause.Covers(t, "E0006", "E0007")
	e := newEnv(t, "exchange2007")
	c := e.dial()
	assert.Equal(t, "-ERR command line too long", c.Cmd("USER "+strings.Repeat("a", 42)), "48 octets > Exchange 2007's 47")
	c.Send(strings.Repeat("X", 1<<20))
	assert.Equal(t, "-ERR command line too long", c.Line())
	assert.Equal(t, "+OK", c.Cmd("USER alice"))
	// A drip: one octet at a time still makes one command.
	for _, b := range []byte("PASS secret\r\n") {
		_, err := c.C.Write([]byte{b})
		require.NoError(t, err)
	}
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Line())
}

// TestPipelining: RFC2449-6.6-PIPELINING — many commands in one packet,
// replies in order.
func TestPipelining(t *testing.T) {
	clause.Covers(t, "RFC2449-6.6-PIPELINING")
	e := newEnv(t, "rfc1939")
	e.deliver("alice", msg1, "")
	c := e.dial()
	c.Send("USER alice\r\nPASS secret\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nRETR 1\r\nNOOP\r\nQUIT")
	assert.Equal(t, "+OK", c.Line())
	assert.Equal(t, "+OK maildrop has 1 message (45 octets)", c.Line())
	assert.Equal(t, "+OK 1 45", c.Line())
	assert.Equal(t, "+OK 1 45", c.Line())
	assert.Equal(t, "+OK 1 1", c.Line())
	assert.Equal(t, "+OK 45 octets", c.Line())
	assert.Len(t, c.Multi(), 4)
	assert.Equal(t, "+OK", c.Line())
	assert.Equal(t, "+OK signing off (0 messages removed)", c.Line())
}

// TestCapaPerProfile: RFC2449-5-CAPA lists what the connection can use;
// RFC6856-2-UTF8 and RFC6856-3-LANG under rfc1939; E0005 EXPIRE when set.
func TestCapaPerProfile(t *testing.T) {
	clause.Covers(t, "E0005", "RFC2449-5-CAPA", "RFC6856-2-UTF8", "RFC6856-3-LANG")
	e := newEnv(t, "rfc1939", func(c *server.Config) { c.Expire = "NEVER" })
	c := e.dial()
	c.Cmd("CAPA")
	assert.Equal(t, []string{"TOP", "USER", "SASL PLAIN LOGIN", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER",
		"UIDL", "IMPLEMENTATION pop3kit", "STLS", "UTF8 USER", "LANG"}, c.Multi())
	assert.Equal(t, "+OK UTF8 enabled", c.Cmd("UTF8"))
	assert.Equal(t, "+OK language listing follows", c.Cmd("LANG"))
	assert.Equal(t, []string{"en English"}, c.Multi())
	assert.Equal(t, "+OK en English", c.Cmd("LANG *"))
	assert.Equal(t, "-ERR language not supported (this server offers en)", c.Cmd("LANG tlh"))
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	c.Cmd("CAPA")
	assert.Equal(t, []string{"TOP", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "UIDL",
		"IMPLEMENTATION pop3kit", "LANG"}, c.Multi(), "after login: nothing about logging in, nor UTF8 (RFC 6856 §2: before login only)")

	x := newEnv(t, "exchange2010")
	c = x.dial()
	assert.Equal(t, "-ERR command not supported by this server", c.Cmd("UTF8"))
}

// TestMaxSessions: past the limit a connection gets [SYS/TEMP] and is
// closed (RFC3206-4-SYS).
func TestMaxSessions(t *testing.T) {
	clause.Covers(t, "RFC3206-4-SYS")
	e := newEnv(t, "exchange2010", func(c *server.Config) { c.MaxSessions = 1 })
	// A logged-in session holds its slot (an unauthenticated one would
	// give way: TestLimitEvictOldestUnauthenticated).
	e.login("alice", "secret")
	c, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	defer c.Close()
	cl := pop3test.New(t, c)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	assert.Equal(t, "-ERR [SYS/TEMP] server is full (too many connections), try again later", cl.Line())
}

// TestConfigErrors: bad configuration stops the server at start with a
// message that names the bad value.
func TestConfigErrors(t *testing.T) {
	base := func() server.Config {
		c := server.DefaultConfig()
		c.Listen = []string{"127.0.0.1:0"}
		c.MailRoot = t.TempDir()
		c.Passwd = filepath.Join(c.MailRoot, "passwd")
		_ = os.WriteFile(c.Passwd, []byte("alice:{PLAIN}x\n"), 0o600)
		return c
	}
	for _, tc := range []struct {
		change func(*server.Config)
		want   string
	}{
		{func(c *server.Config) { c.Profile = "exchange2003" }, `unknown profile "exchange2003"`},
		{func(c *server.Config) { _ = c.AddSet("MaxCommandOctets=2000") }, "MaxCommandOctets: 2000 is outside 40–1024"},
		{func(c *server.Config) { _ = c.AddSet("Bogus=1") }, `unknown variation "Bogus"`},
		{func(c *server.Config) { c.MailRoot = "/nonexistent/mail" }, `mail root "/nonexistent/mail" is not a directory`},
		{func(c *server.Config) { c.ListenTLS = []string{"127.0.0.1:0"} }, "--listen-tls needs --tls-cert and --tls-key"},
		{func(c *server.Config) { c.Expire = "soon" }, `expire "soon"`},
		{func(c *server.Config) { c.LoginDelay = server.Duration(1500 * time.Millisecond) }, "login delay 1.5s: want whole seconds"},
	} {
		c := base()
		tc.change(&c)
		_, err := server.New(c, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	// A bad passwd-file line does not stop the server (the other accounts
	// are served); it is logged by file and line.
	for _, tc := range []struct{ passwd, want string }{
		{"alice:{MD5}abc\n", `passwd:1 err="unsupported scheme {MD5}`},
		{"ok:{PLAIN}x\n../x:{PLAIN}y\n", `passwd:2 err="user name \"../x\" starts with a dot"`},
	} {
		c := base()
		require.NoError(t, os.WriteFile(c.Passwd, []byte(tc.passwd), 0o600))
		var logs strings.Builder
		_, err := server.New(c, slog.New(slog.NewTextHandler(&logs, nil)))
		require.NoError(t, err)
		assert.Contains(t, logs.String(), tc.want)
	}
}

// TestSysPerm: RFC3206-4-SYS — a maildrop that cannot be opened for a
// reason that trying again will not fix answers [SYS/PERM]; nothing
// outside it is touched.
func TestSysPerm(t *testing.T) {
	clause.Covers(t, "RFC3206-4-SYS")
	e := newEnv(t, "exchange2010")
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "alice"), []byte("not a maildir"), 0o600))
	c := e.dial()
	c.Cmd("USER alice")
	assert.Equal(t, "-ERR [SYS/PERM] maildrop cannot be opened; please tell the administrator", c.Cmd("PASS secret"))
	b, err := os.ReadFile(filepath.Join(e.root, "alice"))
	require.NoError(t, err)
	assert.Equal(t, "not a maildir", string(b))
}

// TestLoginDelay: RFC2449-6.5-LOGIN-DELAY and RFC2449-8.1.1-LOGIN-DELAY —
// the delay is announced in CAPA and a second login within it gets
// -ERR [LOGIN-DELAY]; other users are not affected.
func TestLoginDelay(t *testing.T) {
	clause.Covers(t, "RFC2449-6.5-LOGIN-DELAY", "RFC2449-8.1.1-LOGIN-DELAY")
	e := newEnv(t, "rfc1939", func(c *server.Config) { c.LoginDelay = server.Duration(time.Hour) })
	c := e.dial()
	c.Cmd("CAPA")
	assert.Contains(t, c.Multi(), "LOGIN-DELAY 3600")
	e.login("alice", "secret").Cmd("QUIT")
	c = e.dial()
	c.Cmd("USER alice")
	assert.Equal(t, "-ERR [LOGIN-DELAY] logged in too recently, try again later", c.Cmd("PASS secret"))
	e.login("bob", "hunter2")
	c = e.dial()
	c.Cmd("USER alice")
	assert.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd("PASS wrong"), "a wrong password is still just wrong")
}

// withUsers is an option that serves the test users plus the passwd-file
// lines given (name:{PLAIN}secret::::::).
func withUsers(t testing.TB, lines ...string) func(*server.Config) {
	p := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, os.WriteFile(p, []byte(passwdFile(t)+strings.Join(lines, "\n")+"\n"), 0o600))
	return func(c *server.Config) { c.Passwd = p }
}

// TestLongPassRFC1939: RFC2449-4-CMD255 — the rfc1939 profile offers CAPA,
// so a PASS of 255 octets (CRLF included) from a password manager logs in;
// RFC1939-3-ARG40, the strict 40-octet reading, is still a setting.
func TestLongPassRFC1939(t *testing.T) {
	clause.Covers(t, "RFC1939-3-ARG40", "RFC2449-4-CMD255")
	pw := strings.Repeat("Zq9!", 62) // 248 octets: "PASS " + 248 + CRLF = 255
	require.Len(t, "PASS "+pw+"\r\n", 255)
	e := newEnv(t, "rfc1939", withUsers(t, "frank:{PLAIN}"+pw+"::::::"))
	c := e.dial()
	assert.Equal(t, "+OK", c.Cmd("USER frank")[:3])
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("PASS "+pw))
	c = e.dial()
	c.Cmd("USER frank")
	assert.Equal(t, "-ERR command line too long", c.Cmd("PASS "+pw+"x"), "256 octets")

	strict := newEnv(t, "rfc1939", withUsers(t, "frank:{PLAIN}"+pw+"::::::"), set("MaxArgOctets=40"))
	c = strict.dial()
	c.Cmd("USER frank")
	assert.Equal(t, "-ERR argument too long", c.Cmd("PASS "+pw))
}

// TestStrictOrLiberalPerProfile shows each decision of the table on the
// spellings Dovecot accepts (RFC1122-1.2.2), per profile: SpaceRuns
// (RFC1939-3-SPACE), IgnoreExtraArgs (RFC1939-3-KEYWORD), zero-padded
// numbers beyond 40 octets (RFC2449-4-CMD255, MS-2.1.2; Exchange 2007's
// 47-octet command refuses them, E0006), TOP counts of 2^31 and more
// (RFC1939-7-TOP), and QUIT extra, refused everywhere.
func TestStrictOrLiberalPerProfile(t *testing.T) {
	clause.Covers(t,
		"E0006", "MS-2.1.2", "RFC1122-1.2.2", "RFC1939-3-KEYWORD", "RFC1939-3-SPACE",
		"RFC1939-7-TOP", "RFC2449-4-CMD255")
	padded := "LIST " + strings.Repeat("0", 45) + "1"
	for _, tc := range []struct {
		line string
		want map[string]string // reply prefix by profile
	}{
		{"STAT ", map[string]string{"rfc1939": "+OK 2 112", "exchange2007": "+OK 2 112", "exchange2010": "+OK 2 112"}},
		{"LIST  1", map[string]string{"rfc1939": "+OK 1 45", "exchange2007": "+OK 1 45", "exchange2010": "+OK 1 45"}},
		{"DELE 1 ", map[string]string{"rfc1939": "+OK", "exchange2007": "+OK", "exchange2010": "+OK"}},
		{"RSET extra", map[string]string{"rfc1939": "+OK", "exchange2007": "-ERR too many arguments", "exchange2010": "-ERR too many arguments"}},
		{"NOOP extra", map[string]string{"rfc1939": "+OK", "exchange2007": "-ERR too many arguments", "exchange2010": "-ERR too many arguments"}},
		{"STAT extra", map[string]string{"rfc1939": "+OK 2 112", "exchange2007": "-ERR too many arguments", "exchange2010": "-ERR too many arguments"}},
		{"LIST\t1", map[string]string{"rfc1939": "-ERR separate keyword", "exchange2007": "+OK 1 45", "exchange2010": "+OK 1 45"}},
		{padded, map[string]string{"rfc1939": "+OK 1 45", "exchange2007": "-ERR command line too long", "exchange2010": "+OK 1 45"}},
		{"TOP 2 2147483648", map[string]string{"rfc1939": "+OK 67 octets", "exchange2007": "+OK 67 octets", "exchange2010": "+OK 67 octets"}},
		{"TOP 2 18446744073709551616", map[string]string{"rfc1939": "+OK 67 octets", "exchange2007": "+OK 67 octets", "exchange2010": "+OK 67 octets"}},
		{"QUIT extra", map[string]string{"rfc1939": "-ERR too many arguments", "exchange2007": "-ERR too many arguments", "exchange2010": "-ERR too many arguments"}},
	} {
		for _, p := range allProfiles {
			t.Run(p+"/"+tc.line, func(t *testing.T) {
				e := newEnv(t, p, set("ExactSizes=true"))
				e.deliver("alice", msg1, "")
				e.deliver("alice", msg2, "")
				c := e.login("alice", "secret")
				got := c.Cmd(tc.line)
				assert.True(t, strings.HasPrefix(got, tc.want[p]), "%s under %s: got %q, want %q", tc.line, p, got, tc.want[p])
				if strings.HasPrefix(got, "+OK") && strings.HasPrefix(tc.line, "TOP") {
					assert.Len(t, c.Multi(), 7, "the whole of message 2")
				}
				// The session goes on after each of them.
				assert.True(t, strings.HasPrefix(c.Cmd("NOOP"), "+OK"))
			})
		}
	}
	// The 40-octet reading refuses the padded number.
	e := newEnv(t, "rfc1939", set("MaxArgOctets=40"))
	e.deliver("alice", msg1, "")
	assert.Equal(t, "-ERR argument too long", e.login("alice", "secret").Cmd(padded))
}

// TestQuitExtraRemovesNothing: RFC1939-6-UPDATE is entered only by a plain
// QUIT: "QUIT extra" after DELE is refused in every profile, and a client
// that then drops the connection loses nothing (RFC1122-1.2.2 stops short
// of what removes messages).
func TestQuitExtraRemovesNothing(t *testing.T) {
	clause.Covers(t, "RFC1122-1.2.2", "RFC1939-6-UPDATE")
	for _, p := range allProfiles {
		e := newEnv(t, p)
		e.deliver("alice", msg1, "")
		c := e.login("alice", "secret")
		require.True(t, strings.HasPrefix(c.Cmd("DELE 1"), "+OK"))
		assert.Equal(t, "-ERR too many arguments", c.Cmd("QUIT extra"), p)
		_ = c.C.Close()
		require.Eventually(t, func() bool { return e.srv.Sessions() == 0 }, 5*time.Second, 10*time.Millisecond)
		assert.Len(t, e.files("alice"), 1, "%s: the message marked deleted is still there", p)
		c = e.login("alice", "secret")
		assert.True(t, strings.HasPrefix(c.Cmd("LIST 1"), "+OK 1 "), p)
	}
}

// TestTopStatesOctetsSent: RFC1939-7-TOP — the +OK line of TOP gives the
// octets of the CRLF form of what follows it (header, blank line, k body
// lines), measured before the status line, not the message's size; a
// count of 2^31 and more sends the whole message, whose octets then equal
// LIST's (RETR's) size, under every profile.
func TestTopStatesOctetsSent(t *testing.T) {
	clause.Covers(t, "RFC1939-7-TOP")
	for _, p := range allProfiles {
		e := newEnv(t, p, set("ExactSizes=true"))
		e.deliver("alice", msg2, "")                        // LF lines: 67 octets in CRLF form
		e.deliver("alice", "A: 1\r\n\r\nx\r\ny\ny\r\n", "") // mixed line ends
		c := e.login("alice", "secret")
		for _, tc := range []struct {
			line   string
			lines  int
			octets int
		}{
			{"TOP 1 0", 3, len("From: b@example.org\r\nSubject: two\r\n\r\n")},
			{"TOP 1 1", 4, len("From: b@example.org\r\nSubject: two\r\n\r\n.dot line\r\n")},
			{"TOP 1 3", 6, len("From: b@example.org\r\nSubject: two\r\n\r\n.dot line\r\n.\r\nline 2\r\n")},
			{"TOP 1 2147483648", 7, 67},
			{"TOP 1 4294967295", 7, 67},
			{"TOP 1 99999999999999999999999999999", 7, 67},
			{"TOP 2 1", 3, len("A: 1\r\n\r\nx\r\n")},
			{"TOP 2 9", 5, len("A: 1\r\n\r\nx\r\ny\r\ny\r\n")},
		} {
			assert.Equal(t, "+OK "+strconv.Itoa(tc.octets)+" octets", c.Cmd(tc.line), "%s: %s", p, tc.line)
			assert.Len(t, c.Multi(), tc.lines, "%s: %s", p, tc.line)
		}
		assert.Equal(t, "+OK 1 67", c.Cmd("LIST 1"), p)
		assert.Equal(t, "+OK 67 octets", c.Cmd("RETR 1"), p)
		c.Multi()
	}
}

// TestUserNameCase: RFC1939-7-USER — UserNameCase keeps the name as sent
// (rfc1939: Bob and bob may be two mailboxes) or lower-cases it before the
// lookup (the Exchange profiles, and Dovecot's default), in USER, APOP and
// SASL alike (V0008: under Exchange USER is +OK either way).
func TestUserNameCase(t *testing.T) {
	clause.Covers(t, "RFC1939-7-USER", "V0008")
	e := newEnv(t, "rfc1939")
	c := e.dial()
	assert.Equal(t, "+OK", c.Cmd("USER ALICE")[:3])
	assert.Equal(t, "-ERR [AUTH] invalid user name or password", c.Cmd("PASS secret"))

	for _, env := range []*env{newEnv(t, "rfc1939", set("UserNameCase=lower")), newEnv(t, "exchange2007"), newEnv(t, "exchange2010")} {
		env.login("AlIcE", "secret")
		c = env.dial()
		ir := base64.StdEncoding.EncodeToString([]byte("\x00BOB\x00hunter2"))
		assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("AUTH PLAIN "+ir))
	}
	lower := newEnv(t, "rfc1939", set("UserNameCase=lower"))
	c = lower.dial()
	stamp := c.Greeting[strings.IndexByte(c.Greeting, '<') : strings.IndexByte(c.Greeting, '>')+1]
	sum := md5.Sum([]byte(stamp + "secret"))
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("APOP ALICE "+hex.EncodeToString(sum[:])))
}

// TestStickyUser: RFC1939-7-PASS — under rfc1939 PASS must follow USER
// immediately; with StickyUser (Dovecot's behaviour, RFC1122-1.2.2) other
// commands may come between.
func TestStickyUser(t *testing.T) {
	clause.Covers(t, "RFC1122-1.2.2", "RFC1939-7-PASS")
	for _, p := range allProfiles {
		e := newEnv(t, p)
		c := e.dial()
		c.Cmd("USER alice")
		c.Cmd("CAPA")
		c.Multi()
		assert.Equal(t, "-ERR PASS must follow a successful USER", c.Cmd("PASS secret"), p)
	}

	e := newEnv(t, "rfc1939", set("StickyUser=true"))
	c := e.dial()
	c.Cmd("USER alice")
	c.Cmd("CAPA")
	c.Multi()
	assert.True(t, strings.HasPrefix(c.Cmd("NOOP"), "-ERR"))
	assert.Equal(t, "+OK maildrop has 0 messages (0 octets)", c.Cmd("PASS secret"))
}

// TestPlaintextDisabledText: V0010 — under PlaintextAuth=never the refusal
// says plaintext authentication is disabled on this server, over implicit
// TLS and on a trusted connection too, where "non-secure connections"
// would be false; under secure the refusal on an untrusted connection
// still names the insecure connection.
func TestPlaintextDisabledText(t *testing.T) {
	clause.Covers(t, "V0010")
	e := newEnv(t, "rfc1939", set("PlaintextAuth=never"))
	for _, c := range []*pop3test.Conn{e.dial(), e.dialTLS()} {
		assert.Equal(t, "-ERR [AUTH] plaintext authentication is disabled on this server", c.Cmd("USER alice"))
		assert.Equal(t, "-ERR [AUTH] plaintext authentication is disabled on this server", c.Cmd("AUTH PLAIN"))
	}
	s := newEnv(t, "exchange2010", untrusted)
	assert.Equal(t, "-ERR [AUTH] plaintext authentication disallowed on non-secure connections", s.dial().Cmd("USER alice"))
}
