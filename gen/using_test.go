package gen

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// usingServer is a server on the extended core, in the temporary module:
// it greets, then feeds each line to the generated Session, whose Handler
// serves only the table's new command (the other methods are those of a
// nil Handler: never called here).
//
// It uses the core's API of today (Handler, NewSession, Feed); with the
// Backend/Session runtime it becomes a Backend whose session implements
// the new command's interface, served by the core's Server.
const usingServer = `package main

import (
	"bufio"
	"fmt"
	"net"

	"example.com/mymail/internal/mypop3"
)

type hello struct{ mypop3.Handler }

func (hello) Xhlo(w *mypop3.Writer, arg []byte) error {
	w.OK("hello " + string(arg))
	return nil
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr())
	conn, err := ln.Accept()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	bw := bufio.NewWriter(conn)
	w := mypop3.NewWriter(bw)
	v, err := mypop3.Profile(mypop3.DefaultProfile)
	if err != nil {
		panic(err)
	}
	s := mypop3.NewSession(hello{}, w, v)
	w.OK("mymail ready")
	bw.Flush()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		a := s.Feed(line)
		bw.Flush()
		if a != mypop3.ActionContinue {
			return
		}
	}
}
`

// TestUsingFromAnotherModule runs the README's "Using pop3kit in your own
// server" commands, as written there, in a new module outside this one,
// offline (no module proxy, no checksum database; a replace directive to
// this checkout): it installs the generator as a tool, generates the core
// from the table, then from the table the README's gen.go extends with a
// command of its own, builds a server on it and talks to it over TCP.
func TestUsingFromAnotherModule(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds a module and a server with the go tool; skipped in -short runs (never under CI=true)")
	}
	scripts := readmeBlocks(t, usingSection, "sh")
	goFiles := readmeBlocks(t, usingSection, "go")
	require.Len(t, scripts, 1, "the section has one sh block: the commands")
	require.NotEmpty(t, goFiles, "the section shows gen.go")
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "gen.go"), []byte(goFiles[0]), 0o644))

	env := append(os.Environ(),
		"POP3KIT="+root,
		// Offline, as the README says: jennifer, the generator's one
		// dependency, comes from the module cache this checkout builds with.
		"GOPROXY=off", "GONOSUMDB=github.com/dave/jennifer",
		"GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local",
	)
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
		return string(out)
	}
	run("sh", "-e", "-x", "-c", scripts[0])

	// The extended table reached the generated package.
	b, err := os.ReadFile(filepath.Join(dir, "internal", "mypop3", "commands.go"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "CmdXHLO")

	// A server on it serves the new command.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(usingServer), 0o644))
	run("go", "build", "-o", "mymail", ".")
	srv := exec.Command(filepath.Join(dir, "mymail"))
	out, err := srv.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", strings.TrimSpace(addr), 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "+OK mymail ready\r\n", line)
	_, err = conn.Write([]byte("XHLO world\r\n"))
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "+OK hello world\r\n", line, "sent XHLO world")
	_, err = conn.Write([]byte("XHLO\r\n"))
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(line, "-ERR"), "sent XHLO without its argument, got %q", line)
}
