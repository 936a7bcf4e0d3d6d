package pop3gen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

// faults decides which backend method fails, and how: it panics, or
// returns an error (a method with no error result returns a value the
// core must refuse: a negative size, a unique-id RFC 1939 forbids). It
// fires once armed and after `after` calls of the method since.
type faults struct {
	mu     sync.Mutex
	method string
	panics bool
	after  int
	armed  bool
	calls  int
	fired  bool
	// removes counts Remove calls that removed something.
	removes int
}

// hit is called at the top of every backend method; it reports whether
// the method must fail now (by error or value), and panics when it must.
func (f *faults) hit(method string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if method != f.method || !f.armed {
		return false
	}
	if f.calls++; f.calls <= f.after {
		return false
	}
	f.fired = true
	if f.panics {
		panic("injected panic in " + method)
	}
	return true
}

// wasFired reports whether the fault was met; the server's goroutine sets
// it.
func (f *faults) wasFired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

func (f *faults) arm() {
	f.mu.Lock()
	f.armed = true
	f.mu.Unlock()
}

var errInjected = errors.New("injected error")

// faultBodies are three messages of three lines each.
var faultBodies = []string{"Subject: 1\n\none\n", "Subject: 2\n\ntwo\n", "Subject: 3\n\nthree\n"}

// faultDrop is a Maildrop, TopOpener and ExactSizer every method of which
// can fail.
type faultDrop struct{ f *faults }

func (d faultDrop) Len() int {
	if d.f.hit("Len") {
		return -1
	}
	return len(faultBodies)
}

func (d faultDrop) Size(i int) int64 {
	if d.f.hit("Size") {
		return -5
	}
	return int64(len(faultBodies[i]) + strings.Count(faultBodies[i], "\n"))
}

func (d faultDrop) ExactSize(i int) int64 {
	if d.f.hit("ExactSize") {
		return -5
	}
	return d.Size(i)
}

func (d faultDrop) UniqueID(i int) string {
	if d.f.hit("UniqueID") {
		return "bad uid"
	}
	return fmt.Sprintf("uid%d", i)
}

func (d faultDrop) Open(i int) (io.ReadCloser, error) {
	if d.f.hit("Open") {
		return nil, errInjected
	}
	return newFaultReader(d.f, faultBodies[i]), nil
}

func (d faultDrop) OpenTop(i int, lines uint32) (io.ReadCloser, error) {
	if d.f.hit("OpenTop") {
		return nil, errInjected
	}
	return newFaultReader(d.f, faultBodies[i]), nil
}

func (d faultDrop) Remove(idx []int) error {
	if d.f.hit("Remove") {
		return errInjected
	}
	d.f.mu.Lock()
	d.f.removes++
	d.f.mu.Unlock()
	return nil
}

func (d faultDrop) Close() error {
	if d.f.hit("Maildrop.Close") {
		return errInjected
	}
	return nil
}

// faultReader reads a message one line at a time, so that a failure of
// its second Read comes after the reply has begun.
type faultReader struct {
	f     *faults
	lines []string
}

func newFaultReader(f *faults, body string) *faultReader {
	return &faultReader{f: f, lines: strings.SplitAfter(body, "\n")}
}

func (r *faultReader) Read(p []byte) (int, error) {
	if r.f.hit("Read") {
		return 0, errInjected
	}
	for len(r.lines) > 0 && r.lines[0] == "" {
		r.lines = r.lines[1:]
	}
	if len(r.lines) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.lines[0])
	r.lines[0] = r.lines[0][n:]
	return n, nil
}

func (r *faultReader) Close() error { return nil }

// faultHandler serves every optional command; each method can fail.
type faultHandler struct{ f *faults }

func (h faultHandler) User(w *pop3.Writer, arg []byte) error {
	if h.f.hit("User") {
		return errInjected
	}
	return nil
}

func (h faultHandler) login(method string) (pop3.Maildrop, error) {
	if h.f.hit(method) {
		return nil, errInjected
	}
	return faultDrop{h.f}, nil
}

