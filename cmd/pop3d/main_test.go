package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server/account"
)

// syncBuf is a bytes.Buffer safe for the server goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startServe runs "pop3d serve args…" in-process until the test ends (or
// until stopServe).
func startServe(t *testing.T, args ...string) ([]net.Addr, *syncBuf) {
	addrs, out, _ := startStoppable(t, args...)
	return addrs, out
}

func startStoppable(t *testing.T, args ...string) ([]net.Addr, *syncBuf, func()) {
	t.Helper()
	out := &syncBuf{}
	ready := make(chan []net.Addr, 1)
	hooks := &testHooks{ready: func(a []net.Addr) { ready <- a }, stop: make(chan struct{}), keepPrivileges: true}
	errc := make(chan error, 1)
	go func() { errc <- serve(args, out, out, hooks) }()
	select {
	case addrs := <-ready:
		var once sync.Once
		stop := func() {
			once.Do(func() {
				close(hooks.stop)
				require.NoError(t, <-errc)
			})
		}
		t.Cleanup(stop)
		return addrs, out, stop
	case err := <-errc:
		t.Fatalf("serve: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	return nil, nil, nil
}

// talk greets, sends lines and returns the greeting and the status line
// answering each, read by the shared test client (internal/pop3test).
func talk(t *testing.T, addr string, lines ...string) []string {
	t.Helper()
	c := pop3test.Dial(t, addr)
	defer c.C.Close()
	out := []string{c.Greeting}
	for _, l := range lines {
		out = append(out, c.Cmd(l))
	}
	return out
}

// TestServeDemo: with no mail root, passwd-file or config, serve sets up
// the demo (a Maildir with messages, a passwd-file, a certificate), prints
// the user and password, and serves them on the ports it is given (E0001:
// the ports are configurable; 110 and 995 are the usual choices).
func TestServeDemo(t *testing.T) {
	clause.Covers(t, "E0001")
	dir := filepath.Join(t.TempDir(), "demo")
	addrs, out, stop := startStoppable(t, "--demo-dir", dir, "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0")
	require.Len(t, addrs, 2)
	m := regexp.MustCompile(`user "demo", password "([a-z0-9]+)"`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	got := talk(t, addrs[0].String(), "USER demo", "PASS "+m[1], "STAT", "QUIT")
	assert.Equal(t, "+OK pop3kit ready", got[0])
	assert.Regexp(t, `^\+OK maildrop has 3 messages \(\d+ octets\)$`, got[2])
	assert.Regexp(t, `^\+OK 3 \d+$`, got[3])
	talk(t, addrs[0].String(), "USER demo", "PASS wrong")
	// A second run finds the demo and prints the same password.
	b, err := os.ReadFile(filepath.Join(dir, "demo-password"))
	require.NoError(t, err)
	assert.Equal(t, m[1]+"\n", string(b))
	for _, f := range []string{"passwd", "tls/cert.pem", "tls/key.pem"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	assert.DirExists(t, filepath.Join(dir, "mail", "demo", "cur"))
	stop()
	assert.Contains(t, out.String(), "logins=1 login_failures=1", "the counts are logged at shutdown")
}

// TestServeConfigAndFlags: a config file says what the flags say; flags
// and --set win over it; the profile is reported.
func TestServeConfigAndFlags(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "mail")
	require.NoError(t, os.MkdirAll(root, 0o700))
	testenv.Passwd(t, filepath.Join(dir, "passwd"), testenv.User{Name: "u", Password: "pw"})
	cfg := filepath.Join(dir, "pop3d.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
listen = ["127.0.0.1:0"]
mail_root = "`+root+`"
passwd = "`+filepath.Join(dir, "passwd")+`"
profile = "rfc"
fail_delay = "0s"
[set]
MaxCommandOctets = "100"
`), 0o600))
	addrs, out := startServe(t, "--config", cfg, "--set", "MaxCommandOctets=60")
	assert.Contains(t, out.String(), "profile rfc")
	got := talk(t, addrs[0].String(), "USER "+strings.Repeat("a", 40), "USER "+strings.Repeat("a", 54))
	assert.Equal(t, "+OK", got[1])
	assert.Equal(t, "-ERR command line too long", got[2], "--set wins over the file: 61 octets > 60")
}

// TestServeErrors: bad flags stop serve at start with a message that names
// the bad value.
func TestServeErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--demo-dir", dir, "--listen", "127.0.0.1:0", "--profile", "exchange2003"}, `unknown profile "exchange2003"`},
		{[]string{"--demo-dir", dir, "--listen", "127.0.0.1:0", "--set", "APOP=perhaps"}, `APOP: "perhaps" is not true or false`},
		{[]string{"--demo-dir", dir, "--listen", "127.0.0.1:0", "--set", "noequals"}, `--set "noequals": want KEY=VALUE`},
		{[]string{"--demo-dir", dir, "--listen", "127.0.0.1:0", "--fail-delay", "forever"}, `"forever" is not a duration`},
		{[]string{"--demo-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "loud"}, `log level "loud": want debug, info, warn or error`},
		{[]string{"--mail-root", dir, "--listen", "127.0.0.1:0"}, "--passwd is required"},
		{[]string{"--config", filepath.Join(dir, "missing.toml")}, "missing.toml"},
	} {
		var out bytes.Buffer
		err := serve(tc.args, &out, &out, nil)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// TestProfilesCommand prints every variation with the layer that honours
// it and each profile's value.
func TestProfilesCommand(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"profiles"}, nil, &out, &out))
	assert.Regexp(t, `^VARIATION\s+LAYER\s+rfc1939\s`, out.String())
	for _, v := range pop3gen.VariationTable {
		require.NotEmpty(t, v.Layer, v.Name)
		assert.Regexp(t, "(?m)^"+v.Name+`\s+`+v.Layer+`\s+`+regexp.QuoteMeta(v.Profiles[0])+`\s+`, out.String())
	}
	assert.Regexp(t, `(?m)^MaildropAccess\s+store\s`, out.String())
	assert.Contains(t, out.String(), "rfc1939")
	assert.Contains(t, out.String(), "exchange2010")
}

// TestUserAdd writes a hashed passwd-file line that logs in, to stdout or
// appended to a file; an existing user is refused.
func TestUserAdd(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"user", "add", "zoe", "--scheme", "BLF-CRYPT"}, strings.NewReader("s3cret\n"), &out, &out))
	assert.True(t, strings.HasPrefix(out.String(), "zoe:{BLF-CRYPT}$2"), out.String())
	a, err := account.ParseAccount(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	assert.True(t, a.Verify([]byte("s3cret")))
	assert.False(t, a.Verify([]byte("s3cret ")))

	f := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, run([]string{"user", "add", "zoe", "--passwd", f}, strings.NewReader("pw\n"), &out, &out))
	p, err := account.LoadPasswd(f)
	require.NoError(t, err)
	ok, _ := p.Authenticate("zoe", []byte("pw"))
	assert.True(t, ok)
	err = run([]string{"user", "add", "zoe", "--passwd", f}, strings.NewReader("pw\n"), &out, &out)
	assert.ErrorContains(t, err, `user "zoe" exists`)
	assert.ErrorContains(t, run([]string{"user", "add", "../evil"}, strings.NewReader("pw\n"), &out, &out), "starts with a dot")
	assert.ErrorContains(t, run([]string{"user", "add", "x"}, strings.NewReader(""), &out, &out), "no password")
}

// TestUserAddWarnsOfNamesNoLoginReaches: under the default profile, which
// lower-cases every login's name, adding "Frank" warns that the account
// could never log in and names what to do; under a config whose profile
// keeps names (rfc1939), it does not. Before, Frank was added silently and
// every login of his failed.
func TestUserAddWarnsOfNamesNoLoginReaches(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"user", "add", "Frank", "--scheme", "PLAIN"}, strings.NewReader("pw\n"), &out, &errOut))
	assert.Contains(t, errOut.String(), `warning: "Frank" has upper-case letters`)
	assert.Contains(t, errOut.String(), `name it "frank"`)
	assert.True(t, strings.HasPrefix(out.String(), "Frank:"), "the line is still printed: %s", out.String())

	cfg := filepath.Join(t.TempDir(), "pop3d.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("profile = \"rfc1939\"\n"), 0o600))
	errOut.Reset()
	require.NoError(t, run([]string{"user", "add", "Frank", "--scheme", "PLAIN", "--config", cfg}, strings.NewReader("pw\n"), &out, &errOut))
	assert.Empty(t, errOut.String(), "rfc1939 keeps names as sent")
	errOut.Reset()
	require.NoError(t, run([]string{"user", "add", "frank", "--scheme", "PLAIN"}, strings.NewReader("pw\n"), &out, &errOut))
	assert.Empty(t, errOut.String())
}
