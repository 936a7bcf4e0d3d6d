package property

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
)

// deliveryPlan is one case of TestDeliveriesAndTwoServers: when the MTA
// delivers, and what each leave-on-server client does in each of its
// sessions.
type deliveryPlan struct {
	Deliveries []int // pause in µs before each delivery
	Clients    [][]sessionPlan
}

// sessionPlan is one session of a client.
type sessionPlan struct {
	Server int  // 0: the in-process server, 1: the pop3d process
	Dele   int  // how many of the messages retrieved in this session to DELE
	Quit   bool // end with QUIT (UPDATE), or drop the connection
	Pause  int  // µs before the session starts
}

func (s sessionPlan) String() string {
	end := "drop"
	if s.Quit {
		end = "QUIT"
	}
	return fmt.Sprintf("{server %d, DELE %d, %s, after %dµs}", s.Server, s.Dele, end, s.Pause)
}

// Shape of a case: up to deliveryMax messages, deliveryClients clients of
// deliverySessions sessions each. Four clients on two servers keep about
// two logins in flight at any time while the MTA delivers, which is what
// the races of issue 11 need; the pauses are short so that a case takes
// about a second.
const (
	deliveryMax      = 40
	deliveryClients  = 4
	deliverySessions = 6
)

func deliveryPlanGen() gopter.Gen {
	session := gopter.CombineGens(gen.IntRange(0, 1), gen.IntRange(0, 3), gen.Bool(), gen.IntRange(0, 4000)).
		Map(func(v []interface{}) sessionPlan {
			return sessionPlan{Server: v[0].(int), Dele: v[1].(int), Quit: v[2].(bool), Pause: v[3].(int)}
		})
	var clients []gopter.Gen
	for i := 0; i < deliveryClients; i++ {
		clients = append(clients, gen.SliceOfN(deliverySessions, session))
	}
	return gopter.CombineGens(gen.SliceOfN(deliveryMax, gen.IntRange(0, 3000)), gopter.CombineGens(clients...)).
		Map(func(v []interface{}) deliveryPlan {
			p := deliveryPlan{Deliveries: v[0].([]int)}
			for _, c := range v[1].([]interface{}) {
				p.Clients = append(p.Clients, c.([]sessionPlan))
			}
			return p
		})
}

// TestDeliveriesAndTwoServers: an MTA delivers (tmp/, then rename into
// new/) while leave-on-server clients poll one Maildir through two servers
// at once, the in-process pop3d and a pop3d process: each session lists
// UIDL, RETRs the messages it has not seen, checks the ones it has with
// TOP n 0, sometimes DELEs a few and QUITs, sometimes drops the
// connection. Every message carries a unique token. Oracles: a message (by
// token) never changes unique-id across sessions, clients and servers; no
// unique-id is ever given to two messages; every delivered message that no
// QUIT removed is still in the maildrop at the end, with its content, and
// listed by both servers; RETR returns the delivered message.
//
// The seed is printed; POP3KIT_PROPERTY_SEED replays the plans (the
// interleaving is the scheduler's). POP3KIT_PROPERTY_RUNS sets the number
// of cases (default 30, about a quarter of a second each; 10 with
// -short).
func TestDeliveriesAndTwoServers(t *testing.T) {
	params := parameters(t)
	if os.Getenv("POP3KIT_PROPERTY_RUNS") == "" {
		params.MinSuccessfulTests = 30
		if testing.Short() {
			params.MinSuccessfulTests = 10 // make race: the plain run has done 30
		}
	}
	params.MaxShrinkCount = 0 // a race does not shrink: the seed replays the plan
	const profile = "exchange2010"
	in := start(t, profile, "PlaintextAuth=always")
	sub, err := startProc(t, in.root, filepath.Join(filepath.Dir(in.root), "passwd"), profile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.stop)
	w := &deliveryWorld{in: in, sub: sub, addrs: [2]string{in.addr, sub.addr}}
	props := gopter.NewProperties(params)
	props.Property("unique-ids stay, nothing unmarked is lost", prop.ForAll(w.run, deliveryPlanGen()))
	check(t, props)
	t.Logf("%d cases: %d sessions on the in-process pop3d, %d on the pop3d process; %d messages delivered, %d DELEs confirmed by QUIT",
		w.cases, w.sessions[0].Load(), w.sessions[1].Load(), w.delivered.Load(), w.removed.Load())
}

// deliveryWorld is the servers a case runs against.
type deliveryWorld struct {
	in    *pop3d
	sub   *proc
	addrs [2]string
	cases int
	// For the summary: sessions per server, messages delivered and
	// removed.
	sessions           [2]atomic.Int64
	delivered, removed atomic.Int64
}

