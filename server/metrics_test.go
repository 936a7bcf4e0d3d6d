package server_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// scrape fetches the metrics over HTTP and returns the value of each
// series ("name{labels}" → value).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		require.NoError(t, err, l)
		out[l[:i]] = v
	}
	return out
}

// TestMetricsEndpoint scrapes the metrics over HTTP before and after a
// few sessions and checks that the values move as the sessions did:
// logins and failures by mechanism and reason, commands by result, RETR's
// histograms, UPDATE's removals, ended sessions and their octets.
func TestMetricsEndpoint(t *testing.T) {
	e, _ := newLoggedEnv(t, "rfc1939", nil)
	e.deliver("alice", "Subject: one\n\nbody\n", "")
	e.deliver("alice", "Subject: two\n\nbody\n", "")
	hs := httptest.NewServer(e.srv.MetricsHandler())
	defer hs.Close()
	before := scrape(t, hs.URL)
	assert.Zero(t, before[`pop3d_logins_total{mechanism="USER"}`])
	b := server.BuildInfo()
	assert.Equal(t, 1.0, before[`pop3d_build_info{goversion="`+b.GoVersion+`",modified="`+strconv.FormatBool(b.Modified)+`",revision="`+b.Revision+`",version="`+b.Version+`"}`],
		"pop3d_build_info names the build")
	assert.Zero(t, before["pop3d_sessions_current"])

	c := e.login("alice", "secret")
	c.Send("RETR 1")
	c.Multi()
	assert.Contains(t, c.Cmd("RETR 9"), "-ERR")
	c.Cmd("DELE 2")
	mid := scrape(t, hs.URL)
	assert.Equal(t, 1.0, mid["pop3d_sessions_current"])
	c.Cmd("QUIT")

	bad := e.dial()
	bad.Cmd("USER alice")
	assert.Contains(t, bad.Cmd("PASS wrong"), "-ERR")
	bad.Cmd("QUIT")

	var m map[string]float64
	require.Eventually(t, func() bool {
		m = scrape(t, hs.URL)
		// A session is counted as ended when its handler closes, a moment
		// before the runtime stops serving its connection: wait for both.
		return m[`pop3d_sessions_total{profile="rfc1939",tls="none"}`] == 2 && m["pop3d_sessions_current"] == 0
	}, 5*time.Second, 20*time.Millisecond, "both sessions counted when they end, and none current")
	assert.Equal(t, 1.0, m[`pop3d_logins_total{mechanism="USER"}`])
	assert.Equal(t, 1.0, m[`pop3d_login_failures_total{mechanism="USER",reason="invalid_credentials"}`])
	assert.Equal(t, 1.0, m[`pop3d_commands_total{command="RETR",result="ok"}`])
	assert.Equal(t, 1.0, m[`pop3d_commands_total{command="RETR",result="err"}`])
	assert.Equal(t, 2.0, m[`pop3d_commands_total{command="QUIT",result="ok"}`])
	assert.Equal(t, 1.0, m["pop3d_retr_duration_seconds_count"])
	assert.Equal(t, float64(len("Subject: one\n\nbody\n")), m["pop3d_retr_size_bytes_sum"])
	assert.Equal(t, 1.0, m["pop3d_update_removed_total"])
	assert.Greater(t, m[`pop3d_octets_total{direction="out"}`], m[`pop3d_octets_total{direction="in"}`])
}

// TestLogoutLine: every session ends with one "logout" line carrying
// Dovecot's fields — who, from where, how long, why it ended, octets in
// and out, and top=, retr=, del=, size= for a logged-in session. top=
// counts the octets TOP sent, as retr= does (before, it counted what was
// read from the file: top=2/32768 for two TOPs of 57 and 153 octets).
func TestLogoutLine(t *testing.T) {
	e, logs := newLoggedEnv(t, "rfc1939", nil)
	body := "Subject: one\n\nbody\n"
	e.deliver("alice", body, "")
	c := e.login("alice", "secret")
	c.Send("RETR 1")
	c.Multi()
	c.Send("TOP 1 0")
	c.Multi()
	c.Cmd("DELE 1")
	c.Cmd("QUIT")
	idle := e.dial()
	idle.C.Close()
	var line string
	require.Eventually(t, func() bool {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "msg=logout") {
				n++
				if strings.Contains(l, "user=alice") {
					line = l
				}
			}
		}
		return n == 2 && line != ""
	}, 5*time.Second, 20*time.Millisecond, "one logout line per session:\n%s", logs.String())
	for _, want := range []string{`reason=quit`, `mechanism=USER`, `tls=none`,
		`retr=1/` + strconv.Itoa(len(body)), `top=1/` + strconv.Itoa(len("Subject: one\n\n")) + ` `, `del=1/1`, `size=`} {
		assert.Contains(t, line, want)
	}
	assert.Regexp(t, regexp.MustCompile(`remote=127\.0\.0\.1:\d+`), line)
	assert.Regexp(t, regexp.MustCompile(`in=\d+ out=\d+`), line)
	assert.Contains(t, logs.String(), "reason=\"client closed the connection\"")
}

