package pop3gen

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

// runtimeT is a Server on loopback with recorder handlers.
type runtimeT struct {
	t    *testing.T
	srv  *pop3.Server
	addr string
	mu   sync.Mutex
	hs   []*recorder
}

func newRuntime(t *testing.T, v Variations, configure func(*pop3.Server)) *runtimeT {
	t.Helper()
	rt := &runtimeT{t: t}
	rt.srv = &pop3.Server{
		Dialect:  &v,
		Greeting: "test ready",
		Hostname: "pop3gen.test",
		Trusted:  []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		NewHandler: func(c *pop3.Conn) (pop3.Handler, error) {
			r := newRecorder()
			rt.mu.Lock()
			rt.hs = append(rt.hs, r)
			rt.mu.Unlock()
			return r, nil
		},
	}
	if configure != nil {
		configure(rt.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rt.addr = ln.Addr().String()
	go func() { _ = rt.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, rt.srv.Shutdown(ctx))
	})
	return rt
}

// dial connects to the runtime: a connection of the tests' one client
// (internal/pop3test), the greeting not read yet.
func (rt *runtimeT) dial() *pop3test.Conn {
	rt.t.Helper()
	c, err := net.Dial("tcp", rt.addr)
	require.NoError(rt.t, err)
	rt.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return pop3test.New(rt.t, c)
}

// TestServeGreetingAndSession: the runtime greets (with the APOP
// timestamp where APOP is on, RFC1939-7-APOP), feeds lines to the session
// and closes after QUIT.
func TestServeGreetingAndSession(t *testing.T) {
	clause.Covers(t, "RFC1939-7-APOP", "RFC1939-4-QUIT")
	rt := newRuntime(t, RFC1939(), nil)
	c := rt.dial()
	g := c.Line()
	assert.Regexp(t, `^\+OK test ready <\d+\.\d+\.\d+@pop3gen\.test>$`, g)
	assert.Equal(t, "+OK", c.Cmd("USER alice"))
	assert.Equal(t, "+OK "+recorderTotals, c.Cmd("PASS secret"))
	assert.Equal(t, "+OK 2 59", c.Cmd("STAT"))
	assert.Equal(t, "+OK message 2 deleted", c.Cmd("DELE 2"))
	assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
	assert.True(t, c.Closed())
	rt.mu.Lock()
	require.Len(t, rt.hs, 1)
	d := rt.hs[0].drop
	rt.mu.Unlock()
	assert.Eventually(t, func() bool { _, _, _, _, closed := d.state(); return closed == 1 }, 5*time.Second, 10*time.Millisecond,
		"the runtime closes the maildrop when the connection ends")
	_, removed, _, _, _ := d.state()
	assert.Equal(t, []int{1}, removed)

	v := Exchange2010()
	rt = newRuntime(t, v, nil)
	assert.Equal(t, "+OK test ready", rt.dial().Line(), "no timestamp where APOP is off")
}

// panicky is a handler whose LANG panics and whose maildrop panics when a
// message is opened.
type panicky struct{ *recorder }

func (p *panicky) Lang(w *pop3.Writer, arg []byte) error { panic("a bug in the backend") }

// TestServePanicRecovered: a panic in a handler, or in the maildrop it
// returned, is answered [SYS/TEMP], logged, and closes that connection
// only (RFC3206-4-SYS); the maildrop is still closed, and nothing removed.
func TestServePanicRecovered(t *testing.T) {
	clause.Covers(t, "RFC3206-4-SYS")
	var mu sync.Mutex
	var drops []*memDrop
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) {
			r := newRecorder()
			r.drop.open = func(int) (io.ReadCloser, error) { panic("a bug in the store") }
			mu.Lock()
			drops = append(drops, r.drop)
			mu.Unlock()
			return &panicky{r}, nil
		}
	})
	c := rt.dial()
	c.Line()
	assert.Equal(t, "-ERR [SYS/TEMP] internal server error", c.Cmd("LANG"))
	assert.True(t, c.Closed())

	c = rt.dial()
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	c.Cmd("DELE 2")
	assert.Equal(t, "-ERR [SYS/TEMP] internal server error", c.Cmd("RETR 1"))
	assert.True(t, c.Closed())
	mu.Lock()
	d := drops[len(drops)-1]
	mu.Unlock()
	assert.Eventually(t, func() bool { _, _, _, _, closed := d.state(); return closed == 1 }, 5*time.Second, 10*time.Millisecond,
		"the maildrop is closed after a panic")
	_, _, removes, _, _ := d.state()
	assert.Zero(t, removes, "nothing is removed")
	other := rt.dial()
	assert.Equal(t, "+OK test ready", strings.Split(other.Line(), " <")[0], "the server goes on")
}

