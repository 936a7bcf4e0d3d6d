package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildPop3d builds pop3d into a directory others may search (a root
// pop3d serves the demo as nobody).
func buildPop3d(t *testing.T) (bin, dir string) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	bin = filepath.Join(dir, "pop3d")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin, dir
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// checkActivated reads the demo's password from pop3d's stdout, then
// logs in over the plain socket and completes a TLS handshake and a
// greeting on the implicit-TLS one.
func checkActivated(t *testing.T, stdout *bufio.Reader, plain, implicit string, stderr func() string) {
	t.Helper()
	first, err := stdout.ReadString('\n')
	require.NoError(t, err, "pop3d did not start: %s", stderr())
	pw := regexp.MustCompile(`password "([^"]+)"`).FindStringSubmatch(first)
	require.NotNil(t, pw, first)
	got := talk(t, plain, "USER demo", "PASS "+pw[1], "QUIT")
	assert.Regexp(t, `^\+OK maildrop has 3 messages`, got[2], stderr())
	c, err := tls.Dial("tcp", implicit, &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err, stderr())
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	g, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(g, "+OK"), g)
	assert.Contains(t, stderr(), "socket activation")
}

// TestSocketActivation: pop3d serves the listeners it is passed (LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES, sd_listen_fds(3)) instead of opening its
// own; the one named "pop3s" is implicit TLS. The harness passes two
// sockets from descriptor 3 exactly as systemd does.
func TestSocketActivation(t *testing.T) {
	bin, dir := buildPop3d(t)
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		f, err := ln.(*net.TCPListener).File()
		require.NoError(t, err)
		ln.Close()
		files = append(files, f)
		addrs = append(addrs, ln.Addr().String())
	}
	private := filepath.Join(dir, "private")
	require.NoError(t, os.Mkdir(private, 0o700))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// LISTEN_PID must be pop3d's own: the shell exports its pid and execs.
	cmd := exec.CommandContext(ctx, "sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=pop3:pop3s exec "$0" serve --demo-dir "$1"`,
		bin, filepath.Join(private, "demo"))
	cmd.ExtraFiles = files
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for _, f := range files {
		f.Close()
	}
	checkActivated(t, bufio.NewReader(stdout), addrs[0], addrs[1], stderr.String)
}

// TestSystemdSocketActivate: the same with systemd's own tool,
// systemd-socket-activate, which starts pop3d at the first connection.
func TestSystemdSocketActivate(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("under CI=true this test must run: systemd-socket-activate is not installed")
		}
		t.Skip("systemd-socket-activate is not installed; TestSocketActivation covers the same protocol")
	}
	bin, dir := buildPop3d(t)
	plain, implicit := freeAddr(t), freeAddr(t)
	private := filepath.Join(dir, "private")
	require.NoError(t, os.Mkdir(private, 0o700))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "-l", plain, "-l", implicit, "--fdname=pop3:pop3s",
		bin, "serve", "--demo-dir", filepath.Join(private, "demo"))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// The tool listens first; the first connection starts pop3d.
	var c net.Conn
	require.Eventually(t, func() bool {
		c, err = net.Dial("tcp", plain)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, stderr.String())
	defer c.Close()
	checkActivated(t, bufio.NewReader(stdout), plain, implicit, stderr.String)
}
