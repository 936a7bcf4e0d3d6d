package main

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// presented returns the leaf certificate an implicit-TLS connection to
// addr presents.
func presented(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// TestBuiltReloadRotatesRootOnlyKey: pop3d started as root with a TLS key
// only root may read (0600 root, as every guide sets it) and --user
// nobody; the certificate and key are replaced and SIGHUP sent while a
// session runs: new connections get the new certificate, the session goes
// on, and the process that serves is still nobody. Before, every reload
// was refused ("open key: permission denied"): rotating a certificate
// took a restart.
func TestBuiltReloadRotatesRootOnlyKey(t *testing.T) {
	needRoot(t)
	s := newSite(t)
	s.addUser("alice", "right", "Subject: hi\r\n\r\nhello\r\n")
	tlsDir := filepath.Join(s.dir, "tls")
	require.NoError(t, os.Mkdir(tlsDir, 0o700)) // root's, 0700
	cert, key := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	require.NoError(t, selfSigned(cert, key))
	require.NoError(t, os.Chmod(key, 0o600))
	cfg := s.config("tls_cert = \"" + cert + "\"\ntls_key = \"" + key + "\"\nlisten_tls = [\"127.0.0.1:0\"]\n")
	srv := s.serve("--config", cfg)
	require.Len(t, srv.addrs, 2, "plain, then implicit TLS")
	plain, implicit := srv.addrs[0], srv.addrs[1]
	first := presented(t, implicit)

	live := pop3test.LoggedIn(t, plain, "alice", "right")

	// The certificate is rotated in place, as certbot or an operator does.
	require.NoError(t, os.Remove(cert))
	require.NoError(t, os.Remove(key))
	require.NoError(t, selfSigned(cert, key))
	require.NoError(t, os.Chmod(key, 0o600))
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(srv.log.String(), `msg=reloaded`) }, 10*time.Second, 20*time.Millisecond,
		"the reload: %s", srv.log.String())
	assert.NotContains(t, srv.log.String(), "reload refused")
	second := presented(t, implicit)
	assert.False(t, bytes.Equal(first, second), "new connections get the new certificate")
	assert.True(t, strings.HasPrefix(live.Cmd("NOOP"), "+OK"), "the session that ran during the reload goes on")
	live.OK("QUIT")

	// The server still serves as nobody; only the config reader is root.
	status, err := os.ReadFile("/proc/" + strconv.Itoa(srv.cmd.Process.Pid) + "/status")
	require.NoError(t, err)
	uid := regexp.MustCompile(`(?m)^Uid:\s*(\d+)`).FindStringSubmatch(string(status))[1]
	assert.NotEqual(t, "0", uid, "the serving process gave root up")

	// A second rotation works as well.
	require.NoError(t, os.Remove(cert))
	require.NoError(t, os.Remove(key))
	require.NoError(t, selfSigned(cert, key))
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Count(srv.log.String(), `msg=reloaded`) == 2 }, 10*time.Second, 20*time.Millisecond)
	assert.False(t, bytes.Equal(second, presented(t, implicit)))
}