// TestServeMaxSessionsEvictsOldestUnauthenticated: when full, the oldest
// connection that has not logged in gives way; only logged-in sessions
// make a newcomer wait.
func TestServeMaxSessionsEvictsOldestUnauthenticated(t *testing.T) {
	rt := newRuntime(t, Exchange2010(), func(s *pop3.Server) { s.MaxSessions = 2 })
	idle := rt.dial()
	idle.Line()
	in := rt.dial()
	in.Line()
	in.Cmd("USER alice")
	require.Equal(t, "+OK "+recorderTotals, in.Cmd("PASS secret"))
	// recorder does not call Conn.Login; the runtime sees the login all
	// the same, and only idle counts as unauthenticated: it gives way.
	newcomer := rt.dial()
	assert.Equal(t, "+OK test ready", newcomer.Line())
	assert.Equal(t, "-ERR [SYS/TEMP] "+pop3.ErrEvicted.Text, idle.Line())
	assert.True(t, idle.Closed())
}

// TestServePreauthPerAddr: connections that have not logged in are bounded
// per address.
func TestServePreauthPerAddr(t *testing.T) {
	hits := make(chan *pop3.Error, 4)
	rt := newRuntime(t, Exchange2010(), func(s *pop3.Server) {
		s.MaxPreauthPerAddr = 1
		s.OnLimit = func(e *pop3.Error) { hits <- e }
	})
	first := rt.dial()
	first.Line()
	second := rt.dial()
	assert.Equal(t, "-ERR [SYS/TEMP] "+pop3.ErrPreauthLimit.Text, second.Line())
	assert.Same(t, pop3.ErrPreauthLimit, <-hits, "OnLimit is told")
	// A login, with or without the Handler calling Conn.Login, takes the
	// connection out of the count.
	first.Cmd("USER alice")
	require.Equal(t, "+OK "+recorderTotals, first.Cmd("PASS secret"))
	third := rt.dial()
	assert.Equal(t, "+OK test ready", third.Line())
}

// TestServeSTLSDiscardsPipelinedInput: RFC2595-4-STLS — bytes the client
// sent after STLS, before the handshake, are discarded, never run (the
// STARTTLS command-injection class).
func TestServeSTLSDiscardsPipelinedInput(t *testing.T) {
	clause.Covers(t, "RFC2595-4-STLS")
	cert := selfSignedForTest(t)
	rt := newRuntime(t, Exchange2010(), func(s *pop3.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	c := rt.dial()
	c.Line()
	_, err := c.C.Write([]byte("STLS\r\nUSER injected\r\n"))
	require.NoError(t, err)
	require.Equal(t, "+OK Begin TLS negotiation now", c.Line())
	tc := tls.Client(c.C, &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, tc.Handshake())
	tr := bufio.NewReader(tc)
	_, err = tc.Write([]byte("NOOP\r\n"))
	require.NoError(t, err)
	l, err := tr.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "-ERR", l[:4], "NOOP before login: the injected USER never ran")
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, h := range rt.hs {
		assert.NotContains(t, h.calls, "USER injected")
	}
}

// TestServeRequireTLS: with RequireTLS, authentication commands before
// TLS are refused with a text that says how to get TLS.
func TestServeRequireTLS(t *testing.T) {
	clause.Covers(t, "V0010")
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) { s.RequireTLS = true })
	c := rt.dial()
	c.Line()
	assert.Equal(t, "-ERR [AUTH] "+pop3.ErrTLSRequired.Text, c.Cmd("USER alice"))
}

