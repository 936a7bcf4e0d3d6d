package pop3

import (
	"container/list"
	"sync"
	"time"
)

// penaltyTTL is how long a failed login is remembered: an hour after the
// last failure an address or a user name starts afresh, as with Dovecot's
// anvil. Shorter would let a patient attacker reset the schedule by
// pausing; longer only holds memory for addresses that gave up.
const penaltyTTL = time.Hour

// Penalties is a table of recent failed logins by key (an address group or
// a user name), in the spirit of Dovecot's anvil. The runtime keeps one by
// address for its LoginPolicy: an address's failures delay its next
// checks. A server may keep its own, by user name, to lengthen the replies
// to wrong passwords for a name being guessed (pop3d does). It holds at
// most max entries; when full, the entry whose last failure is oldest
// gives way, so a flood of fresh addresses or names costs memory in
// proportion to max, never to the flood. It is safe for concurrent use;
// the nil *Penalties records nothing.
type Penalties struct {
	max int
	ttl time.Duration
	now func() time.Time // time.Now; tests replace it

	mu    sync.Mutex
	byKey map[string]*list.Element
	order list.List // of *penalty, oldest last failure first
}

// penalty is one key's count of failures, the time of the last and the
// turn last booked for a check from the key.
type penalty struct {
	key   string
	fails int
	last  time.Time
	next  time.Time
}

// NewPenalties returns a table of at most max keys.
func NewPenalties(max int) *Penalties {
	return &Penalties{max: max, ttl: penaltyTTL, now: time.Now, byKey: map[string]*list.Element{}}
}

// Fails returns key's recent failures (0 for none or an expired entry).
func (t *Penalties) Fails(key string) int {
	if t == nil || key == "" {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	if e, ok := t.byKey[key]; ok {
		return e.Value.(*penalty).fails
	}
	return 0
}

// Fail records a failure of key.
func (t *Penalties) Fail(key string) {
	if t == nil || key == "" || t.max <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire()
	if e, ok := t.byKey[key]; ok {
		p := e.Value.(*penalty)
		// The count is capped: past the schedule's end it only risks
		// overflowing a shift.
		p.fails, p.last = min(p.fails+1, 64), now
		t.order.MoveToBack(e)
		return
	}
	for t.order.Len() >= t.max {
		t.drop(t.order.Front())
	}
	t.byKey[key] = t.order.PushBack(&penalty{key: key, fails: 1, last: now})
}

// book books the check of an attempt that arrives now from key. A key
// with recent failures allows one check per penalty(fails): the attempt's
// turn is max(now, the key's last booked turn) + its penalty, so the k-th
// of concurrent attempts waits k penalties, however many connections they
// use. When the turn would be more than most away, nothing is booked and
// ok is false: the attempt is not checked at all. A booked turn stands
// even if the key's failures are forgiven meanwhile (a success from the
// key): a success never lets queued guesses through early. A key with no failures is checked
// now, and delayed is false.
func (t *Penalties) book(key string, delay func(fails int) time.Duration, most time.Duration) (turn time.Time, delayed, ok bool) {
	now := time.Now()
	if t == nil || key == "" {
		return now, false, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now = t.now()
	t.expire()
	e, found := t.byKey[key]
	if !found {
		return now, false, true
	}
	p := e.Value.(*penalty)
	d := delay(p.fails)
	if d <= 0 {
		return now, false, true
	}
	turn = p.next
	if turn.Before(now) {
		turn = now
	}
	turn = turn.Add(d)
	if turn.Sub(now) > most {
		return now, true, false
	}
	p.next = turn
	return turn, true, true
}

// Forgive forgets one of key's failures, as a successful login does for
// its address; the entry goes with its last failure. One success cancels
// one failure, not all: a guesser who also holds an account (or shares
// its address with a mail client that polls) cannot wipe its record with
// one good login per burst of guesses, while an office whose user
// mistyped three times is back to no penalty after three logins.
func (t *Penalties) Forgive(key string) {
	if t == nil || key == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[key]; ok {
		p := e.Value.(*penalty)
		if p.fails--; p.fails <= 0 {
			t.drop(e)
		}
	}
}

// len returns the number of entries.
func (t *Penalties) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

// expire drops the entries whose last failure is older than the TTL. They
// are at the front, so this costs one look when nothing expires.
func (t *Penalties) expire() {
	now := t.now()
	for e := t.order.Front(); e != nil && now.Sub(e.Value.(*penalty).last) >= t.ttl; e = t.order.Front() {
		t.drop(e)
	}
}

func (t *Penalties) drop(e *list.Element) {
	p := e.Value.(*penalty)
	delete(t.byKey, p.key)
	t.order.Remove(e)
}

// penaltyDelay is the failure delay after fails recent failures: base,
// then doubling, capped at max — with the defaults (2 s, 15 s) Dovecot's
// 2, 4, 8, 15 s. No failures, no delay.
func penaltyDelay(fails int, base, max time.Duration) time.Duration {
	if fails <= 0 || base <= 0 {
		return 0
	}
	d := base
	for i := 1; i < fails && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
