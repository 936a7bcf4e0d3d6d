package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// TestWhoAndKick: Who lists the sessions with their users; Kick ends a
// user's sessions at once with -ERR, and the message the session marked
// is not removed.
func TestWhoAndKick(t *testing.T) {
	e := newEnv(t, "exchange2010")
	e.deliver("alice", "Subject: one\n\nbody\n", "")
	c := e.login("alice", "secret")
	other := e.dial()
	assert.Equal(t, "+OK message 1 deleted", c.Cmd("DELE 1"))
	who := e.srv.Who()
	require.Len(t, who, 2)
	assert.Equal(t, "alice", who[0].User)
	assert.Equal(t, "", who[1].User, "not logged in")
	assert.Contains(t, who[0].Remote, "127.0.0.1:")
	assert.Equal(t, 1, e.srv.Kick("alice"))
	assert.True(t, strings.HasPrefix(c.Line(), "-ERR [SYS/TEMP] disconnected by the administrator"))
	assert.True(t, c.Closed())
	assert.Len(t, e.files("alice"), 1, "a kicked session removes nothing")
	assert.Equal(t, "+OK", other.Cmd("USER alice"), "the other session goes on")
}

// TestReloadForNewSessions: Reload changes the profile, the limits and the
// TLS certificate for the sessions that start afterwards; a session being
// served keeps what it started with. What needs a restart is named.
func TestReloadForNewSessions(t *testing.T) {
	var cfg server.Config
	e := newEnv(t, "rfc1939", func(c *server.Config) { cfg = *c })
	old := e.login("alice", "secret")
	assert.Contains(t, old.Greeting, "<", "rfc1939: APOP timestamp")

	certFile, keyFile := otherCert(t)
	cfg.Profile = "exchange2010"
	cfg.MaxSessionsPerUser = 1
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.Listen = []string{"127.0.0.1:0", "127.0.0.1:0"}
	restart, err := e.srv.Reload(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"listen"}, restart)

	c := e.dial()
	assert.NotContains(t, c.Greeting, "<", "exchange2010: no APOP")
	c.Cmd("USER alice")
	assert.Contains(t, c.Cmd("PASS secret"), "-ERR [IN-USE]", "the new per-user limit: alice has a session already")
	assert.True(t, strings.HasPrefix(old.Cmd("STAT"), "+OK"), "the old session goes on")

	conn, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, "reloaded.test", conn.ConnectionState().PeerCertificates[0].Subject.CommonName, "the certificate read again")

	cfg.Profile = "nonesuch"
	_, err = e.srv.Reload(cfg)
	assert.Error(t, err, "a bad configuration changes nothing")
	assert.NotContains(t, e.dial().Greeting, "<")
}

// TestDrain: Drain stops accepting, lets a session in progress finish
// (its QUIT removes what it marked), and returns when it is done.
func TestDrain(t *testing.T) {
	e := newEnv(t, "exchange2010")
	e.deliver("alice", "Subject: one\n\nbody\n", "")
	c := e.login("alice", "secret")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Drain(ctx)
	}()
	require.Eventually(t, func() bool {
		n, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err == nil {
			n.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "no longer accepting")
	c.Cmd("DELE 1")
	assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
	assert.NoError(t, <-done)
	assert.Empty(t, e.files("alice"))
}

// otherCert writes a self-signed certificate for "reloaded.test".
func otherCert(t *testing.T) (string, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "reloaded.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"reloaded.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600))
	return cf, kf
}

// TestLoginType: Exchange's LoginType as configuration — plain lets
// USER/PASS through on an untrusted plain connection, secure refuses it
// there, tls refuses every login before TLS; a bad value is named.
func TestLoginType(t *testing.T) {
	for _, tc := range []struct{ lt, want string }{
		{"plain", "+OK"},
		{"secure", "-ERR"},
		{"tls", "-ERR [AUTH] this server requires TLS"},
	} {
		e := newEnv(t, "rfc1939", untrusted, func(c *server.Config) { c.LoginType = tc.lt })
		c := e.dial()
		assert.True(t, strings.HasPrefix(c.Cmd("USER alice"), tc.want), tc.lt)
	}
	c := server.DefaultConfig()
	c.Listen, c.MailRoot, c.Passwd, c.LoginType = []string{"127.0.0.1:0"}, t.TempDir(), "x", "kerberos"
	assert.ErrorContains(t, c.Check(), `login type "kerberos"`)
}