var serverNames = [2]string{"in-process pop3d", "pop3d process"}

// deliveryCase is the shared state of one case.
type deliveryCase struct {
	mu      sync.Mutex
	content map[string][]byte // token → the message as delivered
	uidOf   map[string]string // token → unique-id, as first seen
	tokOf   map[string]string // unique-id → token, as first seen
	firstAt map[string]string // unique-id → who saw it first
	deleted map[string]bool   // tokens a QUIT answered +OK for
	maybe   map[string]bool   // tokens DELE'd before a QUIT that got no answer
	failure string
	failed  atomic.Bool
}

func (c *deliveryCase) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure == "" {
		c.failure = fmt.Sprintf(format, args...)
	}
	c.failed.Store(true)
}

// observe records that who saw the message token under uid, and fails on
// a second unique-id for a message or a second message for a unique-id.
func (c *deliveryCase) observe(uid, token, who string) {
	c.mu.Lock()
	u, seenTok := c.uidOf[token]
	tk, seenUID := c.tokOf[uid]
	first := c.firstAt[uid] // who first saw uid
	firstU := c.firstAt[u]  // who first saw the token's unique-id
	if !seenTok {
		c.uidOf[token] = uid
	}
	if !seenUID {
		c.tokOf[uid], c.firstAt[uid] = token, who
	}
	c.mu.Unlock()
	switch {
	case seenTok && u != uid:
		c.fail("unique-id changed: message %s was %q (first seen by %s) and is %q for %s", token, u, firstU, uid, who)
	case seenUID && tk != token:
		c.fail("one unique-id, two messages: %q was message %s (seen by %s) and is message %s for %s", uid, tk, first, token, who)
	}
}

func (w *deliveryWorld) run(pl deliveryPlan) string {
	w.cases++
	if err := w.in.reset("u", nil); err != nil {
		return err.Error()
	}
	c := &deliveryCase{content: map[string][]byte{}, uidOf: map[string]string{}, tokOf: map[string]string{},
		firstAt: map[string]string{}, deleted: map[string]bool{}, maybe: map[string]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the MTA
		defer wg.Done()
		for i, pause := range pl.Deliveries {
			if c.failed.Load() {
				return
			}
			time.Sleep(time.Duration(pause) * time.Microsecond)
			tok := fmt.Sprintf("T%d-%d-%d", os.Getpid(), w.cases, i)
			m := []byte("X-Token: " + tok + "\nSubject: delivery " + strconv.Itoa(i) + "\n\nbody of " + tok + "\n")
			c.mu.Lock()
			c.content[tok] = m
			c.mu.Unlock()
			if err := w.in.deliver("u", [][]byte{m}); err != nil {
				c.fail("delivering %s: %v", tok, err)
				return
			}
			w.delivered.Add(1)
		}
	}()
	for ci, sessions := range pl.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			known := map[string]string{} // unique-id → token: what this client has downloaded
			for si, sp := range sessions {
				if c.failed.Load() {
					return
				}
				time.Sleep(time.Duration(sp.Pause) * time.Microsecond)
				w.session(c, fmt.Sprintf("client %d session %d %v on the %s", ci, si, sp, serverNames[sp.Server]), sp, known)
			}
		}()
	}
	wg.Wait()
	if c.failed.Load() {
		return c.failure + w.subLog()
	}

	// The end: each server lists every message no QUIT removed, under the
	// unique-id it always had, and each is in the maildrop as delivered.
	var listed [2]map[string]bool
	for s := range w.addrs {
		listed[s] = w.session(c, "the final check on the "+serverNames[s], sessionPlan{Server: s}, map[string]string{})
	}
	if c.failed.Load() {
		return c.failure + w.subLog()
	}
	files, err := w.in.contents("u")
	if err != nil {
		return err.Error()
	}
	stored := map[string][]byte{}
	for _, f := range files {
		stored[tokenOf([]byte(f))] = []byte(f)
	}
	var toks []string
	for tok := range c.content {
		toks = append(toks, tok)
	}
	sort.Strings(toks)
	for _, tok := range toks {
		if c.deleted[tok] || c.maybe[tok] {
			continue
		}
		if got, ok := stored[tok]; !ok || !bytes.Equal(got, c.content[tok]) {
			return fmt.Sprintf("unmarked message lost: %s was delivered and never removed by a QUIT, but the maildrop holds %q for it (%d files left)%s", tok, got, len(files), w.subLog())
		}
		for s := range w.addrs {
			if !listed[s][tok] {
				return fmt.Sprintf("unmarked message not listed: %s is in the maildrop, but the final UIDL of the %s does not list it under its unique-id %q%s", tok, serverNames[s], c.uidOf[tok], w.subLog())
			}
		}
	}
	return ""
}

