package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/server"
)

// demoPassword returns the demo's password from serve's output.
func demoPassword(t *testing.T, out string) string {
	m := regexp.MustCompile(`user "demo", password "([a-z0-9]+)"|"user":"demo","password":"([a-z0-9]+)"`).FindStringSubmatch(out)
	if m != nil && m[1] == "" {
		m[1] = m[2]
	}
	require.NotNil(t, m, out)
	return m[1]
}

// TestAdminSocketWhoKick: pop3d who lists a logged-in session over the
// admin socket (mode 0600), and pop3d kick ends it with -ERR; the
// message it marked is not removed.
func TestAdminSocketWhoKick(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	addrs, out := startServe(t, "--demo-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0", "--admin-socket", sock)
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	c := pop3test.Dial(t, addrs[0].String())
	defer c.C.Close()
	c.Cmd("USER demo")
	require.True(t, strings.HasPrefix(c.Cmd("PASS "+demoPassword(t, out.String())), "+OK"))
	require.Equal(t, "+OK message 1 deleted", c.Cmd("DELE 1"))

	var who bytes.Buffer
	require.NoError(t, run([]string{"who", "--admin-socket", sock}, nil, &who, io.Discard))
	assert.Regexp(t, `(?m)^USER\tREMOTE\tSINCE\tIN\tOUT\ndemo\t127\.0\.0\.1:\d+\t\S+\t\d+\t\d+$`, who.String())

	var kick bytes.Buffer
	require.NoError(t, run([]string{"kick", "demo", "--admin-socket", sock}, nil, &kick, io.Discard))
	assert.Equal(t, "kicked\t1\n", kick.String())
	assert.True(t, strings.HasPrefix(c.Line(), "-ERR [SYS/TEMP] disconnected by the administrator"))
	files, err := filepath.Glob(filepath.Join(dir, "demo", "mail", "demo", "cur", "*"))
	require.NoError(t, err)
	assert.Len(t, files, 3, "nothing removed")
}

// TestMetricsFlag: --metrics serves Prometheus metrics over HTTP, and
// they count the session that just ended.
func TestMetricsFlag(t *testing.T) {
	dir := t.TempDir()
	addrs, out := startServe(t, "--demo-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	require.Len(t, addrs, 2, "POP3, then the metrics")
	assert.Contains(t, out.String(), "serving POP3 on ["+addrs[0].String()+"] ", "the serving line names the POP3 listeners only")
	talk(t, addrs[0].String(), "USER demo", "PASS "+demoPassword(t, out.String()), "QUIT")
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addrs[1].String() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `pop3d_logins_total{mechanism="USER"} 1`) &&
			strings.Contains(string(b), `pop3d_sessions_total{profile="exchange2010",tls="none"} 1`)
	}, 5*time.Second, 50*time.Millisecond)
}

// TestLogFormatJSON: --log-format json writes nothing but JSON objects,
// one a line, to stdout and stderr: the demo's account, the serving line
// and the logout line among them. Before, the demo and serving lines were
// text among the JSON.
func TestLogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	addrs, out := startServe(t, "--demo-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0", "--log-format", "json")
	talk(t, addrs[0].String(), "USER demo", "PASS "+demoPassword(t, out.String()), "QUIT")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"msg":"logout"`) }, 5*time.Second, 20*time.Millisecond)
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "not JSON: %q", l)
		seen[m["msg"].(string)] = true
		if m["msg"] == "logout" {
			assert.Equal(t, "quit", m["reason"])
			assert.Equal(t, "demo", m["user"])
		}
		if m["msg"] == "serving POP3" {
			assert.Equal(t, []any{addrs[0].String()}, m["addrs"])
		}
	}
	assert.True(t, seen["pop3d demo"] && seen["serving POP3"] && seen["logout"], "%v", seen)
	_, err := newLogger(io.Discard, 0, "xml")
	assert.ErrorContains(t, err, `"xml"`)
}

// TestSIGHUPReloadAndSIGTERMDrain: SIGHUP reads the config file again and
// applies it to new sessions (a session already open keeps its profile);
// a bad file is refused and changes nothing. SIGTERM drains: no new
// connections, but the open session finishes, and its QUIT removes what
// it marked.
func TestSIGHUPReloadAndSIGTERMDrain(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "pop3d.toml")
	demo := filepath.Join(dir, "demo")
	// A first run sets the demo up; the config then serves it.
	_, _, stop := startStoppable(t, "--demo-dir", demo, "--listen", "127.0.0.1:0")
	stop()
	write := func(profile string) {
		require.NoError(t, os.WriteFile(conf, []byte(`listen = ["127.0.0.1:0"]
