package property

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"

	pop3fuzz "github.com/pop3kit/pop3kit/fuzz"
	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// lineGen makes message lines, weighted towards the ones that matter to
// POP3: lines starting with ".", a lone ".", empty lines, CR alone, 8-bit.
func lineGen() gopter.Gen {
	return gen.OneGenOf(
		gen.OneConstOf(".", "..", "", ".x", "Subject: hi", "\r", "a\rb", "\xc3\xa9t\xe9", "x\x00y", " leading space"),
		gen.AlphaString(),
	)
}

// messageGen makes stored messages: lines joined by LF or CRLF, with or
// without a final line break, or raw octets.
func messageGen() gopter.Gen {
	structured := gopter.CombineGens(gen.SliceOf(lineGen()), gen.OneConstOf("\n", "\r\n"), gen.Bool()).Map(func(v []interface{}) []byte {
		s := strings.Join(v[0].([]string), v[1].(string))
		if v[2].(bool) && s != "" {
			s += v[1].(string)
		}
		return []byte(s)
	})
	raw := gen.SliceOf(gen.UInt8()).Map(func(b []uint8) []byte { return b })
	return gen.OneGenOf(structured, structured, raw)
}

func messagesGen(max int) gopter.Gen {
	return gen.SliceOf(messageGen()).Map(func(m [][]byte) [][]byte { return m[:min(len(m), max)] })
}

// TestNeverDeleteUnmarked: in random sessions of DELE, RSET, NOOP, STAT
// and LIST ended by QUIT or by a dropped connection, pop3d answers DELE as
// a model of the maildrop says, and afterwards exactly the messages the
// model marked are gone, and only after QUIT. No unmarked message is ever
// removed (RFC 1939 §6, MS-STANXPOP3 V0006).
func TestNeverDeleteUnmarked(t *testing.T) {
	clause.Covers(t, "V0006")
	params := parameters(t)
	for _, profile := range []string{"rfc1939", "exchange2010"} {
		p := start(t, profile)
		props := gopter.NewProperties(params)
		action := gen.OneGenOf(
			gen.IntRange(0, 7).Map(func(n int) string { return "DELE " + strconv.Itoa(n) }),
			gen.OneConstOf("RSET", "NOOP", "STAT", "LIST 1"),
		)
		props.Property(profile, prop.ForAll(func(msgs [][]byte, actions []string, quit bool) string {
			if err := p.reset("u", msgs); err != nil {
				return err.Error()
			}
			c, err := p.login("u")
			if err != nil {
				return err.Error()
			}
			marked := map[int]bool{}
			for _, a := range actions {
				r, err := c.Exchange(a)
				if err != nil {
					return err.Error()
				}
				if strings.HasPrefix(a, "DELE ") {
					n, _ := strconv.Atoi(a[5:])
					want := n >= 1 && n <= len(msgs) && !marked[n]
					if want != strings.HasPrefix(r, "+OK") {
						return fmt.Sprintf("%s answered %q, the model says ok=%v", a, r, want)
					}
					if want {
						marked[n] = true
					}
				}
				if a == "RSET" {
					marked = map[int]bool{}
				}
			}
			if quit {
				if r, err := c.Exchange("QUIT"); err != nil || !strings.HasPrefix(r, "+OK") {
					return fmt.Sprintf("QUIT: %q %v", r, err)
				}
				_, _ = c.ReadRaw() // EOF: the session has ended
			}
			c.C.Close()
			if err := p.reset("nobody-"+strconv.FormatBool(quit), nil); err != nil { // waits for the session to end
				return err.Error()
			}
			left, err := p.contents("u")
			if err != nil {
				return err.Error()
			}
			var want []string
			for i, m := range msgs {
				if !(quit && marked[i+1]) {
					want = append(want, string(m))
				}
			}
			if !slices.Equal(left, want) {
				return fmt.Sprintf("left %d messages, want %d (marked %v, quit %v)", len(left), len(want), marked, quit)
			}
			return ""
		}, messagesGen(6), gen.SliceOf(action), gen.Bool()))
		check(t, props)
	}
}

