package server_test

import (
	"context"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/maildir"
)

// TestQuotaAndWarning: E0003 — a delivery that would take a maildrop
// over its quota is refused at LMTP with 552 5.2.2 and nothing is
// written; E0004 — the delivery that crosses the warning threshold puts
// one warning message into the maildrop, and no second one until the
// maildrop was below the threshold again.
func TestQuotaAndWarning(t *testing.T) {
	clause.Covers(t, "E0003", "E0004")
	body := "Subject: x\r\n\r\n" + strings.Repeat("a", 1000) + "\r\n"
	e := newEnv(t, "rfc1939", withLMTP(func(c *server.Config) {
		c.Quota = server.Bytes(2*len(body) + 100)
		c.QuotaWarning = 50
	}))
	c := e.lmtpDial()
	res := e.lmtpSend(c, body, "alice@example.org")
	assert.Nil(t, res.data["alice@example.org"], "first: 1/3 of the quota")
	assert.Len(t, e.maildirFiles("alice", "new"), 1, "below 50%: no warning")
	res = e.lmtpSend(c, body, "alice@example.org")
	assert.Nil(t, res.data["alice@example.org"], "second: 2/3, over the warning threshold")
	files := e.maildirFiles("alice", "new")
	require.Len(t, files, 3, "the message and the warning")
	var warning string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(e.root, "alice", "new", f))
		require.NoError(t, err)
		if strings.Contains(string(b), "Subject: Your mailbox is") {
			warning = string(b)
		}
	}
	assert.Contains(t, warning, "Auto-Submitted: auto-generated")
	assert.Contains(t, warning, "of its quota of")
	// A message as RFC 5322 §3.6 wants it: an origination date and an
	// identifier (before, it had no Message-ID).
	m, err := mail.ReadMessage(strings.NewReader(warning))
	require.NoError(t, err)
	_, err = m.Header.Date()
	assert.NoError(t, err, "Date")
	assert.Regexp(t, `^<[0-9a-z]+\.[A-Z2-7]+\.quota@[^@>]+>$`, m.Header.Get("Message-ID"))

	// Over the quota now (two messages and the warning): refused, nothing written.
	res = e.lmtpSend(c, body, "alice@example.org")
	require.NotNil(t, res.data["alice@example.org"])
	assert.Equal(t, 552, res.data["alice@example.org"].Code)
	assert.Equal(t, [3]int{5, 2, 2}, [3]int(res.data["alice@example.org"].EnhancedCode))
	assert.Len(t, e.maildirFiles("alice", "new"), 3)
	assert.Empty(t, e.maildirFiles("alice", "tmp"))

	// The user downloads and deletes everything: below the threshold, the
	// warning is forgotten; crossing again warns again, once.
	p := e.login("alice", "secret")
	for i := 1; i <= 3; i++ {
		p.Cmd("DELE " + string(rune('0'+i)))
	}
	assert.Equal(t, "+OK signing off (3 messages removed)", p.Cmd("QUIT"))
	e.lmtpSend(c, body, "alice@example.org")
	e.lmtpSend(c, body, "alice@example.org")
	assert.Len(t, e.maildirFiles("alice", "new"), 3, "two messages and a second warning")
}

// TestQuotaPerAccount: an account's userdb_quota_rule=*:storage=SIZE
// (Dovecot's extra field) overrides the server's quota.
func TestQuotaPerAccount(t *testing.T) {
	a, err := account.ParseAccount("carol:{PLAIN}pw::::::userdb_quota_rule=*:storage=2k")
	require.NoError(t, err)
	assert.Equal(t, int64(2048), a.Quota)
	_, err = account.ParseAccount("carol:{PLAIN}pw::::::userdb_quota_rule=*:storage=lots")
	assert.ErrorContains(t, err, "userdb_quota_rule")
}