mail_root = "`+filepath.Join(demo, "mail")+`"
passwd = "`+filepath.Join(demo, "passwd")+`"
trusted_networks = ["127.0.0.0/8"]
profile = "`+profile+`"
`), 0o600))
	}
	write("rfc1939")
	addrs, out, _ := startStoppable(t, "--config", conf, "--drain-timeout", "20s")
	pw, err := os.ReadFile(filepath.Join(demo, "demo-password"))
	require.NoError(t, err)
	c := pop3test.Dial(t, addrs[0].String())
	defer c.C.Close()
	assert.Contains(t, c.Greeting, "<", "rfc1939: APOP's timestamp")
	c.Cmd("USER demo")
	require.True(t, strings.HasPrefix(c.Cmd("PASS "+strings.TrimSpace(string(pw))), "+OK"))

	write("exchange2010")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "msg=reloaded") }, 5*time.Second, 20*time.Millisecond, out.String())
	assert.NotContains(t, out.String(), "only with a restart", "only the profile changed, and it reloads")
	n := pop3test.Dial(t, addrs[0].String())
	assert.NotContains(t, n.Greeting, "<", "exchange2010 for the new session")
	n.C.Close()

	require.NoError(t, os.WriteFile(conf, []byte("profile = \"nonesuch\"\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "reload refused") }, 5*time.Second, 20*time.Millisecond, out.String())

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "draining") }, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, "+OK message 1 deleted", c.Cmd("DELE 1"), "the open session goes on while draining")
	assert.Equal(t, "+OK signing off (1 message removed)", c.Cmd("QUIT"))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "msg=stopped") }, 10*time.Second, 20*time.Millisecond)
}

// TestCheckCommand: pop3d check names what differs from the defaults, as
// TOML, and the variations changed from the profile's; it names a bad
// key or value.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "mail"), 0o700))
	conf := filepath.Join(dir, "pop3d.toml")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte("alice:{PLAIN}pw\n"), 0o600))
	require.NoError(t, os.WriteFile(conf, []byte(`listen = ["127.0.0.1:110"]
mail_root = "`+filepath.Join(dir, "mail")+`"
passwd = "`+filepath.Join(dir, "passwd")+`"
max_sessions = 500
profile = "rfc1939"
[set]
MaxCommandOctets = "512"
`), 0o600))
	var out bytes.Buffer
	require.NoError(t, run([]string{"check", "--config", conf}, nil, &out, io.Discard))
	for _, want := range []string{"valid", `listen = ["127.0.0.1:110"]`, "max_sessions = 500", `profile = "rfc1939"`, "[set]", `MaxCommandOctets = "512"`} {
		assert.Contains(t, out.String(), want)
	}
	assert.NotContains(t, out.String(), "fail_delay", "a default is not printed")

	require.NoError(t, os.WriteFile(conf, []byte("listen = [\"127.0.0.1:110\"]\nmax_sesions = 5\n"), 0o600))
	assert.ErrorContains(t, run([]string{"check", "--config", conf}, nil, io.Discard, io.Discard), "unknown setting max_sesions")
	require.NoError(t, os.WriteFile(conf, []byte("listen = [\"127.0.0.1:110\"]\nmail_root = \""+dir+"\"\npasswd = \"x\"\nmax_sessions = 0\n"), 0o600))
	assert.ErrorContains(t, run([]string{"check", "--config", conf}, nil, io.Discard, io.Discard), "max sessions 0")
}

// TestCheckPrintoutIsAConfig: what pop3d check prints of a configuration
// — durations as 30s or 60d, sizes as 64MiB, lists, [set] — is itself a
// configuration that loads to the same settings.
func TestCheckPrintoutIsAConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "mail"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte("alice:{PLAIN}pw\n"), 0o600))
	conf := filepath.Join(dir, "pop3d.toml")
	require.NoError(t, os.WriteFile(conf, []byte(`listen = ["127.0.0.1:110", "[::1]:110"]