// sanitize makes one command line of an arbitrary string.
func sanitize(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// TestRepliesWithin512: for arbitrary mailboxes, user names and command
// lines, every status line and listing line pop3d sends is at most 512
// octets with its CRLF (RFC 1939 §3, MS-STANXPOP3 C0001); message data is
// exempt, as it is the message.
func TestRepliesWithin512(t *testing.T) {
	clause.Covers(t, "C0001")
	params := parameters(t)
	p := start(t, "exchange2010", "PlaintextAuth=always", "MaxCommandOctets=1024")
	v := p.srv.Variations()
	props := gopter.NewProperties(params)
	long := gen.OneGenOf(gen.AnyString(), gen.IntRange(0, 3000).Map(func(n int) string { return strings.Repeat("x", n) }))
	cmd := gen.OneGenOf(long, gen.OneConstOf("CAPA", "STAT", "LIST", "UIDL", "LANG", "AUTH", "RETR 1", "TOP 1 3", "USER", "NOOP"),
		long.Map(func(s string) string { return "USER " + s }), long.Map(func(s string) string { return "LIST " + s }))
	props.Property("status and listing lines", prop.ForAll(func(msgs [][]byte, user string, cmds []string) string {
		if err := p.reset("u", msgs); err != nil {
			return err.Error()
		}
		c, err := p.dial()
		if err != nil {
			return err.Error()
		}
		defer c.C.Close()
		script := append([]string{"USER " + sanitize(user), "PASS pw", "USER u", "PASS pw"}, cmds...)
		sasl := false
		for _, raw := range script {
			line := sanitize(raw)
			if _, err := c.C.Write([]byte(line + "\r\n")); err != nil {
				return ""
			}
			status, err := c.ReadRaw()
			if err != nil {
				return "" // the server closed (too many errors): fine
			}
			if len(status) > pop3.MaxReplyOctets {
				return fmt.Sprintf("%.30q: status line of %d octets", line, len(status))
			}
			parsed, errs := pop3fuzz.Reference([]byte(line+"\r\n"), &v, 0)
			wasSASL := sasl
			sasl = strings.HasPrefix(status, "+ ")
			if strings.HasPrefix(status, "+OK") && !wasSASL && len(errs) == 0 && pop3fuzz.MultiLine(parsed) {
				data := parsed.Cmd == pop3gen.CmdRETR || parsed.Cmd == pop3gen.CmdTOP
				for {
					l, err := c.ReadRaw()
					if err != nil {
						return "multi-line reply cut: " + err.Error()
					}
					if l == ".\r\n" {
						break
					}
					if !data && len(l) > pop3.MaxReplyOctets {
						return fmt.Sprintf("%.30q: listing line of %d octets", line, len(l))
					}
				}
			}
		}
		return ""
	}, messagesGen(4), gen.AnyString(), gen.SliceOf(cmd).Map(func(c []string) []string { return c[:min(len(c), 12)] })))
	check(t, props)
}

// TestRetrIsTheStoredMessage: for arbitrary message octets — lines that
// start with ".", a lone ".", no final newline, CR alone, 8-bit, empty —
// RETR returns exactly the stored message in CRLF form, and LIST's exact
// size counts it (RFC 1939 §3 and §5).
func TestRetrIsTheStoredMessage(t *testing.T) {
	params := parameters(t)
	p := start(t, "rfc1939")
	props := gopter.NewProperties(params)
	props.Property("RETR = CRLF form", prop.ForAll(func(msg []byte) string {
		if err := p.reset("u", [][]byte{msg}); err != nil {
			return err.Error()
		}
		c, err := p.login("u")
		if err != nil {
			return err.Error()
		}
		defer c.C.Close()
		r, err := c.Exchange("RETR 1")
		if err != nil || !strings.HasPrefix(r, "+OK") {
			return fmt.Sprintf("RETR: %q %v", r, err)
		}
		got, err := c.ReadData()
		if err != nil {
			return err.Error()
		}
		want := testenv.CRLFForm(msg)
		if !bytes.Equal(got, want) {
			return fmt.Sprintf("RETR gave %q, want %q", got, want)
		}
		exact := len(want)
		if len(msg) > 0 && msg[len(msg)-1] != '\n' {
			exact -= 2 // the CRLF the server adds to end the reply is not the message's
		}
		if r, _ := c.Exchange("LIST 1"); r != "+OK 1 "+strconv.Itoa(exact) {
			return fmt.Sprintf("LIST 1: %q, want size %d", r, exact)
		}
		return ""
	}, messageGen()))
	check(t, props)
}

// uidl returns the unique-id listing as message number → uid.
func uidl(c *pop3test.Conn) (map[int]string, error) {
	if r, err := c.Exchange("UIDL"); err != nil || !strings.HasPrefix(r, "+OK") {
		return nil, fmt.Errorf("UIDL: %q %v", r, err)
	}
	lines, err := c.ReadLines()
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, l := range lines {
		n, uid, _ := strings.Cut(l, " ")
		i, _ := strconv.Atoi(n)
		out[i] = uid
	}
	return out, nil
}

// TestUIDLs: over rounds of deliveries and deletions, unique-ids are
// unique within a listing, stable for a message across sessions, and never
// given again: every new message's id is above every id seen before
// (MS-STANXPOP3 C0007, C0008, C0009).
func TestUIDLs(t *testing.T) {
	clause.Covers(t, "C0007", "C0008", "C0009")
	params := parameters(t)
	params.MinSuccessfulTests = max(params.MinSuccessfulTests/3, 10)
	p := start(t, "exchange2010")
	props := gopter.NewProperties(params)
	round := gopter.CombineGens(gen.IntRange(0, 4), gen.SliceOf(gen.IntRange(1, 8)))
	props.Property("unique, stable, never reused", prop.ForAll(func(rounds [][]interface{}) string {
		if err := p.reset("u", nil); err != nil {
			return err.Error()
		}
		uidOf := map[string]string{} // message content → uid
		maxUID := 0
		serial := 0
		for _, rv := range rounds {
			var fresh [][]byte
			for i := 0; i < rv[0].(int); i++ {
				serial++
				fresh = append(fresh, []byte(fmt.Sprintf("Subject: %d\n\nmessage %d\n", serial, serial)))
			}
			if err := p.deliver("u", fresh); err != nil {
				return err.Error()
			}
			c, err := p.login("u")
			if err != nil {
				return err.Error()
			}
			ids, err := uidl(c)
			if err != nil {
				return err.Error()
			}
			seen := map[string]bool{}
			newMax := maxUID
			for n, uid := range ids {
				if seen[uid] {
					c.C.Close()
					return "uid " + uid + " listed twice"
				}
				seen[uid] = true
				if rr, _ := c.Exchange("RETR " + strconv.Itoa(n)); !strings.HasPrefix(rr, "+OK") {
					c.C.Close()
					return "RETR: " + rr
				}
				body, _ := c.ReadData()
				key := string(body)
				if old, ok := uidOf[key]; ok && old != uid {
					c.C.Close()
					return fmt.Sprintf("message %q changed uid %s → %s", key, old, uid)
				}
				u, _ := strconv.Atoi(uid)
				if _, ok := uidOf[key]; !ok {
					if u <= maxUID {
						c.C.Close()
						return fmt.Sprintf("new message got uid %d, not above %d", u, maxUID)
					}
					uidOf[key] = uid
				}
				newMax = max(newMax, u)
			}
			maxUID = newMax
			for _, d := range rv[1].([]int) {
				_, _ = c.Exchange("DELE " + strconv.Itoa(d))
			}
			_, _ = c.Exchange("QUIT")
			_, _ = c.ReadRaw()
			c.C.Close()
		}
		return ""
	}, gen.SliceOf(round).Map(func(r [][]interface{}) [][]interface{} { return r[:min(len(r), 5)] })))
	check(t, props)
}

// TestStatAndTop: STAT is the sum of LIST, exact or storage sizes alike
// (MS-STANXPOP3 §2.1.4, §2.1.5), and TOP n k is a prefix of RETR n
// (RFC 1939 §7).
func TestStatAndTop(t *testing.T) {
	params := parameters(t)
	for _, profile := range []string{"rfc1939", "exchange2010"} {
		p := start(t, profile)
		props := gopter.NewProperties(params)
		props.Property(profile, prop.ForAll(func(msgs [][]byte, k int) string {
			if err := p.reset("u", msgs); err != nil {
				return err.Error()
			}
			c, err := p.login("u")
			if err != nil {
				return err.Error()
			}
			defer c.C.Close()
			stat, _ := c.Exchange("STAT")
			if r, _ := c.Exchange("LIST"); !strings.HasPrefix(r, "+OK") {
				return "LIST: " + r
			}
			lines, err := c.ReadLines()
			if err != nil {
				return err.Error()
			}
			sum := 0
			for _, l := range lines {
				_, size, _ := strings.Cut(l, " ")
				n, _ := strconv.Atoi(size)
				sum += n
			}
			if want := fmt.Sprintf("+OK %d %d", len(lines), sum); stat != want {
				return fmt.Sprintf("STAT %q, sum of LIST %q", stat, want)
			}
			for n := 1; n <= len(msgs); n++ {
				if r, _ := c.Exchange(fmt.Sprintf("TOP %d %d", n, k)); !strings.HasPrefix(r, "+OK") {
					return "TOP: " + r
				}
				top, _ := c.ReadData()
				_, _ = c.Exchange(fmt.Sprintf("RETR %d", n))
				all, _ := c.ReadData()
				// TOP may end the last line it sends with the CRLF the
				// reply needs; compare without it.
				if !bytes.HasPrefix(all, bytes.TrimSuffix(top, []byte("\r\n"))) {
					return fmt.Sprintf("TOP %d %d = %q is not a prefix of RETR %q", n, k, top, all)
				}
			}
			return ""
		}, messagesGen(4), gen.IntRange(0, 5)))
		check(t, props)
	}
}

// transcriptLine reads a whole reply (status and data) to a command.
func transcriptReply(c *pop3test.Conn, line string, v *pop3gen.Variations, sasl *bool) (string, error) {
	status, err := c.ReadRaw()
	if err != nil {
		return "", err
	}
	out := status
	parsed, errs := pop3fuzz.Reference([]byte(line+"\r\n"), v, 0)
	was := *sasl
	*sasl = strings.HasPrefix(status, "+ ")
	if strings.HasPrefix(status, "+OK") && !was && len(errs) == 0 && pop3fuzz.MultiLine(parsed) {
		for {
			l, err := c.ReadRaw()
			if err != nil {
				return out, err
			}
			out += l
			if l == ".\r\n" {
				break
			}
		}
	}
	return out, nil
}

// TestPipelinedEqualsSequential: the same commands give the same replies
// whether sent one at a time or all in one write (RFC 2449 §6.6
// PIPELINING), on two maildrops with the same messages.
func TestPipelinedEqualsSequential(t *testing.T) {
	params := parameters(t)
	p := start(t, "exchange2010")
	v := p.srv.Variations()
	props := gopter.NewProperties(params)
	vocab := gen.OneGenOf(
		gen.OneConstOf("STAT", "LIST", "UIDL", "NOOP", "RSET", "CAPA", "BOGUS", "RETR", "DELE 0"),
		gen.IntRange(0, 5).Map(func(n int) string { return "RETR " + strconv.Itoa(n) }),
		gen.IntRange(0, 5).Map(func(n int) string { return "DELE " + strconv.Itoa(n) }),
		gen.IntRange(0, 5).Map(func(n int) string { return "LIST " + strconv.Itoa(n) }),
		gen.IntRange(0, 5).Map(func(n int) string { return "TOP " + strconv.Itoa(n) + " 1" }),
	)
	props.Property("same replies", prop.ForAll(func(msgs [][]byte, cmds []string) string {
		script := append(append([]string{"USER a", "PASS pw"}, cmds[:min(len(cmds), 15)]...), "QUIT")
		if err := p.reset("a", msgs); err != nil {
			return err.Error()
		}
		if err := p.reset("b", msgs); err != nil {
			return err.Error()
		}
		// One at a time.
		c, err := p.dial()
		if err != nil {
			return err.Error()
		}
		var seq strings.Builder
		sasl := false
		for _, l := range script {
			if _, err := c.C.Write([]byte(l + "\r\n")); err != nil {
				break
			}
			r, err := transcriptReply(c, l, &v, &sasl)
			seq.WriteString(r)
			if err != nil {
				break
			}
		}
		c.C.Close()
		// All at once, as user b.
		c, err = p.dial()
		if err != nil {
			return err.Error()
		}
		defer c.C.Close()
		all := strings.Join(script, "\r\n") + "\r\n"
		all = strings.Replace(all, "USER a", "USER b", 1)
		go func() { _, _ = c.C.Write([]byte(all)) }()
		var pipe strings.Builder
		for {
			l, err := c.ReadRaw()
			pipe.WriteString(l)
			if err != nil {
				break
			}
		}
		if seq.String() != pipe.String() {
			return fmt.Sprintf("one at a time:\n%s\npipelined:\n%s", seq.String(), pipe.String())
		}
		return ""
	}, messagesGen(4), gen.SliceOf(vocab)))
	check(t, props)
}

// TestSnapshotIsolation: under Exchange two sessions share a maildrop;
// when one removes messages, the other sees it only as -ERR on RETR and
// TOP of those messages: its numbering, LIST and STAT do not change
// (MS-STANXPOP3 C0004).
func TestSnapshotIsolation(t *testing.T) {
	clause.Covers(t, "C0004", "C0005")
	params := parameters(t)
	p := start(t, "exchange2010")
	props := gopter.NewProperties(params)
	props.Property("deletions show only as -ERR", prop.ForAll(func(msgs [][]byte, del []int) string {
		if len(msgs) == 0 {
			return ""
		}
		if err := p.reset("u", msgs); err != nil {
			return err.Error()
		}
		a, err := p.login("u")
		if err != nil {
			return err.Error()
		}
		defer a.C.Close()
		statBefore, _ := a.Exchange("STAT")
		_, _ = a.Exchange("LIST")
		listBefore, _ := a.ReadLines()
		b, err := p.login("u")
		if err != nil {
			return err.Error()
		}
		gone := map[int]bool{}
		// Distinct numbers: repeating a DELE is an error, and twenty in a
		// row end the session (MS-STANXPOP3 C0005), which is not what this
		// property is about.
		slices.Sort(del)
		for _, d := range slices.Compact(del) {
			if r, _ := b.Exchange("DELE " + strconv.Itoa(d)); strings.HasPrefix(r, "+OK") {
				gone[d] = true
			}
		}
		if r, _ := b.Exchange("QUIT"); !strings.HasPrefix(r, "+OK") {
			return "QUIT: " + r
		}
		_, _ = b.ReadRaw()
		b.C.Close()
		if s, _ := a.Exchange("STAT"); s != statBefore {
			return fmt.Sprintf("STAT changed: %q → %q", statBefore, s)
		}
		_, _ = a.Exchange("LIST")
		if l, _ := a.ReadLines(); !slices.Equal(l, listBefore) {
			return fmt.Sprintf("LIST changed: %v → %v", listBefore, l)
		}
		for n := 1; n <= len(msgs); n++ {
			for _, cmd := range []string{"RETR %d", "TOP %d 0"} {
				r, _ := a.Exchange(fmt.Sprintf(cmd, n))
				switch {
				case gone[n] && r != "-ERR message was removed by another session since login":
					return fmt.Sprintf(cmd+" of a removed message: %q", n, r)
				case !gone[n] && !strings.HasPrefix(r, "+OK"):
					return fmt.Sprintf(cmd+": %q", n, r)
				case !gone[n]:
					body, _ := a.ReadData()
					if cmd == "RETR %d" && !bytes.Equal(body, testenv.CRLFForm(msgs[n-1])) {
						return fmt.Sprintf("RETR %d gave another message", n)
					}
				}
			}
		}
		return ""
	}, messagesGen(5), gen.SliceOf(gen.IntRange(1, 5))))
	check(t, props)
}
