package gen

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// usingSection is the README section that TestUsingFromAnotherModule
// follows word for word.
const usingSection = "## Using pop3kit in your own server"

// readmeBlocks returns the fenced blocks of the given language in the
// README section that starts with heading, in order.
func readmeBlocks(t *testing.T, heading, lang string) []string {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	require.True(t, i >= 0, "README has no %q section", heading)
	s = s[i+len(heading)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	var blocks []string
	for {
		open := "\n```" + lang + "\n"
		i := strings.Index(s, open)
		if i < 0 {
			return blocks
		}
		s = s[i+len(open):]
		j := strings.Index(s, "\n```\n")
		require.True(t, j >= 0, "unterminated ```%s block in %q", lang, heading)
		blocks = append(blocks, s[:j+1])
		s = s[j:]
	}
}

// TestUsingFromAnotherModule runs the README's "Using pop3kit in your own
// server" commands, as written there, in a new module outside this one,
// offline (no module proxy, no checksum database; a replace directive to
// this checkout): with the section's gen.go and main.go, it installs the
// generator as a tool, generates the core from the table, then from the
// table gen.go extends with a command of its own, and builds main.go's
// server on it. The server then runs and answers over TCP: the new
// command, a login whose Maildrop the core serves, and a QUIT that finds
// it read-only.
func TestUsingFromAnotherModule(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds a module and a server with the go tool; skipped in -short runs (never under CI=true)")
	}
	scripts := readmeBlocks(t, usingSection, "sh")
	goFiles := readmeBlocks(t, usingSection, "go")
	require.Len(t, scripts, 1, "the section has one sh block: the commands")
	require.Len(t, goFiles, 2, "the section shows gen.go and main.go")
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "gen.go"), []byte(goFiles[0]), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(goFiles[1]), 0o644))

	env := append(os.Environ(),
		"POP3KIT="+root,
		// Offline, as the README says: jennifer, the generator's one
		// dependency, comes from the module cache this checkout builds with.
		"GOPROXY=off", "GONOSUMDB=github.com/dave/jennifer",
		"GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local",
	)
	cmd := exec.Command("sh", "-e", "-x", "-c", scripts[0])
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the README's commands:\n%s", out)

	// The extended table reached the generated package.
	b, err := os.ReadFile(filepath.Join(dir, "internal", "mypop3", "protocol.go"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "CmdXHLO")

	// The server serves the new command and the maildrop.
	srv := exec.Command(filepath.Join(dir, "mymail"), "-listen", "127.0.0.1:0")
	logs, err := srv.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	first, err := bufio.NewReader(logs).ReadString('\n')
	require.NoError(t, err)
	_, addr, ok := strings.Cut(strings.TrimSpace(first), "POP3 on ")
	require.True(t, ok, "mymail logged %q", first)
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(line, "+OK mymail ready"), "greeting %q", line)
	message := "Subject: hello\r\n\r\nWelcome to mymail.\r\n"
	for _, ex := range []struct{ send, want string }{
		{"XHLO world", "+OK hello world\r\n"},
		{"XHLO", "-ERR"},
		{"USER demo", "+OK"},
		{"PASS demo", "+OK maildrop has 1 message (" + strconv.Itoa(len(message)) + " octets)\r\n"},
		{"RETR 1", "+OK " + strconv.Itoa(len(message)) + " octets\r\n" + message + ".\r\n"},
		{"XHLO world", "-ERR"}, // AUTHORIZATION only
		{"DELE 1", "+OK message 1 deleted\r\n"},
		{"QUIT", "-ERR [SYS/PERM] this maildrop is read-only\r\n"},
	} {
		_, err = conn.Write([]byte(ex.send + "\r\n"))
		require.NoError(t, err)
		got := make([]byte, 0, len(ex.want))
		for !strings.HasSuffix(string(got), "\r\n") || len(got) < len(ex.want) {
			line, err := r.ReadString('\n')
			require.NoError(t, err, "sent %s, got %q so far", ex.send, got)
			got = append(got, line...)
		}
		assert.True(t, strings.HasPrefix(string(got), ex.want), "sent %s, got %q, want %q", ex.send, got, ex.want)
	}
}
