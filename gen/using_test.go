package gen

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
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
	// The server's users talk to it with the library's own client.
	c, err := pop3.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Conn().SetDeadline(time.Now().Add(30*time.Second)))
	assert.True(t, strings.HasPrefix(c.Greeting(), "mymail ready"), "greeting %q", c.Greeting())
	message := "Subject: hello\r\n\r\nWelcome to mymail.\r\n"
	r, err := c.Cmd("XHLO world")
	require.NoError(t, err)
	assert.Equal(t, "hello world", string(r.Text), "the table's own command")
	_, err = c.Cmd("XHLO")
	assert.Error(t, err, "XHLO needs its argument")
	require.NoError(t, c.User("demo"))
	require.NoError(t, c.Pass("demo"))
	n, octets, err := c.Stat()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, int64(len(message)), octets)
	body, err := c.Retr(1)
	require.NoError(t, err)
	got, err := io.ReadAll(body)
	require.NoError(t, err)
	assert.Equal(t, message, string(got))
	_, err = c.Cmd("XHLO world")
	assert.Error(t, err, "XHLO is valid in AUTHORIZATION only")
	require.NoError(t, c.Dele(1))
	var perr *pop3.Error
	require.ErrorAs(t, c.Quit(), &perr)
	assert.Equal(t, "-ERR [SYS/PERM] this maildrop is read-only", perr.Error(), "UPDATE found the maildrop read-only")
}