// TestServeShutdownNotice: Shutdown interrupts idle sessions with a
// notice and removes nothing (no UPDATE: Remove is never called, though a
// message was marked), and the maildrop is closed.
func TestServeShutdownNotice(t *testing.T) {
	rt := newRuntime(t, RFC1939(), nil)
	c := rt.dial()
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	require.Equal(t, "+OK message 1 deleted", c.Cmd("DELE 1"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- rt.srv.Shutdown(ctx)
	}()
	assert.Equal(t, "-ERR [SYS/TEMP] "+pop3.ErrShutdown.Text, c.Line())
	require.NoError(t, <-done)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	require.NotEmpty(t, rt.hs)
	for _, h := range rt.hs {
		_, removed, removes, _, closed := h.drop.state()
		assert.Zero(t, removes, "nothing entered UPDATE")
		assert.Empty(t, removed)
		assert.Equal(t, 1, closed, "the maildrop is closed")
	}
}

// TestServeConnPipe: ServeConn serves a connection accepted elsewhere
// (net.Pipe here).
func TestServeConnPipe(t *testing.T) {
	srv := &pop3.Server{Dialect: dialect(RFC1939()), NewHandler: func(*pop3.Conn) (pop3.Handler, error) { return newRecorder(), nil }}
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(a); close(done) }()
	r := bufio.NewReader(b)
	g, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(g, "+OK POP3 server ready"))
	_, _ = b.Write([]byte("QUIT\r\n"))
	l, _ := r.ReadString('\n')
	assert.Equal(t, "+OK signing off\r\n", l)
	<-done
}

// selfSignedForTest returns a throwaway certificate for 127.0.0.1.
func selfSignedForTest(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// bigRetr returns a handler whose message 1 is 16 MiB, streamed.
func bigRetr() *recorder {
	r := newRecorder()
	r.drop.open = func(int) (io.ReadCloser, error) {
		line := strings.Repeat("x", 1023) + "\n"
		rs := make([]io.Reader, 16<<10)
		for i := range rs {
			rs[i] = strings.NewReader(line)
		}
		return io.NopCloser(io.MultiReader(rs...)), nil
	}
	return r
}

// TestServeSlowReaderCutOff: a client that reads a long RETR more slowly
// than MinWriteRate is cut off soon after the grace, measured on what it
// actually read — not after the write timeout, which the kernel's send
// buffer (megabytes with autotuning) would otherwise let it reach.
func TestServeSlowReaderCutOff(t *testing.T) {
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) { return bigRetr(), nil }
		s.MinWriteRate = 64 << 10
		s.WriteRateGrace = time.Second
		s.WriteTimeout = time.Minute
	})
	// A small receive buffer, set before connecting, as the security
	// review's client had: what the client's kernel takes in is, to the
	// server, read.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", rt.addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	c := pop3test.New(t, nc)
	_ = c.C.SetDeadline(time.Now().Add(2 * time.Minute))
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	_, err = c.C.Write([]byte("RETR 1\r\n"))
	require.NoError(t, err)
	start := time.Now()
	buf := make([]byte, 512)
	var read int
	for { // 512 octets every 50 ms: 10 KiB/s, well under 64 KiB/s
		n, err := c.R.Read(buf)
		read += n
		if err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("cut off after %v, %d octets read", took.Round(100*time.Millisecond), read)
	assert.Less(t, took, 15*time.Second, "cut off long before the one-minute write timeout")
	assert.Less(t, read, 16<<20, "not the whole message")
}

// closingHandler is a recorder that implements io.Closer and reports, when
// it is closed, whether its maildrop had been closed before it.
type closingHandler struct {
	*recorder
	done chan int // the maildrop's Close calls when the handler closed
}

func (h *closingHandler) Close() error {
	_, _, _, _, closed := h.drop.state()
	h.done <- closed
	return nil
}

