package server_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/server"
)

// behindProxy starts pop3d (exchange2010: plaintext only on secure
// connections) that takes PROXY headers from loopback and trusts only the
// client 192.0.2.7 as secure.
func behindProxy(t *testing.T, opts ...func(*server.Config)) *env {
	return newEnv(t, "exchange2010", append([]func(*server.Config){func(c *server.Config) {
		c.ProxyProtocolFrom = []string{"127.0.0.0/8"}
		c.TrustedNetworks = []string{"192.0.2.7/32"}
	}}, opts...)...)
}

// proxied dials addr and sends a PROXY header of version v naming the
// client src.
func proxied(t *testing.T, addr string, v byte, src string) *pop3test.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	s, err := net.ResolveTCPAddr("tcp", src)
	require.NoError(t, err)
	_, err = proxyproto.HeaderProxyFromAddrs(v, s, c.RemoteAddr()).WriteTo(c)
	require.NoError(t, err)
	return pop3test.New(t, c)
}

// TestProxyProtocol: from a listed proxy, the PROXY header (v1 and v2)
// names the client, and that address is what the secure-connection
// decision sees: the trusted client may log in with USER/PASS, another
// may not (MS-STANXPOP3 V0010's PlaintextAuth=secure).
func TestProxyProtocol(t *testing.T) {
	e := behindProxy(t)
	for _, v := range []byte{1, 2} {
		c := proxied(t, e.addr, v, "192.0.2.7:40000")
		assert.Contains(t, c.Line(), "+OK")
		assert.Equal(t, "+OK", c.Cmd("USER alice"), "v%d: the trusted client", v)
		assert.True(t, strings.HasPrefix(c.Cmd("PASS secret"), "+OK maildrop has"), "v%d", v)

		c = proxied(t, e.addr, v, "198.51.100.9:40000")
		c.Line()
		assert.Contains(t, c.Cmd("USER alice"), "-ERR", "v%d: another client is not secure", v)
	}
}

// TestProxyProtocolLimitsSeeTheClient: MaxPreauthPerIP counts the client
// the header names, not the proxy that relays everyone.
func TestProxyProtocolLimitsSeeTheClient(t *testing.T) {
	e := behindProxy(t, func(c *server.Config) { c.MaxPreauthPerIP = 1 })
	c1 := proxied(t, e.addr, 2, "198.51.100.1:1000")
	assert.Contains(t, c1.Line(), "+OK")
	c2 := proxied(t, e.addr, 2, "198.51.100.1:1001")
	assert.Contains(t, c2.Line(), "-ERR [SYS/TEMP]", "a second connection of the same client")
	c3 := proxied(t, e.addr, 2, "198.51.100.2:1000")
	assert.Contains(t, c3.Line(), "+OK", "another client, through the same proxy")
}

// TestProxyProtocolRefusals: a listed proxy must send a header; garbage
// in its place closes the connection without a greeting. From an address
// not listed, the header is not read: it is a line like any other, and
// refused as a command.
func TestProxyProtocolRefusals(t *testing.T) {
	e := behindProxy(t)
	c, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write([]byte("USER alice\r\n"))
	require.NoError(t, err)
	_, err = bufio.NewReader(c).ReadString('\n')
	assert.Error(t, err, "no greeting for a connection of a listed proxy without a header")

	other := newEnv(t, "exchange2010", func(c *server.Config) { c.ProxyProtocolFrom = []string{"192.0.2.0/24"} })
	c2, err := net.Dial("tcp", other.addr)
	require.NoError(t, err)
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	p2 := pop3test.New(t, c2)
	assert.Contains(t, p2.Line(), "+OK")
	assert.Contains(t, p2.Cmd("PROXY TCP4 192.0.2.7 127.0.0.1 5555 110"), "-ERR")
}

// TestHAProxy: HAProxy (Debian's package) in front of pop3d, sending
// PROXY protocol v2: curl fetches a message through it, and pop3d sees
// each client's own address — 127.0.0.3, which it trusts as secure, logs
// in with USER/PASS under exchange2010; 127.0.0.4 does not.
func TestHAProxy(t *testing.T) {
	haproxy := need(t, "haproxy")
	curl := need(t, "curl")
	e := newEnv(t, "exchange2010", func(c *server.Config) {
		c.ProxyProtocolFrom = []string{"127.0.0.1/32"}
		c.TrustedNetworks = []string{"127.0.0.3/32"}
	})
	e.deliver("alice", "Subject: through haproxy\n\nhello\n", "")
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	front := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`global
	maxconn 100
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend pop3
	bind %s
	default_backend pop3d
backend pop3d
	server one %s send-proxy-v2 source 127.0.0.1
`, front, e.addr)), 0o600))
	cmd := exec.Command(haproxy, "-db", "-f", cfg)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Wait for HAProxy to listen.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
			break
		}
		require.Less(t, i, 100, "haproxy did not start: %s", out.String())
		time.Sleep(50 * time.Millisecond)
	}
	got, err := exec.Command(curl, "-sS", "--interface", "127.0.0.3", "--max-time", "20",
		"-u", "alice:secret", "pop3://"+front+"/1").CombinedOutput()
	require.NoError(t, err, "%s\nhaproxy: %s", got, out.String())
	assert.Contains(t, string(got), "Subject: through haproxy")

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", front)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	p := pop3test.New(t, c)
	assert.Contains(t, p.Line(), "+OK")
	assert.Contains(t, p.Cmd("USER alice"), "-ERR", "127.0.0.4 is not trusted: plaintext refused")
}

// TestProxyHealthChecksQuiet: a load balancer's health checks — a
// connection that closes before its PROXY header, a v2 LOCAL header, a
// v1 "PROXY UNKNOWN" — are logged at debug only, not every few seconds at
// info or warning; a client relayed through the same proxy is logged as
// ever. Before, each check left an info logout line or a warning.
func TestProxyHealthChecksQuiet(t *testing.T) {
	e, logs := newLoggedEnv(t, "exchange2010", nil, func(c *server.Config) {
		c.ProxyProtocolFrom = []string{"127.0.0.0/8"}
	})
	closeNow := func(send []byte) {
		c, err := net.Dial("tcp", e.addr)
		require.NoError(t, err)
		if send != nil {
			_, err = c.Write(send)
			require.NoError(t, err)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = bufio.NewReader(c).ReadString('\n') // the greeting
			require.NoError(t, err)
		}
		require.NoError(t, c.Close())
	}
	local, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}).Format()
	require.NoError(t, err)
	closeNow(nil)
	closeNow(local)
	closeNow([]byte("PROXY UNKNOWN\r\n"))
	c := proxied(t, e.addr, 2, "192.0.2.9:4000")
	assert.Contains(t, c.Line(), "+OK")
	assert.Contains(t, c.Cmd("QUIT"), "+OK")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "remote=192.0.2.9:4000") && strings.Contains(logs.String(), "msg=logout")
	},
		5*time.Second, 20*time.Millisecond, "the relayed client's logout:\n%s", logs.String())
	time.Sleep(200 * time.Millisecond) // the checks' sessions have ended too
	for _, l := range strings.Split(logs.String(), "\n") {
		if l == "" || strings.Contains(l, "192.0.2.9") || strings.Contains(l, "listening") {
			continue
		}
		t.Errorf("a health check was logged: %s", l)
	}
}
