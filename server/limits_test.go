package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// logBuf collects a server's log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// newLoggedEnv is newEnv with the server's log captured, and with the
// listeners left to the caller when lns is given (AddListener instead of
// Listen).
func newLoggedEnv(t *testing.T, profile string, lns []net.Listener, opts ...func(*server.Config)) (*env, *logBuf) {
	t.Helper()
	return newLeveledEnv(t, profile, slog.LevelInfo, lns, opts...)
}

// newLeveledEnv is newLoggedEnv with the log at level.
func newLeveledEnv(t *testing.T, profile string, level slog.Level, lns []net.Listener, opts ...func(*server.Config)) (*env, *logBuf) {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "mail")}
	require.NoError(t, os.MkdirAll(e.root, 0o700))
	pw := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(pw, []byte(passwdFile(t)), 0o600))
	cert, key, pool := testCert(t)
	e.pool = pool
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.ListenTLS = []string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}
	cfg.TLSCert, cfg.TLSKey = cert, key
	cfg.MailRoot, cfg.Passwd, cfg.Profile = e.root, pw, profile
	cfg.FailDelay = 0
	cfg.TrustedNetworks = []string{"127.0.0.0/8"}
	for _, o := range opts {
		o(&cfg)
	}
	logs := &logBuf{}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})))
	require.NoError(t, err)
	e.srv = srv
	if lns == nil {
		addrs, err := srv.Listen()
		require.NoError(t, err)
		e.addr, e.tlsAddr = addrs[0].String(), addrs[1].String()
	} else {
		for _, ln := range lns {
			srv.AddListener(ln, false)
		}
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return e, logs
}

// rawDial opens a TCP connection that the test drives byte by byte.
func rawDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d, reading and
// dropping whatever it sends meanwhile.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

// TestLimitTLSHandshakesCounted: connections to the implicit-TLS port
// count toward MaxSessions from accept, before any handshake. 20 silent
// ones against a limit of 5 hold at most 5 slots (today they held none
// and were not limited at all); a real TLS client is served at once (the
// oldest silent one gives way); and the TLS handshake timeout (1 s here,
// against the profile's 60 s inactivity timer) closes the rest.
func TestLimitTLSHandshakesCounted(t *testing.T) {
	e, logs := newLoggedEnv(t, "exchange2010", nil, func(c *server.Config) {
		c.MaxSessions, c.MaxPreauthPerIP = 5, 100
		c.TLSHandshakeTimeout = server.Duration(time.Second)
	})
	var silent []net.Conn
	for range 20 {
		silent = append(silent, rawDial(t, e.tlsAddr))
	}
	require.Eventually(t, func() bool { return e.srv.Sessions() == 5 }, 10*time.Second, 10*time.Millisecond,
		"20 silent TLS connections hold exactly the 5 slots; sessions=%d", e.srv.Sessions())
	c := e.dialTLS()
	require.Equal(t, "+OK +OK", firstWord(c.Cmd("USER alice"), c.Cmd("PASS secret")))
	require.LessOrEqual(t, e.srv.Sessions(), int64(5))
	for i, s := range silent {
		require.True(t, closedWithin(s, 15*time.Second), "silent connection %d is closed by the handshake timeout or evicted", i)
	}
	require.Contains(t, logs.String(), "TLS handshake timed out")
}

// firstWord joins the first word of each reply, with the response code
// of a -ERR, to compare a short exchange in one assertion.
func firstWord(replies ...string) string {
	var out []string
	for _, r := range replies {
		f := strings.Fields(r)
		if f[0] == "-ERR" && len(f) > 1 && strings.HasPrefix(f[1], "[") {
			out = append(out, f[1])
		} else {
			out = append(out, f[0])
		}
	}
	return strings.Join(out, " ")
}

// TestLimitPreauthPerIP: one address may hold MaxPreauthPerIP (3 here)
// connections that have not logged in; the 4th is refused with a text that
// says so. A login frees its place in that count.
func TestLimitPreauthPerIP(t *testing.T) {
	e := newEnv(t, "exchange2010", func(c *server.Config) { c.MaxPreauthPerIP = 3 })
	a, _, _ := e.dial(), e.dial(), e.dial()
	c := rawDial(t, e.addr)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := newReader(c).ReadString('\n')
	require.Equal(t, "-ERR [SYS/TEMP] too many connections from your address that have not logged in, try again later\r\n", line)
	require.True(t, closedWithin(c, 5*time.Second))
	a.Cmd("USER alice")
	require.Equal(t, "+OK", firstWord(a.Cmd("PASS secret")))
	require.True(t, strings.HasPrefix(e.dial().Greeting, "+OK"), "a logged-in connection no longer counts")
}