// TestServeClosesHandlerAndMaildrop: when a connection ends, however it
// ends, the runtime closes the maildrop the login returned, then a Handler
// that implements io.Closer (it may hold what the maildrop uses); a
// connection that never logged in closes the Handler only.
func TestServeClosesHandlerAndMaildrop(t *testing.T) {
	done := make(chan int, 4)
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.NewHandler = func(*pop3.Conn) (pop3.Handler, error) { return &closingHandler{newRecorder(), done}, nil }
	})
	wait := func() int {
		select {
		case n := <-done:
			return n
		case <-time.After(5 * time.Second):
			t.Fatal("the handler was not closed")
			return -1
		}
	}
	c := rt.dial()
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	c.Cmd("QUIT")
	assert.Equal(t, 1, wait(), "after QUIT: the maildrop once, before the handler")

	c = rt.dial()
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	_ = c.C.Close() // the client goes away without QUIT
	assert.Equal(t, 1, wait(), "after a dropped connection too")

	c = rt.dial()
	c.Line()
	c.Cmd("QUIT")
	assert.Equal(t, 0, wait(), "no login: no maildrop to close")
}

// observed collects what Server.Observe is given.
type observed struct {
	mu     sync.Mutex
	events []pop3.Event
}

func (o *observed) observe(c *pop3.Conn, e pop3.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *observed) all() []pop3.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]pop3.Event(nil), o.events...)
}

// endedHandler records the connection's end, as a logout line would.
type endedHandler struct {
	*recorder
	conn   *pop3.Conn
	reason chan string
	stats  chan pop3.SessionStats
}

func (h *endedHandler) Close() error {
	h.reason <- h.conn.EndReason()
	h.stats <- h.conn.Session().Stats()
	return nil
}

// TestServeObserveAndEnd: Observe sees every command with its outcome and
// the octets of the messages sent; at the end the Handler can read why the
// session ended and what it did (a logout line), and the octets in and out.
func TestServeObserveAndEnd(t *testing.T) {
	var o observed
	reason, stats := make(chan string, 1), make(chan pop3.SessionStats, 1)
	var conn *pop3.Conn
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.Observe = o.observe
		s.NewHandler = func(c *pop3.Conn) (pop3.Handler, error) {
			conn = c
			return &endedHandler{recorder: newRecorder(), conn: c, reason: reason, stats: stats}, nil
		}
	})
	c := rt.dial()
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	c.Cmd("RETR 1")
	for c.Line() != "." {
	}
	assert.Equal(t, "-ERR no such message", c.Cmd("DELE 9"))
	c.Cmd("DELE 1")
	assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
	assert.Equal(t, "quit", <-reason)
	st := <-stats
	assert.Equal(t, pop3.SessionStats{Messages: 2, Size: 59, Retr: 1, RetrOctets: st.RetrOctets, Deleted: 1}, st)
	assert.Positive(t, st.RetrOctets)
	ev := o.all()
	require.Len(t, ev, 6)
	var cmds []pop3.Cmd
	for _, e := range ev {
		cmds = append(cmds, e.Cmd)
	}
	assert.Equal(t, []pop3.Cmd{CmdUSER, CmdPASS, CmdRETR, CmdDELE, CmdDELE, CmdQUIT}, cmds)
	assert.Equal(t, st.RetrOctets, ev[2].Octets)
	assert.Nil(t, ev[2].Err)
	require.NotNil(t, ev[3].Err)
	assert.Equal(t, "no such message", ev[3].Err.Text)
	in, out := conn.Octets()
	assert.Equal(t, int64(len("USER alice\r\nPASS secret\r\nRETR 1\r\nDELE 9\r\nDELE 1\r\nQUIT\r\n")), in)
	assert.Greater(t, out, st.RetrOctets)
}

// TestServeKick: Kick ends a session at once with -ERR, removing nothing
// it marked; Conns lists the connection (and its user) until then.
func TestServeKick(t *testing.T) {
	reason, stats := make(chan string, 1), make(chan pop3.SessionStats, 1)
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.NewHandler = func(c *pop3.Conn) (pop3.Handler, error) {
			return &endedHandler{recorder: newRecorder(), conn: c, reason: reason, stats: stats}, nil
		}
	})
	c := rt.dial()
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	c.Cmd("DELE 1")
	conns := rt.srv.Conns()
	require.Len(t, conns, 1)
	conns[0].Kick()
	assert.Equal(t, "-ERR [SYS/TEMP] "+pop3.ErrKicked.Text, c.Line())
	assert.True(t, c.Closed())
	assert.Equal(t, "kicked", <-reason)
	assert.Zero(t, (<-stats).Deleted, "a kicked session removes nothing")
}

