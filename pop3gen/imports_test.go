package pop3gen

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportsOnlyStandardLibrary: the generated package must be importable
// by any server without pulling in the generator's dependencies, so its
// non-test files import nothing outside the standard library.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first := strings.SplitN(path, "/", 2)[0]
			assert.NotContains(t, first, ".", "%s imports %s, which is not in the standard library", name, path)
		}
	}
}

// TestGeneratedHeader: every non-test file carries the generated-code
// header, so tools and reviewers know not to edit it.
func TestGeneratedHeader(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		first, _, _ := strings.Cut(string(b), "\n")
		assert.Regexp(t, `^// Code generated .* DO NOT EDIT\.$`, first, name)
	}
}

// TestClauses: the clause table carries every MS-STANXPOP3 statement under
// its id — 2.1.1–2.1.5, V0001–V0012, C0001–C0011, E0001–E0007.
func TestClauses(t *testing.T) {
	var want []string
	for i := 1; i <= 5; i++ {
		want = append(want, "MS-2.1."+strconv.Itoa(i))
	}
	for _, p := range []struct {
		prefix string
		n      int
	}{{"V", 12}, {"C", 11}, {"E", 7}} {
		for i := 1; i <= p.n; i++ {
			want = append(want, p.prefix+strings.Repeat("0", 4-len(strconv.Itoa(i)))+strconv.Itoa(i))
		}
	}
	for _, id := range want {
		c, ok := ClauseByID(id)
		if assert.True(t, ok, "clause %s missing", id) {
			assert.Contains(t, c.Source, "MS-STANXPOP3")
			assert.NotEmpty(t, c.Behaviour)
			assert.Contains(t, []string{"core", "server", "store", "n/a"}, c.Layer)
		}
	}
	_, ok := ClauseByID("V0013")
	assert.False(t, ok)
	c, _ := ClauseByID("V0011")
	assert.Equal(t, []string{"PassKeepsSpaces"}, c.Variations)
}