// TestLimitSessionsPerUser: a user may hold MaxSessionsPerUser (2 here)
// sessions; the 3rd login is refused with [IN-USE] and the limit in the
// text, and works again once a session ends.
func TestLimitSessionsPerUser(t *testing.T) {
	e := newEnv(t, "exchange2010", func(c *server.Config) { c.MaxSessionsPerUser = 2 })
	first := e.login("alice", "secret")
	e.login("alice", "secret")
	c := e.dial()
	c.Cmd("USER alice")
	require.Equal(t, "-ERR [IN-USE] too many sessions for this user (the limit is 2), try again later", c.Cmd("PASS secret"))
	e.login("bob", "hunter2") // another user is not affected
	first.Cmd("QUIT")
	require.Eventually(t, func() bool {
		c.Cmd("USER alice")
		return strings.HasPrefix(c.Cmd("PASS secret"), "+OK")
	}, 10*time.Second, 50*time.Millisecond, "a slot of alice's is free again after QUIT")
}

// TestLimitEvictOldestUnauthenticated: when MaxSessions (3 here) is full
// of clients that never log in but send CAPA every 100 ms (so no
// inactivity timer fires), a newcomer is still served: the oldest of them
// is told why and closed. When every slot is a logged-in session, the
// newcomer is the one refused.
func TestLimitEvictOldestUnauthenticated(t *testing.T) {
	e := newEnv(t, "exchange2010", func(c *server.Config) { c.MaxSessions = 3 })
	var stop atomic.Bool
	t.Cleanup(func() { stop.Store(true) })
	busy := make([]net.Conn, 3)
	for i := range busy {
		busy[i] = rawDial(t, e.addr)
		if i == 0 {
			time.Sleep(20 * time.Millisecond) // the first is unmistakably the oldest
		}
		go func(c net.Conn) {
			for !stop.Load() {
				if _, err := c.Write([]byte("CAPA\r\n")); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}(busy[i])
	}
	require.Eventually(t, func() bool { return e.srv.Sessions() == 3 }, 10*time.Second, 10*time.Millisecond)
	n := e.dial()
	require.Equal(t, "+OK", firstWord(n.Cmd("USER alice"), n.Cmd("PASS secret"))[:3], "the newcomer is served")
	_ = busy[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	all, _ := io.ReadAll(busy[0])
	require.True(t, strings.HasSuffix(string(all), "-ERR [SYS/TEMP] server is full: the oldest connection that has not logged in gives way to a new one, closing\r\n"),
		"the oldest gets the reason and is closed; it got %q", tail(string(all)))
	for _, c := range busy[1:] {
		require.False(t, closedWithin(c, 300*time.Millisecond), "the younger ones keep their slots")
	}

	// Full of logged-in sessions: the newcomer is refused.
	f := newEnv(t, "exchange2010", func(c *server.Config) { c.MaxSessions = 2 })
	f.login("alice", "secret")
	f.login("bob", "hunter2")
	c := rawDial(t, f.addr)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := newReader(c).ReadString('\n')
	require.Equal(t, "-ERR [SYS/TEMP] server is full (too many connections), try again later\r\n", line)
}

func tail(s string) string {
	if len(s) > 200 {
		return s[len(s)-200:]
	}
	return s
}

// TestLimitSlowReader: a client that reads a 32 MiB RETR at about 40 KiB/s,
// under MinWriteRate=1 MiB/s with a 1 s grace, is cut off before the end
// of the message (the whole reply gets 1 s + 32 s; the kernel's buffers
// hold a few MiB), though every single write would have made the old
// 5-minute per-write deadline. A client that reads at full speed gets the
// whole message under the same limit.
func TestLimitSlowReader(t *testing.T) {
	e := newEnv(t, "exchange2010", func(c *server.Config) {
		c.MinWriteRate = 1 << 20
		c.WriteRateGrace = server.Duration(time.Second)
	})
	const size = 32 << 20
	line := strings.Repeat("x", 1022) + "\n"
	e.deliver("alice", strings.Repeat(line, size/len(line)), "")

	fast := e.login("alice", "secret")
	_ = fast.C.SetDeadline(time.Now().Add(60 * time.Second))
	require.True(t, strings.HasPrefix(fast.Cmd("RETR 1"), "+OK"))
	require.Len(t, fast.Multi(), size/len(line), "a fast reader gets every line")
	fast.Cmd("QUIT")

	// A small receive buffer, set before connecting so that the window
	// is small from the start: the server's writes then wait on the
	// client's reads, not on the kernel's buffers.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		return errors.Join(err, serr)
	}}
	raw, err := d.Dial("tcp", e.addr)
	require.NoError(t, err)
	slow := e.wrap(raw)
	require.Equal(t, "+OK +OK", firstWord(slow.Cmd("USER alice"), slow.Cmd("PASS secret")))
	slow.Send("RETR 1")
	var got atomic.Int64
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		_ = raw.SetReadDeadline(time.Time{})
		buf := make([]byte, 4<<10)
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			n, err := slow.R.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return e.srv.Sessions() == 0 }, 60*time.Second, 100*time.Millisecond,
		"the server ends the slow reader's session (it has read %d of %d octets)", got.Load(), size)
	require.Less(t, got.Load(), int64(size), "cut off before the end of the message")
}