func (h faultHandler) Pass(user, secret []byte) (pop3.Maildrop, error) { return h.login("Pass") }
func (h faultHandler) APOP(name, digest []byte) (pop3.Maildrop, error) { return h.login("APOP") }
func (h faultHandler) Authenticated() (pop3.Maildrop, error)           { return h.login("Authenticated") }

func (h faultHandler) Mechanisms() []string {
	if h.f.hit("Mechanisms") {
		return nil
	}
	return []string{"PLAIN"}
}

func (h faultHandler) Auth(mechanism string) (pop3.SASLServer, error) {
	if h.f.hit("Auth") {
		return nil, errInjected
	}
	return faultSASL{h.f}, nil
}

func (h faultHandler) UTF8(w *pop3.Writer) error {
	if h.f.hit("UTF8") {
		return errInjected
	}
	return nil
}

func (h faultHandler) Lang(w *pop3.Writer, arg []byte) error {
	if h.f.hit("Lang") {
		return errInjected
	}
	return nil
}

func (h faultHandler) Close() error {
	if h.f.hit("Handler.Close") {
		return errInjected
	}
	return nil
}

type faultSASL struct{ f *faults }

func (s faultSASL) Next(response []byte) ([]byte, bool, error) {
	if s.f.hit("SASL.Next") {
		return nil, false, errInjected
	}
	return nil, true, nil
}