// TestExpireRetention: E0005 — the sweep removes the messages older than
// the retention and no other, leaves a maildrop a session holds for the
// next run, and EXPIRE announces the retention in days.
func TestExpireRetention(t *testing.T) {
	clause.Covers(t, "E0005")
	e := newEnv(t, "rfc1939", func(c *server.Config) { c.Retention = server.Duration(30 * 24 * time.Hour) })
	old := e.deliver("alice", "Subject: old\n\nold\n", "")
	e.deliver("alice", "Subject: new\n\nnew\n", "")
	e.deliver("bob", "Subject: bob's old\n\nold\n", "")
	back := time.Now().Add(-40 * 24 * time.Hour)
	for _, p := range []string{filepath.Join(e.root, "alice", "new", old)} {
		require.NoError(t, os.Chtimes(p, back, back))
	}
	for _, f := range e.maildirFiles("bob", "new") {
		require.NoError(t, os.Chtimes(filepath.Join(e.root, "bob", "new", f), back, back))
	}
	c := e.dial()
	c.Send("CAPA")
	assert.Contains(t, c.Multi(), "EXPIRE 30")

	// bob is logged in (rfc1939: the maildrop is locked): left alone.
	b := e.login("bob", "hunter2")
	mr, err := maildir.OpenMailRoot(e.root)
	require.NoError(t, err)
	defer mr.Close()
	rep, err := mr.Expire(context.Background(), 30*24*time.Hour, time.Now(), true, nil)
	require.NoError(t, err)
	assert.Equal(t, maildir.ExpireReport{Users: 1, Removed: 1, Skipped: 1, Octets: rep.Octets}, rep, "dry run")
	assert.Len(t, e.files("alice"), 2, "a dry run removes nothing")
	rep, err = mr.Expire(context.Background(), 30*24*time.Hour, time.Now(), false, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Removed)
	assert.Equal(t, 1, rep.Skipped, "bob's maildrop is held")
	left := e.files("alice")
	require.Len(t, left, 1)
	assert.NotContains(t, left[0], strings.SplitN(old, ":", 2)[0], "the old message went")
	b.Cmd("QUIT")
	rep, err = mr.Expire(context.Background(), 30*24*time.Hour, time.Now(), false, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Removed, "bob's, once his session ended")
}

// TestQuotaConcurrentDeliveries: ten deliveries at once to one user,
// without SIZE=, each of 30 KB against a 100 KiB quota, take the maildrop
// over its quota by one message in flight at most: each is checked
// against what the one before it left. Before, the ten were checked
// against the same empty maildrop and it reached 300 KB.
func TestQuotaConcurrentDeliveries(t *testing.T) {
	const quota, size, n = 100 << 10, 30_000, 10
	line := strings.Repeat("a", 998) + "\r\n" // 1,000 octets, within SMTP's line limit
	body := "Subject: x\r\n\r\n" + strings.Repeat(line, size/len(line)-1) + strings.Repeat("a", size-len("Subject: x\r\n\r\n")-(size/len(line)-1)*len(line)-2) + "\r\n"
	e := newEnv(t, "exchange2010", withLMTP(func(c *server.Config) {
		c.Quota = server.Bytes(quota)
		c.QuotaWarning = 0
	}))
	var wg, halfway sync.WaitGroup
	var saved, full atomic.Int64
	halfway.Add(n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every delivery is under way, its first half sent, before
			// any ends: as ten MTA connections delivering at once are.
			c := e.lmtpDial()
			require.NoError(t, c.Mail("mta@example.org", nil))
			require.NoError(t, c.Rcpt("alice@example.org", nil))
			w, err := c.Data()
			require.NoError(t, err)
			_, err = w.Write([]byte(body[:size/2]))
			require.NoError(t, err)
			halfway.Done()
			halfway.Wait()
			_, err = w.Write([]byte(body[size/2:]))
			require.NoError(t, err)
			if _, err := w.CloseWithLMTPResponse(); err == nil {
				saved.Add(1)
			} else {
				full.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Len(t, body, size)
	var used int64
	for _, f := range e.maildirFiles("alice", "new") {
		fi, err := os.Stat(filepath.Join(e.root, "alice", "new", f))
		require.NoError(t, err)
		used += fi.Size()
	}
	t.Logf("%d deliveries of %d octets at once, quota %d: %d saved (%d octets), %d refused", n, size, quota, saved.Load(), used, full.Load())
	assert.LessOrEqual(t, used, int64(quota+size), "over the quota by one message at most")
	assert.Positive(t, full.Load(), "the quota refused some")
}