// TestReloadUnderLoad: reloads while eight clients run sessions back to
// back lose no session and fail no command: every session that began
// finishes as it began, and the ones after take the new settings.
func TestReloadUnderLoad(t *testing.T) {
	var cfg server.Config
	e := newEnv(t, "exchange2010", func(c *server.Config) { cfg = *c })
	e.deliver("alice", "Subject: one\n\nbody\n", "")
	stop := make(chan struct{})
	errs := make(chan error, 8)
	var sessions atomic.Int64
	for w := range 8 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				c, err := net.Dial("tcp", e.addr)
				if err != nil {
					errs <- err
					return
				}
				r := bufio.NewReader(c)
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var got []string
				for _, line := range []string{"", "USER alice", "PASS secret", "STAT", "RETR 1", "QUIT"} {
					if line != "" {
						_, _ = c.Write([]byte(line + "\r\n"))
					}
					l, err := r.ReadString('\n')
					if err != nil {
						c.Close()
						errs <- fmt.Errorf("worker %d after %v: %v", w, got, err)
						return
					}
					got = append(got, l)
					if line == "RETR 1" {
						for l != ".\r\n" {
							if l, err = r.ReadString('\n'); err != nil {
								c.Close()
								errs <- err
								return
							}
						}
					}
					if !strings.HasPrefix(got[len(got)-1], "+OK") {
						c.Close()
						errs <- fmt.Errorf("worker %d: %q", w, got)
						return
					}
				}
				c.Close()
				sessions.Add(1)
			}
		}()
	}
	for i := range 20 {
		c := cfg
		c.MaxSessions = 1000 + i
		c.MaxSessionsPerUser = 20 + i%3
		if i%2 == 1 {
			c.Set = map[string]string{"MaxCommandOctets": "300"}
		}
		_, err := e.srv.Reload(c)
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	for range 8 {
		require.NoError(t, <-errs)
	}
	assert.Greater(t, sessions.Load(), int64(8), "sessions ran during the reloads")
}

// TestRemovedAccountSessionsEnd: when an account is removed from the
// passwd-file, its open sessions end within a second or two of the change
// (and at a reload), with -ERR [SYS/TEMP] and nothing removed from its
// maildrop, and the log says why; other users' sessions go on. Before, a
// removed user's session went on until it quit.
func TestRemovedAccountSessionsEnd(t *testing.T) {
	e, logs := newLoggedEnv(t, "exchange2010", nil)
	e.deliver("alice", "Subject: kept\r\n\r\nkept\r\n", "")
	alice := e.login("alice", "secret")
	alice.Cmd("DELE 1")
	bob := e.login("bob", "hunter2")
	var kept []string
	for _, l := range strings.Split(passwdFile(t), "\n") {
		if !strings.HasPrefix(l, "alice:") {
			kept = append(kept, l)
		}
	}
	require.NoError(t, os.WriteFile(e.passwdPath()+".new", []byte(strings.Join(kept, "\n")), 0o600))
	require.NoError(t, os.Rename(e.passwdPath()+".new", e.passwdPath()))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "account removed") }, 5*time.Second, 20*time.Millisecond)
	assert.Contains(t, logs.String(), `user=alice why="the passwd-file changed"`)
	assert.Equal(t, "-ERR [SYS/TEMP] disconnected by the administrator, nothing was removed", alice.Line())
	assert.Equal(t, "+OK", bob.Cmd("NOOP"), "bob's session goes on")
	assert.Len(t, e.files("alice"), 1, "the message alice marked is still there")
}