// TestServeBackendFaults: a panic or an error in any Handler or Maildrop
// method — before a reply begins or in the middle of a listing or a
// message — never crashes the process and never corrupts the wire. Before
// a reply begins the client gets -ERR [SYS/TEMP] (a panic also closes the
// connection); once a status line is out the connection closes with the
// reply cut short and no -ERR inside it, which a client takes for a
// failure rather than for message text. A size or unique-id the core
// cannot state is refused at login. Every failure is logged with its
// command; nothing is removed that was not asked; the next client is
// served. Before, a panic in Maildrop.Close or Handler.Close killed the
// process, and a panic mid-RETR wrote "-ERR [SYS/TEMP]…" into the
// message, which curl saved as its text.
func TestServeBackendFaults(t *testing.T) {
	clause.Covers(t, "RFC3206-4-SYS")
	login := []string{"USER alice", "PASS secret"}
	const internal = "-ERR [SYS/TEMP] internal server error"
	cases := []struct {
		method string
		after  int
		// armAfter are the commands sent before the fault is armed;
		// then is the command that meets it.
		armAfter []string
		then     string
		// errReply is the reply when the method returns an error (or a
		// bad value): a status line, or "cut" for a reply cut short.
		errReply string
		// midReply: the failure comes after the reply began, whether it
		// panics or not.
		midReply bool
		// storageSizes turns ExactSizes off, so that RETR asks ExactSize.
		storageSizes bool
	}{
		{method: "User", then: "USER alice", errReply: internal},
		{method: "Pass", armAfter: login[:1], then: "PASS secret", errReply: internal},
		{method: "APOP", then: "APOP alice 0123456789abcdef0123456789abcdef", errReply: internal},
		// Mechanisms has no error: its bad value is offering none.
		{method: "Mechanisms", then: "AUTH PLAIN AGFsaWNlAHNlY3JldA==", errReply: "-ERR unsupported SASL mechanism"},
		{method: "Auth", then: "AUTH PLAIN AGFsaWNlAHNlY3JldA==", errReply: internal},
		{method: "SASL.Next", then: "AUTH PLAIN AGFsaWNlAHNlY3JldA==", errReply: internal},
		{method: "Authenticated", then: "AUTH PLAIN AGFsaWNlAHNlY3JldA==", errReply: internal},
		{method: "UTF8", then: "UTF8", errReply: internal},
		{method: "Lang", then: "LANG en", errReply: internal},
		{method: "Len", armAfter: login[:1], then: "PASS secret", errReply: "-ERR [SYS/TEMP] the maildrop could not be opened"},
		{method: "Size", armAfter: login[:1], then: "PASS secret", errReply: "-ERR [SYS/TEMP] the maildrop could not be opened"},
		{method: "UniqueID", armAfter: login[:1], then: "PASS secret", errReply: "-ERR [SYS/TEMP] the maildrop could not be opened"},
		// LIST states the totals (3 calls of Size), then lists: the 5th
		// call is the second listing line's.
		{method: "Size", after: 4, armAfter: login, then: "LIST", errReply: "cut", midReply: true},
		{method: "UniqueID", after: 1, armAfter: login, then: "UIDL", errReply: "cut", midReply: true},
		{method: "ExactSize", storageSizes: true, armAfter: login, then: "RETR 1", errReply: "+OK message follows"},
		{method: "Open", armAfter: login, then: "RETR 1", errReply: "-ERR [SYS/TEMP] message cannot be read now"},
		{method: "Read", after: 1, armAfter: login, then: "RETR 1", errReply: "cut", midReply: true},
		{method: "OpenTop", armAfter: login, then: "TOP 1 1", errReply: "-ERR [SYS/TEMP] message cannot be read now"},
		{method: "Read", after: 1, armAfter: login, then: "TOP 2 5", errReply: "cut", midReply: true},
		{method: "Remove", armAfter: append(append([]string{}, login...), "DELE 1"), then: "QUIT", errReply: "-ERR [SYS/TEMP] some messages marked deleted could not be removed"},
		{method: "Maildrop.Close", armAfter: login, then: "QUIT", errReply: "+OK signing off (0 messages removed)"},
		{method: "Handler.Close", then: "QUIT", errReply: "+OK"},
	}
	for _, tc := range cases {
		for _, panics := range []bool{false, true} {
			name := tc.method + "/" + tc.then + "/error"
			if panics {
				name = tc.method + "/" + tc.then + "/panic"
			}
			t.Run(name, func(t *testing.T) {
				f := &faults{method: tc.method, panics: panics, after: tc.after}
				v := RFC1939()
				v.APOP, v.UTF8, v.LANG = true, true, true
				v.ExactSizes = !tc.storageSizes
				var logs bytes.Buffer
				var logMu sync.Mutex
				srv := &pop3.Server{
					Dialect: &v,
					// Replies at once: the failure delay is TestLoginPolicy's.
					LoginPolicy: pop3.LoginPolicy{Off: true},
					Trusted:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
					Log:         slog.New(slog.NewTextHandler(&lockedWriter{mu: &logMu, w: &logs}, nil)),
					NewHandler:  func(c *pop3.Conn) (pop3.Handler, error) { return faultHandler{f}, nil },
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				go func() { _ = srv.Serve(ln) }()
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					require.NoError(t, srv.Shutdown(ctx))
				}()
				c := rawClient(t, ln.Addr().String())
				require.True(t, strings.HasPrefix(c.Line(), "+OK"))
				for _, l := range tc.armAfter {
					require.True(t, strings.HasPrefix(c.Cmd(l), "+OK"), l)
				}
				f.arm()
				require.NoError(t, c.WriteLine(tc.then))
				rest := c.Rest()
				first, _, _ := strings.Cut(rest, "\r\n")
				switch {
				case tc.midReply:
					require.True(t, strings.HasPrefix(first, "+OK"), "the reply had begun: %q", rest)
					assert.NotContains(t, rest, "-ERR", "nothing is written into a reply that has begun")
					assert.False(t, strings.HasSuffix(rest, "\r\n.\r\n"), "the reply is cut short, not ended: %q", rest)
				case panics && tc.method == "Handler.Close":
					// After the session: its reply is out.
					assert.True(t, strings.HasPrefix(first, "+OK"), "%q", rest)
				case panics:
					assert.Equal(t, internal, first)
					assert.Equal(t, first+"\r\n", rest, "a panic closes the connection after its reply")
				default:
					assert.True(t, strings.HasPrefix(first, tc.errReply), "want %q, got %q", tc.errReply, rest)
				}
				assert.True(t, f.wasFired(), "the fault was met")
				logMu.Lock()
				logged := logs.String()
				logMu.Unlock()
				switch {
				case panics:
					assert.Contains(t, logged, "injected panic in "+tc.method)
				case tc.method == "Mechanisms", tc.method == "ExactSize":
					// A bad value the core works around, not a failure.
				default:
					assert.Regexp(t, "injected error|returned|cut short", logged, "the failure is logged")
				}
				if tc.method != "Remove" {
					f.mu.Lock()
					removes := f.removes
					f.mu.Unlock()
					assert.Zero(t, removes, "nothing was removed")
				}
				// The process goes on and serves the next client.
				f.mu.Lock()
				f.armed = false
				f.mu.Unlock()
				next := rawClient(t, ln.Addr().String())
				assert.True(t, strings.HasPrefix(next.Line(), "+OK"))
				assert.True(t, strings.HasPrefix(next.Cmd("NOOP"), "-ERR"), "the next session runs")
			})
		}
	}
}

