package server_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storeVariations says, for every variation the table leaves to the store
// (pop3gen carries it, the backend must apply it), how pop3d answers it:
// the tests of this package that show it honoured, or why pop3d declines
// it. A store variation added to the table without an entry here fails
// TestStoreVariationsHonoured, so no profile promises what pop3d ignores.
var storeVariations = map[string]struct {
	tests    []string // tests that show pop3d honouring every value
	declined string   // why pop3d does not honour it, when it does not
}{
	"MaildropAccess": {tests: []string{"TestLockInUse", "TestSnapshot"}},
	"ExactSizes":     {tests: []string{"TestSizesStatEqualsSumOfList"}},
	"UserNameCase":   {tests: []string{"TestUserNameCase"}},
	"UIDLFormat":     {tests: []string{"TestUIDsPersistAndNeverRepeat", "TestDovecotUIDList"}},
}

// TestStoreVariationsHonoured: each store variation of pop3gen's table has
// an entry in storeVariations, and each entry names tests of this package
// that exist and, in code rather than in a comment, set the variation or
// declare one of its clauses; or says why pop3d declines it. An entry for
// a variation that is not (or no longer) the store's is stale.
func TestStoreVariationsHonoured(t *testing.T) {
	tests := testSources(t)
	store := map[string]bool{}
	for _, v := range pop3gen.VariationTable {
		if v.Layer != "store" {
			continue
		}
		store[v.Name] = true
		t.Run(v.Name, func(t *testing.T) {
			e, ok := storeVariations[v.Name]
			require.True(t, ok, "%s is honoured by the store, but storeVariations does not say how pop3d answers it: name the tests that show pop3d honouring it, or say why it is declined", v.Name)
			if e.declined != "" {
				assert.Empty(t, e.tests, "%s: declined, yet tests are named", v.Name)
				return
			}
			require.NotEmpty(t, e.tests, "%s: name a test, or say why pop3d declines it", v.Name)
			for _, name := range e.tests {
				lits, ok := tests[name]
				if !assert.True(t, ok, "%s: test %s does not exist in server/", v.Name, name) {
					continue
				}
				assert.True(t, slices.ContainsFunc(lits, func(s string) bool {
					return strings.Contains(s, v.Name) || slices.Contains(v.Clauses, s)
				}), "%s: %s neither sets %s nor declares one of its clauses %v", v.Name, name, v.Name, v.Clauses)
			}
		})
	}
	for name := range storeVariations {
		assert.True(t, store[name], "storeVariations lists %s, which is not a store variation of the table", name)
	}
}

// testSources returns the string literals of each test function of this
// package, by name.
func testSources(t *testing.T) map[string][]string {
	paths, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	out := map[string][]string{}
	fset := token.NewFileSet()
	for _, p := range paths {
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Body == nil {
				continue
			}
			lits := []string{}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if l, ok := n.(*ast.BasicLit); ok && l.Kind == token.STRING {
					if s, err := strconv.Unquote(l.Value); err == nil {
						lits = append(lits, s)
					}
				}
				return true
			})
			out[fn.Name.Name] = lits
		}
	}
	return out
}