// TestProtocolLog: a session from a listed network, and a listed user's
// session from the login on, are protocol-logged — commands and reply
// status lines — with the password replaced by ****; others are not.
func TestProtocolLog(t *testing.T) {
	e, logs := newLoggedEnv(t, "rfc1939", nil, func(c *server.Config) {
		c.ProtocolLogUsers = []string{"bob"}
		c.ProtocolLogNetworks = []string{"127.0.0.2/32"}
	})
	e.deliver("alice", "Subject: one\n\nbody\n", "")
	c := e.login("alice", "secret")
	c.Cmd("STAT")
	c.Cmd("QUIT")
	assert.NotContains(t, logs.String(), "msg=protocol", "alice, from 127.0.0.1, is not logged")

	b := e.login("bob", "hunter2")
	b.Cmd("STAT")
	b.Cmd("QUIT")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `line=QUIT`) }, 5*time.Second, 20*time.Millisecond)
	assert.Regexp(t, `msg=protocol remote=\S+ user=bob dir=in line=STAT`, logs.String())
	assert.Contains(t, logs.String(), `dir=out line="+OK 0 0"`)
	assert.NotContains(t, logs.String(), "hunter2")

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	conn, err := d.Dial("tcp", e.addr)
	require.NoError(t, err)
	from2 := e.wrap(conn)
	from2.Cmd("USER alice")
	from2.Cmd("PASS secret")
	from2.Cmd("QUIT")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `dir=in line="PASS ****"`) }, 5*time.Second, 20*time.Millisecond, logs.String())
	assert.NotContains(t, logs.String(), "PASS secret")
}

// TestMetricsNameTheMechanism: a SASL login and a failed one are counted
// under the mechanism the client chose, not a generic "SASL".
func TestMetricsNameTheMechanism(t *testing.T) {
	e, logs := newLoggedEnv(t, "rfc1939", nil)
	hs := httptest.NewServer(e.srv.MetricsHandler())
	defer hs.Close()
	c := e.dial()
	assert.True(t, strings.HasPrefix(c.Cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), "+OK"))
	c.Cmd("QUIT")
	d := e.dial()
	assert.True(t, strings.HasPrefix(d.Cmd("AUTH PLAIN AGFsaWNlAHdyb25n"), "-ERR"))
	m := scrape(t, hs.URL)
	assert.Equal(t, 1.0, m[`pop3d_logins_total{mechanism="PLAIN"}`])
	assert.Equal(t, 1.0, m[`pop3d_login_failures_total{mechanism="PLAIN",reason="invalid_credentials"}`])
	assert.Zero(t, m[`pop3d_logins_total{mechanism="SASL"}`])
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "mechanism=PLAIN") }, 5*time.Second, 20*time.Millisecond)
}

// TestMetricsOneAuthExchangeOneCommand: an AUTH exchange in two steps (the
// mechanism, a challenge, the response, as curl sends AUTH PLAIN) counts
// as one AUTH command, and a clean login counts no penalty. Before, curl's
// AUTH PLAIN login counted AUTH twice and one penalty.
func TestMetricsOneAuthExchangeOneCommand(t *testing.T) {
	e, _ := newLoggedEnv(t, "exchange2010", nil)
	hs := httptest.NewServer(e.srv.MetricsHandler())
	defer hs.Close()
	c := e.dial()
	require.Equal(t, "+ ", c.Cmd("AUTH PLAIN"))
	require.True(t, strings.HasPrefix(c.Cmd("AGFsaWNlAHNlY3JldA=="), "+OK"))
	c.Cmd("QUIT")
	m := scrape(t, hs.URL)
	assert.Equal(t, 1.0, m[`pop3d_commands_total{command="AUTH",result="ok"}`])
	assert.Zero(t, m[`pop3d_commands_total{command="AUTH",result="err"}`])
	assert.Zero(t, m[`pop3d_login_penalties_total`])
}

// TestDebugLogTracesEverySession: with the log at debug, every session's
// commands and replies are logged at debug (redacted as the protocol log
// is); at info, only the chosen users' and networks' are.
func TestDebugLogTracesEverySession(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		e, logs := newLeveledEnv(t, "exchange2010", level, nil)
		c := e.dial()
		c.Cmd("USER alice")
		c.Cmd("PASS secret")
		c.Cmd("QUIT")
		if level == slog.LevelDebug {
			require.Eventually(t, func() bool {
				return strings.Contains(logs.String(), `level=DEBUG msg=protocol`) && strings.Contains(logs.String(), `line="PASS ****"`)
			},
				5*time.Second, 20*time.Millisecond, logs.String())
			assert.NotContains(t, logs.String(), "PASS secret")
		} else {
			time.Sleep(100 * time.Millisecond)
			assert.NotContains(t, logs.String(), "msg=protocol")
		}
	}
}