// lockedWriter serializes writes into w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// rawClient connects to addr: a connection of the tests' one client
// (internal/pop3test), the greeting not read yet.
func rawClient(t *testing.T, addr string) *pop3test.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return pop3test.New(t, c)
}

// TestConnContext: Conn.Context is cancelled when the connection ends,
// when it is kicked, and when the server begins to shut down, so that a
// Handler's waits end with it and no goroutine polls for it.
func TestConnContext(t *testing.T) {
	conns := make(chan *pop3.Conn, 3)
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.NewHandler = func(c *pop3.Conn) (pop3.Handler, error) { conns <- c; return newRecorder(), nil }
	})
	done := func(c *pop3.Conn) bool {
		select {
		case <-c.Context().Done():
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}

	cl := rt.dial()
	cl.Line()
	c := <-conns
	assert.NoError(t, c.Context().Err(), "live")
	cl.C.Close()
	assert.True(t, done(c), "cancelled when the client goes")

	cl = rt.dial()
	cl.Line()
	c = <-conns
	c.Kick()
	assert.True(t, done(c), "cancelled when kicked")

	cl = rt.dial()
	cl.Line()
	c = <-conns
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _ = rt.srv.Shutdown(ctx) }()
	assert.True(t, done(c), "cancelled when the server shuts down")
}

// TestServeRefusesUnusableServer: a Server that cannot serve says so from
// Serve, before it accepts anyone: no NewHandler, the zero Variations, a
// variation out of range. Before, it greeted and hung up.
func TestServeRefusesUnusableServer(t *testing.T) {
	for name, srv := range map[string]*pop3.Server{
		"no NewHandler":      {Dialect: dialect(RFC1939())},
		"zero Variations":    {NewHandler: func(*pop3.Conn) (pop3.Handler, error) { return newRecorder(), nil }},
		"MaxCommandOctets 1": {Dialect: func() *Variations { v := RFC1939(); v.MaxCommandOctets = 1; return &v }(), NewHandler: func(*pop3.Conn) (pop3.Handler, error) { return newRecorder(), nil }},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		err = srv.Serve(ln)
		assert.Error(t, err, name)
		t.Logf("%s: %v", name, err)
		_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		assert.Error(t, err, "%s: the listener is closed, nobody is greeted", name)
	}
}

