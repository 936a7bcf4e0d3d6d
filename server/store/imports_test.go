package store_test

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportGraph holds the seams of the server to their arrows: the
// store interfaces depend on the standard library alone, the Maildir
// store on them alone, and a store (pgstore) imports them, never the
// heavy dependencies of the server's other parts (Kerberos, JOSE,
// Prometheus) directly.
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, []string{"github.com/pop3kit/pop3kit/server/store"}, strings.Fields(string(out)),
		"package store imports nothing but the standard library")

	out, err = exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../maildir").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.ElementsMatch(t, []string{"github.com/pop3kit/pop3kit/internal/faultinject", "github.com/pop3kit/pop3kit/server/store",
		"github.com/pop3kit/pop3kit/server/maildir"}, strings.Fields(string(out)),
		"the Maildir store imports the store interfaces and the standard library")

	paths, err := filepath.Glob(filepath.Join("..", "pgstore", "*.go"))
	require.NoError(t, err)
	usesStore := false
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			usesStore = usesStore || path == "github.com/pop3kit/pop3kit/server/store"
			for _, heavy := range []string{"github.com/jcmturner/gokrb5", "github.com/go-jose", "github.com/prometheus"} {
				assert.False(t, strings.HasPrefix(path, heavy), "%s imports %s", p, path)
			}
		}
	}
	assert.True(t, usesStore, "pgstore implements the store interfaces of package store")
}
