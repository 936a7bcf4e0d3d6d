package gen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/spec"
)

// TestRuntimeFixNeedsNoRegeneration: a generated package imports the
// runtime rather than holding a copy of it, so a fix to the runtime reaches
// a server built on it by rebuilding alone (what go get -u does). The test
// generates a package into a module of its own, builds a program on it
// against a copy of the runtime, changes the runtime, and builds again:
// the program behaves as the changed runtime says, and not one byte of
// the generated package changed.
func TestRuntimeFixNeedsNoRegeneration(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds a module twice with the go tool; skipped in -short runs (never under CI=true)")
	}
	dir := t.TempDir()
	// A copy of the runtime, as a module of its own: it imports only the
	// standard library.
	kit := filepath.Join(dir, "pop3kit")
	require.NoError(t, os.MkdirAll(filepath.Join(kit, "pop3"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(kit, "go.mod"), []byte("module github.com/pop3kit/pop3kit\n\ngo 1.26\n"), 0o644))
	srcs, err := filepath.Glob(filepath.Join("..", "pop3", "*.go"))
	require.NoError(t, err)
	for _, p := range srcs {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(kit, "pop3", filepath.Base(p)), b, 0o644))
	}

	app := filepath.Join(dir, "app")
	files, err := Generate(&spec.POP3, Options{Dir: filepath.Join(app, "internal", "mypop3")})
	require.NoError(t, err)
	_, err = Write(files, false)
	require.NoError(t, err)
	mod := "module example.com/app\n\ngo 1.26\n\nrequire github.com/pop3kit/pop3kit v0.0.0\n\nreplace github.com/pop3kit/pop3kit => " + kit + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(app, "go.mod"), []byte(mod), 0o644))
	main := `package main

import (
	"os"

	"example.com/app/internal/mypop3"
	"github.com/pop3kit/pop3kit/pop3"
)

func main() {
	v := mypop3.RFC1939()
	pop3.NewSession(nil, pop3.NewWriter(os.Stdout), &v).Feed([]byte("XYZZY\r\n"))
}
`
	require.NoError(t, os.WriteFile(filepath.Join(app, "main.go"), []byte(main), 0o644))
	run := func() string {
		t.Helper()
		cmd := exec.Command("go", "run", ".")
		cmd.Dir = app
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GONOSUMDB=*", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go run:\n%s", out)
		return string(out)
	}
	snapshot := func() map[string][]byte {
		got := map[string][]byte{}
		for name := range files {
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			got[name] = b
		}
		return got
	}
	assert.Equal(t, "-ERR unknown command\r\n", run())
	before := snapshot()

	// The fix: the runtime words the refusal differently.
	table := filepath.Join(kit, "pop3", "table.go")
	b, err := os.ReadFile(table)
	require.NoError(t, err)
	fixed := bytes.Replace(b, []byte(`"unknown command"`), []byte(`"unknown command (fixed in the runtime)"`), 1)
	require.NotEqual(t, b, fixed, "the runtime's table.go declares ErrUnknownCommand")
	require.NoError(t, os.WriteFile(table, fixed, 0o644))

	assert.Equal(t, "-ERR unknown command (fixed in the runtime)\r\n", run(), "a rebuild alone brings the fix")
	assert.Equal(t, before, snapshot(), "the generated package was not regenerated")
}