// flakyListener fails its first Accept with an error that is neither a
// timeout nor a closed listener, as accept(2) does with ECONNABORTED or
// EPROTO.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, errors.New("accept: software caused connection abort (injected)")
	}
	return l.Listener.Accept()
}

// TestAcceptSurvivesErrors: an accept error other than a closed listener
// is logged and the loop goes on; before, it ended Serve and nothing more
// was served.
func TestAcceptSurvivesErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fl := &flakyListener{Listener: ln}
	e, logs := newLoggedEnv(t, "exchange2010", []net.Listener{fl})
	e.addr = ln.Addr().String()
	require.Eventually(t, fl.failed.Load, 10*time.Second, 5*time.Millisecond)
	c := e.dial()
	require.Equal(t, "+OK", firstWord(c.Cmd("USER alice"), c.Cmd("PASS secret"))[:3])
	require.Contains(t, logs.String(), "accept failed, retrying")
}

// TestTrustUntrustedLoopback: with no trusted networks, a loopback client
// is not secure: under the exchange profile (PlaintextAuth=secure) USER
// and AUTH PLAIN are refused and CAPA offers neither; after STLS they
// work. Before, loopback was always secure.
func TestTrustUntrustedLoopback(t *testing.T) {
	e := newEnv(t, "exchange2010", untrusted)
	c := e.dial()
	require.Equal(t, "[AUTH]", firstWord(c.Cmd("USER alice")))
	require.Equal(t, "[AUTH]", firstWord(c.Cmd("AUTH PLAIN")))
	c.Cmd("CAPA")
	capa := c.Multi()
	require.NotContains(t, capa, "USER")
	require.NotContains(t, strings.Join(capa, "\n"), "SASL")
	require.Contains(t, capa, "STLS")
	require.Equal(t, "+OK", firstWord(c.Cmd("STLS")))
	tc := tls.Client(c.C, &tls.Config{RootCAs: e.pool, ServerName: "localhost"})
	require.NoError(t, tc.Handshake())
	c.C, c.R = tc, newReader(tc)
	require.Equal(t, "+OK +OK", firstWord(c.Cmd("USER alice"), c.Cmd("PASS secret")))

	// A trusted network (the env's 127.0.0.0/8) is secure without TLS.
	d := newEnv(t, "exchange2010").dial()
	require.Equal(t, "+OK +OK", firstWord(d.Cmd("USER alice"), d.Cmd("PASS secret")))
}

// TestRequireTLS: under RequireTLS no authentication command is run
// before TLS, even from a trusted network and under rfc1939, whose
// PlaintextAuth=always would allow it; the refusal says to use STLS or the
// implicit-TLS port; CAPA offers no USER or SASL before TLS. After STLS,
// and on the implicit-TLS port, logins work.
func TestRequireTLS(t *testing.T) {
	e := newEnv(t, "rfc1939", func(c *server.Config) { c.RequireTLS = true })
	c := e.dial()
	const refused = "-ERR [AUTH] this server requires TLS before any login: use STLS first, or connect to the implicit-TLS port"
	for _, cmd := range []string{"USER alice", "PASS secret", "APOP alice 0123456789abcdef0123456789abcdef", "AUTH PLAIN", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="} {
		require.Equal(t, refused, c.Cmd(cmd), cmd)
	}
	c.Cmd("CAPA")
	capa := c.Multi()
	require.NotContains(t, capa, "USER")
	require.NotContains(t, strings.Join(capa, "\n"), "SASL")
	require.Equal(t, "+OK", firstWord(c.Cmd("STLS")))
	tc := tls.Client(c.C, &tls.Config{RootCAs: e.pool, ServerName: "localhost"})
	require.NoError(t, tc.Handshake())
	c.C, c.R = tc, newReader(tc)
	require.Equal(t, "+OK +OK", firstWord(c.Cmd("USER alice"), c.Cmd("PASS secret")))
	i := e.dialTLS() // bob: rfc1939 locks alice's maildrop for the session above
	require.Equal(t, "+OK +OK", firstWord(i.Cmd("USER bob"), i.Cmd("PASS hunter2")))

	// Refusals count as bad commands: a client cannot guess on forever.
	c = e.dial()
	for range 19 {
		require.Equal(t, refused, c.Cmd("USER alice"))
	}
	require.Equal(t, "-ERR too many bad commands, closing connection", c.Cmd("USER alice"))
}