mail_root = "`+filepath.Join(dir, "mail")+`"
passwd = "`+filepath.Join(dir, "passwd")+`"
fail_delay = "3s"
penalty_max = "1m"
retention = "60d"
auth_memory = "128MiB"
max_message_size = "10MiB"
quota = "1GiB"
login_delay = "90s"
oauth_domains = ["example.org"]
trusted_networks = ["10.0.0.0/8"]
[set]
AuthTimeout = "45m"
`), 0o600))
	var out bytes.Buffer
	require.NoError(t, run([]string{"check", "--config", conf}, nil, &out, io.Discard))
	t.Logf("printout:\n%s", out.String())
	for _, want := range []string{`fail_delay = "3s"`, `penalty_max = "1m"`, `retention = "60d"`, `auth_memory = "128MiB"`, `login_delay = "1m30s"`} {
		assert.Contains(t, out.String(), want)
	}
	again := filepath.Join(dir, "again.toml")
	require.NoError(t, os.WriteFile(again, out.Bytes(), 0o600))
	want, got := server.DefaultConfig(), server.DefaultConfig()
	require.NoError(t, loadConfigFile(conf, &want))
	require.NoError(t, loadConfigFile(again, &got), "the printout is a valid config")
	wv, err := want.Variations()
	require.NoError(t, err)
	gv, err := got.Variations()
	require.NoError(t, err)
	assert.Equal(t, wv, gv, "the same variations")
	want.Set, got.Set = nil, nil
	assert.Equal(t, fmt.Sprintf("%+v", want), fmt.Sprintf("%+v", got), "the same settings")
}

// TestCheckDeployment: pop3d check finds before any start what serve would
// trip on — an account that does not exist, a passwd-file that is not
// there or that account cannot read, a mail root it cannot write, an
// address or port that cannot be, a metrics address without a port —
// names each with the file and line of its setting, and all at once.
func TestCheckDeployment(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "pop3d.toml")
	require.NoError(t, os.WriteFile(conf, []byte(`# a site's config
user = "no-such-account-here"
listen = ["127.0.0.1:110", "127.0.0.1:99999"]
lmtp = "localhost:lmtp"
mail_root = "`+filepath.Join(dir, "missing")+`"
passwd = "`+filepath.Join(dir, "passwd")+`"
metrics = "127.0.0.1"
`), 0o600))
	err := run([]string{"check", "--config", conf}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	t.Logf("%v", err)
	for _, want := range []string{
		conf + `:2: user: `,
		conf + `:3: listen: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`,
		conf + `:4: lmtp: "localhost:lmtp": port "lmtp"`,
		conf + `:5: mail_root: `,
		conf + `:6: passwd: `,
		conf + `:7: metrics: "127.0.0.1": `,
	} {
		assert.Contains(t, err.Error(), want)
	}

	if os.Geteuid() == 0 {
		// As root, files are judged as the account will see them.
		require.NoError(t, os.Mkdir(filepath.Join(dir, "mail"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte("alice:{PLAIN}pw\n"), 0o600))
		require.NoError(t, os.WriteFile(conf, []byte(`user = "nobody"
