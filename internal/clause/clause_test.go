package clause

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPackage: the package of a test function, module-relative, whatever
// the closure or external-test suffixes.
func TestPackage(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/pop3kit/pop3kit/server.TestX":              "server",
		"github.com/pop3kit/pop3kit/server_test.TestX.func1":   "server",
		"github.com/pop3kit/pop3kit/gen/static.TestCutLine":    "gen/static",
		"github.com/pop3kit/pop3kit.TestRoot":                  ".",
		"github.com/pop3kit/pop3kit/internal/clause.TestX.f.1": "internal/clause",
	} {
		assert.Equal(t, want, Package(fn), fn)
	}
}

// TestCoversRecords: with POP3KIT_CLAUSES set, a call records its ids
// under the caller's package.
func TestCoversRecords(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, dir)
	Covers(t, "RFC1939-5-LIST", "V0011")
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, "RFC1939-5-LIST\tinternal/clause\nV0011\tinternal/clause\n", string(b))
}

// TestCoversRefusesUnknownIDs: a typo in an id fails the test that
// declares it.
func TestCoversRefusesUnknownIDs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, dir)
	ft := &fakeT{TB: t}
	Covers(ft, "RFC1939-5-LIS")
	assert.True(t, ft.failed)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	assert.Empty(t, files, "an unknown id is not recorded")
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
