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

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildPop3d builds pop3d into a directory others may search (a root
// pop3d serves the demo as nobody).
func buildPop3d(t *testing.T) (bin, dir string) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	return builtPop3d(t), dir
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
	pop3test.Greeted(t, c) // a +OK greeting over the handshake
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
	plain, implicit := freeAddr(t), freeAddr(t)
	socketActivate(t, "TestSocketActivation covers the same protocol", []string{plain, implicit}, []string{"pop3", "pop3s"}, plain, implicit)
}

// socketActivate runs the demo under systemd-socket-activate listening on
// addrs with the descriptor names given, starts it with a connection to
// plain, and checks it serves plain POP3 there and implicit TLS on
// implicit. Without the tool the test is skipped, saying why (unless).
func socketActivate(t *testing.T, unless string, addrs, names []string, plain, implicit string) {
	t.Helper()
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("under CI=true this test must run: systemd-socket-activate is not installed")
		}
		t.Skip("systemd-socket-activate is not installed; " + unless)
	}
	bin, dir := buildPop3d(t)
	private := filepath.Join(dir, "private")
	require.NoError(t, os.Mkdir(private, 0o700))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	var args []string
	for _, a := range addrs {
		args = append(args, "-l", a)
	}
	args = append(args, "--fdname="+strings.Join(names, ":"), bin, "serve", "--demo-dir", filepath.Join(private, "demo"))
	cmd := exec.CommandContext(ctx, tool, args...)
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

// shippedSocket is one listening socket of the shipped socket units: the
// unit, its port, and the name systemd gives its descriptor.
type shippedSocket struct {
	unit, port, name string
}

// shippedSockets reads dist/systemd/*.socket as systemd does for what
// pop3d is passed: each ListenStream= of a unit whose Service= is
// pop3d.service (or that is pop3d.socket itself), named by the unit's
// FileDescriptorName= — one name for every socket of the unit, a later
// assignment replacing an earlier one, the unit's name when there is none
// (systemd.socket(5)). It also returns the Sockets= of pop3d.service.
func shippedSockets(t *testing.T) ([]shippedSocket, []string) {
	t.Helper()
	units, err := filepath.Glob("../../dist/systemd/*.socket")
	require.NoError(t, err)
	require.NotEmpty(t, units)
	var all []shippedSocket
	for _, path := range units {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		unit := filepath.Base(path)
		name, service := strings.TrimSuffix(unit, ".socket"), strings.TrimSuffix(unit, ".socket")+".service"
		var ports []string
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			switch {
			case !ok:
			case k == "ListenStream":
				ports = append(ports, v)
			case k == "FileDescriptorName" && v == "":
				name = strings.TrimSuffix(unit, ".socket")
			case k == "FileDescriptorName":
				name = v
			case k == "Service":
				service = v
			}
		}
		if service != "pop3d.service" {
			continue
		}
		for _, p := range ports {
			all = append(all, shippedSocket{unit: unit, port: p, name: name})
		}
	}
	b, err := os.ReadFile("../../dist/systemd/pop3d.service")
	require.NoError(t, err)
	var sockets []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Sockets="); ok {
			sockets = append(sockets, strings.Fields(v)...)
		}
	}
	return all, sockets
}

// TestShippedSocketUnits: the socket units in dist/systemd name port 110's
// descriptor for plain POP3 and 995's for implicit TLS, and pop3d.service
// takes both; served through systemd-socket-activate with exactly the
// names the units give, pop3d speaks plain POP3 on the first and TLS on
// the second. Before, one unit set FileDescriptorName= twice, so both
// sockets were named pop3s and port 110 spoke implicit TLS.
func TestShippedSocketUnits(t *testing.T) {
	socks, serviceSockets := shippedSockets(t)
	byPort := map[string]shippedSocket{}
	for _, s := range socks {
		byPort[s.port] = s
	}
	require.Len(t, byPort, 2, "the units listen on 110 and 995: %v", socks)
	plain, implicit := byPort["110"], byPort["995"]
	t.Logf("shipped: %+v; pop3d.service takes %v", socks, serviceSockets)
	assert.NotEqual(t, plain.name, implicit.name, "the two ports' descriptors must have different names")
	for _, s := range socks {
		assert.Contains(t, serviceSockets, s.unit, "pop3d.service's Sockets= must take %s, or it is not passed when the other unit starts the service", s.unit)
	}

	addrs := map[string]string{"110": freeAddr(t), "995": freeAddr(t)}
	var listen, names []string
	for _, s := range socks {
		listen = append(listen, addrs[s.port])
		names = append(names, s.name)
	}
	socketActivate(t, "the names were checked above", listen, names, addrs["110"], addrs["995"])
}

// TestShippedUnitsTouchMailAsMailUser: every shipped unit that runs a
// pop3d subcommand which opens the mail root, other than serve (which
// starts as root to bind ports and read the TLS key, then switches to the
// config's user), runs as an account that is not root.
func TestShippedUnitsTouchMailAsMailUser(t *testing.T) {
	units, err := filepath.Glob("../../dist/systemd/*.service")
	require.NoError(t, err)
	seen := 0
	for _, path := range units {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var exec, user string
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
			switch k {
			case "ExecStart":
				exec = v
			case "User":
				user = v
			}
		}
		if !strings.Contains(exec, "pop3d expire") && !strings.Contains(exec, "pop3d import") {
			continue
		}
		seen++
		assert.NotEmpty(t, user, "%s runs %q as root", filepath.Base(path), exec)
		assert.NotEqual(t, "root", user, "%s runs %q as root", filepath.Base(path), exec)
	}
	assert.Positive(t, seen, "the expire unit is shipped")
}