listen = ["127.0.0.1:110"]
mail_root = "`+filepath.Join(dir, "mail")+`"
passwd = "`+filepath.Join(dir, "passwd")+`"
`), 0o600))
		err := run([]string{"check", "--config", conf}, nil, io.Discard, io.Discard)
		require.Error(t, err)
		assert.Contains(t, err.Error(), conf+":3: mail_root: "+filepath.Join(dir, "mail")+" cannot be written by user nobody (owner 0:0, mode -rwx------)")
		assert.Contains(t, err.Error(), conf+":4: passwd: "+filepath.Join(dir, "passwd")+" cannot be read by user nobody (owner 0:0, mode -rw-------)")
		assert.NotContains(t, err.Error(), "can be changed", "everything here is root's")

		// Root reads the config and TLS files for the server: one the
		// account can change (here the key's directory is writable by
		// all, and the certificate is a link to a file it owns) could
		// make root hand it another service's key.
		nobody, lerr := lookupAccount("nobody", "")
		require.NoError(t, lerr)
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		require.NoError(t, selfSigned(cert, key))
		keys := filepath.Join(dir, "keys")
		require.NoError(t, os.Mkdir(keys, 0o777))
		require.NoError(t, os.Chmod(keys, 0o777))
		require.NoError(t, os.Rename(key, filepath.Join(keys, "key.pem")))
		theirs := filepath.Join(dir, "theirs.pem")
		require.NoError(t, os.Rename(cert, theirs))
		require.NoError(t, os.Chown(theirs, nobody.uid, nobody.gid))
		require.NoError(t, os.Symlink(theirs, cert))
		require.NoError(t, os.WriteFile(conf, []byte(`user = "nobody"
tls_cert = "`+cert+`"
tls_key = "`+filepath.Join(keys, "key.pem")+`"
`), 0o600))
		err = run([]string{"check", "--config", conf}, nil, io.Discard, io.Discard)
		require.Error(t, err)
		t.Logf("%v", err)
		assert.Contains(t, err.Error(), conf+":2: tls_cert: "+cert+" can be changed by user nobody ("+theirs+" is its own)")
		assert.Contains(t, err.Error(), conf+":3: tls_key: "+filepath.Join(keys, "key.pem")+" can be changed by user nobody ("+keys+" has owner 0:0, mode drwxrwxrwx)")
		assert.NotContains(t, err.Error(), "config: ", "the config file is root's")
	}
}

// TestProfilesDiff: pop3d profiles --diff lists the variations on which
// two profiles differ, with their clauses, and no others.
func TestProfilesDiff(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"profiles", "--diff", "rfc1939", "exchange2010"}, nil, &out, io.Discard))
	assert.Regexp(t, `(?m)^APOP\s+true\s+false\s+`, out.String())
	assert.Regexp(t, `(?m)^PlaintextAuth\s+always\s+secure\s+`, out.String())
	assert.Regexp(t, `\d+ of \d+ variations differ`, out.String())
	out.Reset()
	require.NoError(t, run([]string{"profiles", "--diff", "exchange2010", "exchange2010"}, nil, &out, io.Discard))
	assert.Contains(t, out.String(), "0 of ")
	assert.Error(t, run([]string{"profiles", "--diff", "rfc1939", "nonesuch"}, nil, io.Discard, io.Discard))
}

// TestExpireCommand: pop3d expire removes the messages older than
// --older-than (a dry run only counts them) and says how many.
func TestExpireCommand(t *testing.T) {
	root := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "alice", sub), 0o700))
	}
	old := filepath.Join(root, "alice", "new", "1.M1P1.host")
	require.NoError(t, os.WriteFile(old, []byte("Subject: old\n\nold\n"), 0o600))
	back := time.Now().Add(-90 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(old, back, back))
	require.NoError(t, os.WriteFile(filepath.Join(root, "alice", "new", "2.M1P1.host"), []byte("Subject: new\n\nnew\n"), 0o600))
	var out bytes.Buffer
	require.NoError(t, run([]string{"expire", "--mail-root", root, "--older-than", "60d", "--dry-run"}, nil, &out, io.Discard))
	assert.Contains(t, out.String(), "would remove 1 messages")
	out.Reset()
	require.NoError(t, run([]string{"expire", "--mail-root", root, "--older-than", "60d"}, nil, &out, io.Discard))
	assert.Contains(t, out.String(), "removed 1 messages")
	left, err := filepath.Glob(filepath.Join(root, "alice", "cur", "*"))
	require.NoError(t, err)
	require.Len(t, left, 1)
	assert.Contains(t, left[0], "2.M1P1.host")
	assert.Error(t, run([]string{"expire", "--mail-root", root}, nil, io.Discard, io.Discard), "no age given")
}