// TestServeNoInsecureAuthByDefault: a Server that does not say
// AllowInsecureAuth refuses USER/PASS and plaintext SASL over a plain
// connection from an untrusted network, even under a profile whose
// PlaintextAuth is always (rfc1939), and offers neither in CAPA; a
// trusted network, or AllowInsecureAuth, lets them through (MS-STANXPOP3
// V0010). Before, a Server built from the README's template took
// passwords in the clear from anywhere.
func TestServeNoInsecureAuthByDefault(t *testing.T) {
	clause.Covers(t, "V0010")
	for _, tc := range []struct {
		name      string
		configure func(*pop3.Server)
		ok        bool
	}{
		{"default", func(s *pop3.Server) { s.Trusted = nil }, false},
		{"trusted loopback", nil, true},
		{"AllowInsecureAuth", func(s *pop3.Server) { s.Trusted, s.AllowInsecureAuth = nil, true }, true},
	} {
		rt := newRuntime(t, RFC1939(), tc.configure)
		c := rt.dial()
		c.Line()
		c.Cmd("CAPA")
		var capa []string
		for l := c.Line(); l != "."; l = c.Line() {
			capa = append(capa, l)
		}
		user := c.Cmd("USER alice")
		plain := c.Cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
		if tc.ok {
			assert.Contains(t, capa, "USER", tc.name)
			assert.Equal(t, "+OK", user, tc.name)
			assert.True(t, strings.HasPrefix(plain, "+OK"), "%s: %s", tc.name, plain)
		} else {
			assert.NotContains(t, capa, "USER", tc.name)
			assert.NotContains(t, capa, "SASL PLAIN", tc.name)
			assert.Equal(t, "-ERR [AUTH] "+pop3.ErrPlaintextRefused.Text, user, tc.name)
			assert.Equal(t, "-ERR [AUTH] "+pop3.ErrPlaintextRefused.Text, plain, tc.name)
		}
	}
}

// ownedDrop is a memDrop that names its user.
type ownedDrop struct {
	*memDrop
	owner string
}

func (d ownedDrop) Owner() string { return d.owner }

// ownerHandler logs anyone in by USER/PASS, and by AUTH PLAIN as the
// recorder does, never calling Conn.Login: the runtime counts the session
// for the per-user limit itself.
type ownerHandler struct{ *recorder }

func (h ownerHandler) Pass(user, secret []byte) (pop3.Maildrop, error) {
	return &memDrop{bodies: recorderBodies}, nil
}

func (h ownerHandler) Authenticated() (pop3.Maildrop, error) {
	return ownedDrop{&memDrop{bodies: recorderBodies}, "alice"}, nil
}

// TestServeMaxSessionsPerUserWithoutHandler: MaxSessionsPerUser holds for
// every login, PASS (under USER's name) and AUTH (under the maildrop's
// Owner), though the Handler never calls Conn.Login; a session that ends
// gives its place back. Before, the limit did nothing unless the handler
// called Conn.Login.
func TestServeMaxSessionsPerUserWithoutHandler(t *testing.T) {
	rt := newRuntime(t, Exchange2010(), func(s *pop3.Server) {
		s.MaxSessionsPerUser = 1
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) { return ownerHandler{newRecorder()}, nil }
	})
	first := rt.dial()
	first.Line()
	first.Cmd("USER Alice")
	assert.True(t, strings.HasPrefix(first.Cmd("PASS x"), "+OK"))
	second := rt.dial()
	second.Line()
	second.Cmd("USER alice") // UserNameCase=lower: the same user
	assert.Equal(t, "-ERR [IN-USE] too many sessions for this user (the limit is 1), try again later", second.Cmd("PASS x"))
	third := rt.dial()
	third.Line()
	assert.Equal(t, "-ERR [IN-USE] too many sessions for this user (the limit is 1), try again later", third.Cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
		"AUTH counts under the maildrop's Owner")
	first.Cmd("QUIT")
	assert.Eventually(t, func() bool {
		c := rt.dial()
		c.Line()
		return strings.HasPrefix(c.Cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), "+OK")
	}, 5*time.Second, 20*time.Millisecond, "the place is given back")
}

// TestServeMaxSessionsPerUserByDefault: a Server that says nothing about
// the per-user limit has one (10), and counts an APOP login under APOP's
// own name, with no Owner on the maildrop and no Conn.Login from the
// Handler.
func TestServeMaxSessionsPerUserByDefault(t *testing.T) {
	rt := newRuntime(t, RFC1939(), nil)
	apop := func() string {
		c := rt.dial()
		c.Line()
		return c.Cmd("APOP alice 0123456789abcdef0123456789abcdef") // the recorder takes any digest
	}
	for i := range 10 {
		require.True(t, strings.HasPrefix(apop(), "+OK"), "login %d", i+1)
	}
	assert.Equal(t, "-ERR [IN-USE] too many sessions for this user (the limit is 10), try again later", apop())
}
