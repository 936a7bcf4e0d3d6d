// Package probe tells a live POP3 server's dialect: for each variation of
// the standard table (spec.POP3) — separators, argument limits, lock or
// snapshot, exact or storage sizes, USER's answer, user-name case, UIDL's
// format, CAPA's tags… — a probe that tells its values apart, run over a
// few bounded connections. Probes that need a login use the test account
// given; none removes a message.
//
// Every variation of the table has a probe or a reason it has none
// (noProbe); TestEveryVariationAccountedFor holds a variation added to the
// table to that.
package probe

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/spec"
)

// Options say where the server is and what the probe may use.
type Options struct {
	// Addr is the server's host:port.
	Addr string
	// TLS, when set, connects with implicit TLS (RFC 8314).
	TLS *tls.Config
	// User and Pass are a test account, for the probes that need a
	// login; without them those variations are not told. The account's
	// mail is read (LIST, UIDL, RETR of the first message), never
	// removed.
	User, Pass string
	// Timeout bounds each reply; 0 is 15 s (a server's failure delay
	// comes on top of a reply).
	Timeout time.Duration
	// Progress, when set, is told what the probe does.
	Progress func(what string)
}

// Observation is what a probe told of one variation.
type Observation struct {
	Name string
	// Value is the value seen, as --set takes it; "" when not told.
	Value string
	// Told: Value was seen.
	Told bool
	// How says what showed the value, or why it could not be told.
	How string
}

// Report is a server's dialect as the probes saw it.
type Report struct {
	Addr     string
	Greeting string
	// Capabilities are CAPA's lines before login, when it answered.
	Capabilities []string
	// Variations are the table's, in its order.
	Variations []Observation
	// Codes are the response codes seen ([IN-USE], [AUTH], …).
	Codes []string
}

// Observation returns the report's observation of variation name.
func (r *Report) Observation(name string) (Observation, bool) {
	i := slices.IndexFunc(r.Variations, func(o Observation) bool { return o.Name == name })
	if i < 0 {
		return Observation{}, false
	}
	return r.Variations[i], true
}

// run is one probe run: its options, what earlier probes found, the
// report being built.
type run struct {
	ctx  context.Context
	o    Options
	r    *Report
	seen map[string]Observation
	// userOK and loginOK: whether the test account's USER, and its
	// login, are accepted; nil until asked.
	userOK, loginOK *bool
	// anyName: whether USER answers +OK to a name no server has; nil
	// until asked.
	anyName *bool
	// timestamp is the greeting's APOP timestamp, "" when none.
	timestamp string
}

// probeFunc tells one variation.
type probeFunc func(*run) Observation

// Run probes the server at o.Addr.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	ru := &run{ctx: ctx, o: o, r: &Report{Addr: o.Addr}, seen: map[string]Observation{}}
	c, err := ru.dial()
	if err != nil {
		return nil, err
	}
	ru.r.Greeting, ru.timestamp = c.Greeting(), c.Timestamp()
	if r, err := ru.cmd(c, "CAPA"); err == nil && r.OK() {
		for range maxLines {
			l, err := c.Reader().ReadListLine()
			if err != nil {
				break
			}
			ru.r.Capabilities = append(ru.r.Capabilities, string(l))
		}
	}
	c.Close()
	for _, v := range spec.POP3.Variations {
		if err := ctx.Err(); err != nil {
			return ru.r, err
		}
		var ob Observation
		if p, ok := probes[v.Name]; ok {
			ru.progress(v.Name)
			ob = p(ru)
		} else {
			ob = Observation{How: noProbe[v.Name]}
		}
		ob.Name = v.Name
		ru.seen[v.Name] = ob
		ru.r.Variations = append(ru.r.Variations, ob)
	}
	return ru.r, nil
}

func (ru *run) progress(what string) {
	if ru.o.Progress != nil {
		ru.o.Progress(what)
	}
}

// dial connects and reads the greeting.
func (ru *run) dial() (*pop3.Client, error) {
	d := net.Dialer{Timeout: ru.o.Timeout}
	conn, err := d.DialContext(ru.ctx, "tcp", ru.o.Addr)
	if err != nil {
		return nil, err
	}
	if ru.o.TLS != nil {
		conn = tls.Client(conn, ru.o.TLS)
	}
	_ = conn.SetDeadline(time.Now().Add(ru.o.Timeout))
	// Cancelling the run (pop3probe's Ctrl-C) ends any read under way.
	stop := context.AfterFunc(ru.ctx, func() { _ = conn.SetDeadline(time.Now()) })
	c, err := pop3.NewClient(&stopConn{Conn: conn, stop: stop})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// stopConn is a probe's connection: closing it stops its watch of the
// run's context.
type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// cmd sends line on c and returns the reply, noting its response code.
func (ru *run) cmd(c *pop3.Client, line string) (pop3.Reply, error) {
	if err := ru.ctx.Err(); err != nil {
		return pop3.Reply{}, err
	}
	_ = c.Conn().SetDeadline(time.Now().Add(ru.o.Timeout))
	r, err := c.Cmd(line)
	var refused *pop3.Error // an -ERR: an answer, not a failure
	if err != nil && !errors.As(err, &refused) {
		return r, err
	}
	if len(r.Code) > 0 && !slices.Contains(ru.r.Codes, string(r.Code)) {
		ru.r.Codes = append(ru.r.Codes, string(r.Code))
	}
	return r, nil
}

// fresh runs f on a connection of its own, ended with QUIT before any
// login (nothing is removed) or simply closed.
func (ru *run) fresh(f func(c *pop3.Client) Observation) Observation {
	c, err := ru.dial()
	if err != nil {
		return Observation{How: "could not connect: " + err.Error()}
	}
	defer c.Close()
	return f(c)
}

// login logs in on c as the test account (USER/PASS, as given).
func (ru *run) login(c *pop3.Client, user string) (pop3.Reply, error) {
	if r, err := ru.cmd(c, "USER "+user); err != nil || !r.OK() {
		return r, err
	}
	return ru.cmd(c, "PASS "+ru.o.Pass)
}

// needLogin is the observation of a probe that needs the test account.
var needLogin = Observation{How: "needs a test account (--user, --pass)"}

// randomName is a user name no server has.
func randomName() string { return "probe" + strings.ToLower(rand.Text()[:12]) }

// told is an observation of value v, shown by how.
func told(v, how string, args ...any) Observation {
	return Observation{Value: v, Told: true, How: fmt.Sprintf(how, args...)}
}

// notTold is an observation that could not be made.
func notTold(how string, args ...any) Observation {
	return Observation{How: fmt.Sprintf(how, args...)}
}

func boolean(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// hasCapa reports whether CAPA before login listed tag.
func (ru *run) hasCapa(tag string) bool {
	return slices.ContainsFunc(ru.r.Capabilities, func(l string) bool {
		k, _, _ := strings.Cut(l, " ")
		return strings.EqualFold(k, tag)
	})
}