func (w *deliveryWorld) subLog() string {
	if s := w.sub.stderr.String(); s != "" {
		return "\n\npop3d process log (last 2 kB):\n" + s[max(0, len(s)-2048):]
	}
	return ""
}

// tokenOf reads the X-Token header of a message.
func tokenOf(m []byte) string {
	i := bytes.Index(m, []byte("X-Token: "))
	if i < 0 {
		return ""
	}
	rest := m[i+len("X-Token: "):]
	if j := bytes.IndexAny(rest, "\r\n"); j >= 0 {
		rest = rest[:j]
	}
	return string(rest)
}

// session is one leave-on-server session: UIDL; RETR of every unique-id
// this client has not downloaded, TOP n 0 of the ones it has; DELE of the
// first sp.Dele downloaded now; QUIT or a dropped connection.
func (w *deliveryWorld) session(c *deliveryCase, who string, sp sessionPlan, known map[string]string) (seen map[string]bool) {
	seen = map[string]bool{}
	w.sessions[sp.Server].Add(1)
	// A temporary refusal ([IN-USE], [SYS/TEMP]: a lock held a while by
	// the other server) is retried, as a client would; three in a row
	// fail the case.
	var cl *pop3test.Conn
	var err error
	for try := 0; ; try++ {
		if cl, err = loginAddr(w.addrs[sp.Server], "u"); err == nil {
			break
		}
		if try == 2 || !strings.Contains(err.Error(), "[IN-USE]") && !strings.Contains(err.Error(), "[SYS/TEMP]") {
			c.fail("%s: the mailbox does not open: %v", who, err)
			return seen
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer cl.C.Close()
	ids, err := uidl(cl)
	if err != nil {
		c.fail("%s: %v", who, err)
		return seen
	}
	var nums []int
	for n := range ids {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	var fetched []int
	tokOfNum := map[int]string{}
	for _, n := range nums {
		uid := ids[n]
		if tok, ok := known[uid]; ok {
			r, err := cl.Exchange("TOP " + strconv.Itoa(n) + " 0")
			if err != nil {
				c.fail("%s: TOP %d 0: %v", who, n, err)
				return seen
			}
			if !strings.HasPrefix(r, "+OK") {
				continue // removed by another session since this one's listing
			}
			head, err := cl.ReadData()
			if err != nil {
				c.fail("%s: TOP %d 0: %v", who, n, err)
				return seen
			}
			if got := tokenOf(head); got != tok {
				c.fail("one unique-id, two messages: this client downloaded %s as %q; in %s, UIDL still says %q for message %d but TOP %d 0 gives %s", tok, uid, who, uid, n, n, got)
				return seen
			}
			c.observe(uid, tok, who)
			seen[tok] = true
			continue
		}
		r, err := cl.Exchange("RETR " + strconv.Itoa(n))
		if err != nil {
			c.fail("%s: RETR %d: %v", who, n, err)
			return seen
		}
		if !strings.HasPrefix(r, "+OK") {
			continue // removed by another session since this one's listing
		}
		body, err := cl.ReadData()
		if err != nil {
			c.fail("%s: RETR %d: %v", who, n, err)
			return seen
		}
		tok := tokenOf(body)
		c.mu.Lock()
		want, ok := c.content[tok]
		c.mu.Unlock()
		if !ok || !bytes.Equal(body, testenv.CRLFForm(want)) {
			c.fail("%s: RETR %d (unique-id %q) returned %q, which is no delivered message", who, n, uid, body)
			return seen
		}
		for u, t := range known {
			if t == tok {
				c.fail("one message, two unique-ids: this client downloaded %s as %q and, in %s, again as %q (message %d)", tok, u, who, uid, n)
				return seen
			}
		}
		known[uid] = tok
		c.observe(uid, tok, who)
		seen[tok] = true
		fetched = append(fetched, n)
		tokOfNum[n] = tok
	}
	var marked []string
	for _, n := range fetched[:min(sp.Dele, len(fetched))] {
		r, err := cl.Exchange("DELE " + strconv.Itoa(n))
		if err != nil || !strings.HasPrefix(r, "+OK") {
			c.fail("%s: DELE %d answered %q %v", who, n, r, err)
			return seen
		}
		marked = append(marked, tokOfNum[n])
	}
	if !sp.Quit {
		return seen // the connection drops: nothing is removed
	}
	r, err := cl.Exchange("QUIT")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tok := range marked {
		if err == nil && strings.HasPrefix(r, "+OK") {
			c.deleted[tok] = true
			w.removed.Add(1)
		} else {
			c.maybe[tok] = true
		}
	}
	return seen
}