// TestServeDrain: Drain stops accepting at once but lets a session finish
// on its own (its QUIT removes what it marked); a session still there at
// the deadline ends as in Shutdown, removing nothing.
func TestServeDrain(t *testing.T) {
	rt := newRuntime(t, RFC1939(), nil)
	c := rt.dial()
	c.Line()
	c.Cmd("USER alice")
	c.Cmd("PASS secret")
	idle := rt.dial()
	idle.Line()
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() { done <- rt.srv.Drain(ctx) }()
	require.Eventually(t, func() bool {
		n, err := net.DialTimeout("tcp", rt.addr, time.Second)
		if err == nil {
			n.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "no longer accepting")
	assert.Equal(t, "+OK message 1 deleted", c.Cmd("DELE 1"), "a session goes on while draining")
	assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
	// idle never quits: cut off at the deadline.
	assert.ErrorIs(t, <-done, context.DeadlineExceeded)
	assert.Equal(t, "-ERR [SYS/TEMP] "+pop3.ErrShutdown.Text, idle.Line())
}

// TestServeReload: Reload changes the settings for the connections that
// follow; one being served keeps its own.
func TestServeReload(t *testing.T) {
	rt := newRuntime(t, RFC1939(), nil)
	before := rt.dial()
	assert.Contains(t, before.Line(), "+OK test ready <", "APOP on: a timestamp")
	rt.srv.Reload(func(s *pop3.Server) {
		s.Greeting = "reloaded"
		s.Dialect = dialect(Exchange2010())
	})
	after := rt.dial()
	assert.Equal(t, "+OK reloaded", after.Line(), "exchange2010: no APOP, no timestamp")
	assert.Contains(t, before.Cmd("CAPA"), "+OK")
	lines := []string{}
	for l := before.Line(); l != "."; l = before.Line() {
		lines = append(lines, l)
	}
	assert.Contains(t, lines, "UTF8 USER", "the first session keeps rfc1939's UTF8")
}

// TestServeTrace: a protocol log turned on by the Handler sees the
// client's lines with every secret replaced (PASS, APOP's digest, AUTH's
// initial response, the lines of a SASL exchange) and each reply's status
// line, and the session itself still gets the real password.
func TestServeTrace(t *testing.T) {
	var mu sync.Mutex
	var got []string
	rt := newRuntime(t, RFC1939(), func(s *pop3.Server) {
		s.NewHandler = func(c *pop3.Conn) (pop3.Handler, error) {
			c.SetTrace(func(fromClient bool, line []byte) {
				mu.Lock()
				defer mu.Unlock()
				dir := "S: "
				if fromClient {
					dir = "C: "
				}
				got = append(got, dir+string(line))
			})
			r := newRecorder()
			r.saslSteps = 1
			return r, nil
		}
	})
	c := rt.dial()
	c.Line()
	c.Cmd("USER alice")
	assert.Equal(t, "+OK "+recorderTotals, c.Cmd("PASS secret"), "the session got the real password")
	c.Cmd("LIST")
	for l := c.Line(); l != "."; l = c.Line() {
	}
	a := rt.dial()
	a.Line()
	a.Cmd("AUTH PLAIN")
	a.Cmd("c2VjcmV0")
	a.Cmd("QUIT")
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(got, "\n")
	assert.Contains(t, joined, "\nC: USER alice\nS: +OK\nC: PASS ****\nS: +OK "+recorderTotals+"\nC: LIST\nS: +OK 2 messages")
	assert.Contains(t, joined, "\nC: AUTH PLAIN\nS: + (challenge)\nC: ****\nS: +OK "+recorderTotals+"\nC: QUIT\n")
	assert.NotContains(t, joined, "secret")
	assert.NotContains(t, joined, "c2VjcmV0")
	assert.NotContains(t, joined, "S: 1 ", "listing lines are not traced")
}
