package lmtp

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/server/account"
	"github.com/pop3kit/pop3kit/server/store"
)

// Quotas and their warnings (MS-STANXPOP3 E0003, E0004: RFC 1939 §8's
// "per-user maildrop storage quota … sites … should inform users of
// impending or current exhaustion of quota, perhaps by inserting an
// appropriate message into the user's maildrop"). POP3 only reads and
// removes, so a quota is enforced where mail arrives: LMTP delivery
// refuses a message that would take a maildrop over its quota (552 5.2.2),
// and the delivery that first takes it over the warning threshold puts a
// warning message into it — once per crossing: the maildrop must fall
// below the threshold again before another is sent.

// errOverQuota refuses a delivery that would take the maildrop over its
// quota.
var errOverQuota = errors.New("the mailbox is full (over its quota)")

// quotaOf returns user's quota: the account's own, else the server'b.
func (b *backend) quotaOf(user string) int64 {
	if a, ok, err := b.cfg.Users.Lookup(user); err == nil && ok && a.Quota > 0 {
		return a.Quota
	}
	return b.cfg.Quota
}

// quotaCheck is what checkQuota learned, for afterDelivery: the quota in
// force and what the maildrop held before the delivery; quota 0 when none
// applies (no quota, a store that cannot tell, or usage unknown).
type quotaCheck struct{ quota, used int64 }

// checkQuota refuses a delivery of size octets to user that would take
// the maildrop over its quota. size < 0: not known yet (the message is
// being read); only a maildrop already at its quota is refused. The
// maildrop is measured once a delivery: afterDelivery adds the message.
// quotaTurn waits, when user has a quota, until no other delivery to user
// runs in this process (or ctx ends), and returns what ends this one's
// turn.
func (b *backend) quotaTurn(ctx context.Context, user string) (func(), error) {
	if b.quotaOf(user) <= 0 {
		return func() {}, nil
	}
	b.quotaMu.Lock()
	if b.quotaTurns == nil {
		b.quotaTurns = map[string]*quotaLock{}
	}
	l := b.quotaTurns[user]
	if l == nil {
		l = &quotaLock{ch: make(chan struct{}, 1)}
		b.quotaTurns[user] = l
	}
	l.users++
	b.quotaMu.Unlock()
	release := func() {
		b.quotaMu.Lock()
		if l.users--; l.users == 0 {
			delete(b.quotaTurns, user)
		}
		b.quotaMu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// quotaLock is one user's turn for deliveries under a quota; users counts
// the deliveries holding or awaiting it, so that it goes with the last.
type quotaLock struct {
	ch    chan struct{}
	users int
}

func (b *backend) checkQuota(ctx context.Context, user string, size int64) (quotaCheck, error) {
	q := b.quotaOf(user)
	us, ok := b.cfg.Store.(store.UsageStore)
	if q <= 0 || !ok {
		return quotaCheck{}, nil
	}
	used, _, err := us.Usage(ctx, user)
	if err != nil {
		return quotaCheck{}, nil // the delivery itself will say what is wrong
	}
	if used >= q || size > 0 && used+size > q {
		return quotaCheck{}, errOverQuota
	}
	return quotaCheck{quota: q, used: used}, nil
}

// afterDelivery sends user the quota warning when this delivery of
// size octets took the maildrop over the warning threshold, once per
// crossing, and forgets an earlier warning when it is below it again.
func (b *backend) afterDelivery(ctx context.Context, user string, qc quotaCheck, size int64) {
	q := qc.quota
	us, ok := b.cfg.Store.(store.UsageStore)
	d := b.cfg.Store
	if q <= 0 || !ok || b.cfg.QuotaWarning <= 0 {
		return
	}
	used := qc.used + size
	threshold := q / 100 * int64(b.cfg.QuotaWarning)
	warned := us.Warned(user)
	switch {
	case used < threshold && warned:
		_ = us.SetWarned(user, false)
	case used >= threshold && !warned:
		if err := us.SetWarned(user, true); err != nil {
			b.log.Warn("quota warning not recorded; not sent", "user", user, "err", err)
			return
		}
		msg := quotaWarning(b.cfg.Domain, user, used, q, time.Now())
		if err := d.Deliver(ctx, user, strings.NewReader(msg)); err != nil {
			_ = us.SetWarned(user, false)
			b.log.Warn("quota warning not delivered", "user", user, "err", err)
			return
		}
		b.log.Info("quota warning sent", "user", user, "used", used, "quota", q)
	}
}

// quotaWarning is the message that tells a user their maildrop is near
// its quota.
func quotaWarning(host, user string, used, quota int64, now time.Time) string {
	pct := used * 100 / quota
	return "From: Mail Delivery System <MAILER-DAEMON@" + host + ">\n" +
		"To: " + user + "\n" +
		"Subject: Your mailbox is " + strconv.FormatInt(pct, 10) + "% full\n" +
		"Date: " + now.Format(time.RFC1123Z) + "\n" +
		"Message-ID: <" + strconv.FormatInt(now.UnixNano(), 36) + "." + rand.Text() + ".quota@" + host + ">\n" +
		"Auto-Submitted: auto-generated\n" +
		"Content-Type: text/plain; charset=us-ascii\n\n" +
		"Your mailbox holds " + account.FormatSize(used) + " of its quota of " + account.FormatSize(quota) + ".\n" +
		"When it is full, new mail is refused and returned to its senders.\n" +
		"Download and delete messages to make room.\n"
}