// TestTLSIntermediate: TLS 1.2 with only CBC-SHA1 suites offered fails
// the handshake (Mozilla "intermediate": ECDHE with AEAD only); TLS 1.2
// with an ECDHE-GCM suite and TLS 1.3 succeed.
func TestTLSIntermediate(t *testing.T) {
	e := newEnv(t, "exchange2010")
	dial := func(cfg *tls.Config) error {
		cfg.RootCAs, cfg.ServerName = e.pool, "localhost"
		c, err := tls.Dial("tcp", e.tlsAddr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	require.Error(t, dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	}}), "CBC-SHA1 suites are refused")
	require.Error(t, dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}), "CBC-SHA256 is refused too")
	require.NoError(t, dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}))
	require.NoError(t, dial(&tls.Config{MinVersion: tls.VersionTLS13}))
	require.Error(t, dial(&tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP521}}), "P-521 is not in the intermediate curves")
}

// TestTLSHandshakeFailureLogged: a failed handshake is logged with what
// happened, the error as given beside it. A Go client without the CA
// rejects the certificate (the server sees its alert); OpenSSL with
// -verify_return_error does the same under TLS 1.3, which the server sees
// only as "bad record MAC" (the report); plain text on the TLS
// port, and silence, are told apart.
func TestTLSHandshakeFailureLogged(t *testing.T) {
	e, logs := newLoggedEnv(t, "exchange2010", nil, func(c *server.Config) {
		c.TLSHandshakeTimeout = server.Duration(500 * time.Millisecond)
	})
	waitLog := func(want string) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), want) }, 10*time.Second, 10*time.Millisecond,
			"want %q in the log:\n%s", want, logs.String())
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		_, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{ServerName: "localhost", MaxVersion: v})
		require.Error(t, err)
	}
	waitLog(`msg="client rejected the server certificate" remote=127.0.0.1`)
	waitLog(`err="remote error: tls: bad certificate"`)

	t.Run("openssl", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			missing(t, "openssl is not installed; the Go client above covers the alert case")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", e.tlsAddr, "-servername", "localhost", "-tls1_3", "-verify_return_error")
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		require.Contains(t, string(out), "self-signed", "openssl rejected the certificate")
		waitLog(`msg="client aborted the TLS handshake: it probably rejected the server certificate"`)
		waitLog(`err="local error: tls: bad record MAC"`)
	})

	c := rawDial(t, e.tlsAddr)
	_, _ = c.Write([]byte("USER alice\r\n"))
	waitLog(`msg="client does not speak TLS`)
	rawDial(t, e.tlsAddr)
	waitLog(`msg="TLS handshake timed out"`)
	require.NotContains(t, logs.String(), `msg="TLS handshake failed"`, "every failure here has a cause")
}

// TestLimitConfigErrors: a bad limit or trust setting stops the server at
// start with a message that names it.
func TestLimitConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		change func(*server.Config)
		want   string
	}{
		{func(c *server.Config) { c.TLSHandshakeTimeout = 0 }, "TLS handshake timeout 0s is outside (0, 5m]"},
		{func(c *server.Config) { c.MaxPreauthPerIP = 0 }, "max unauthenticated connections per address 0 must be at least 1"},
		{func(c *server.Config) { c.MaxSessionsPerUser = 0 }, "max sessions per user 0 must be at least 1"},
		{func(c *server.Config) { c.MinWriteRate = -1 }, "min write rate -1 must not be negative"},
		{func(c *server.Config) { c.TrustedNetworks = []string{"loopback"} }, `trusted network "loopback"`},
		{func(c *server.Config) { c.RequireTLS = true }, "--require-tls needs --tls-cert and --tls-key"},
	} {
		c := server.DefaultConfig()
		c.Listen = []string{"127.0.0.1:0"}
		c.MailRoot = t.TempDir()
		c.Passwd = filepath.Join(c.MailRoot, "passwd")
		require.NoError(t, os.WriteFile(c.Passwd, []byte("alice:{PLAIN}x\n"), 0o600))
		tc.change(&c)
		_, err := server.New(c, nil)
		require.ErrorContains(t, err, tc.want)
	}
}
