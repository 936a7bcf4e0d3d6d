package pop3gen

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
	"github.com/pop3kit/pop3kit/pop3"
)

// TestImportsOnlyStandardLibrary: the generated package must be importable
// by any server without pulling in the generator's dependencies, so its
// non-test files import nothing but the standard library and the runtime,
// and the runtime's nothing but the standard library.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	runtime, err := filepath.Glob("../pop3/*.go")
	require.NoError(t, err)
	files = append(files, runtime...)
	require.NotEmpty(t, files)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/pop3kit/pop3kit/pop3" && !strings.HasPrefix(name, "../") {
				continue // the runtime
			}
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
	clause.Covers(t, "C0001", "E0001", "V0001", "V0011")
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
		c, ok := clauseByID(id)
		if assert.True(t, ok, "clause %s missing", id) {
			assert.Contains(t, c.Source, "MS-STANXPOP3")
			assert.NotEmpty(t, c.Behaviour)
			assert.Contains(t, []string{"core", "server", "store", "n/a"}, c.Layer)
		}
	}
	_, ok := clauseByID("V0013")
	assert.False(t, ok)
	c, _ := clauseByID("V0011")
	assert.Equal(t, []string{"PassKeepsSpaces"}, c.Variations)
}

// TestHandlerHasEveryCommand: C0006 — the server MUST support every
// minimal RFC 1939 command. Every command of the table is served: by a
// method of Handler (what no core can answer: USER, PASS), by an optional
// interface of its own (where a variation enables it, or AUTH), or by the
// core itself, which then answers it for a Handler that has nothing but
// the required methods.
func TestHandlerHasEveryCommand(t *testing.T) {
	clause.Covers(t, "C0006")
	// Go's initialisms keep their capitals (APOP, STLS, UIDL, UTF8).
	initialisms := map[string]bool{"APOP": true, "STLS": true, "UIDL": true, "UTF8": true}
	optional := map[string]reflect.Type{
		"APOP": reflect.TypeOf((*APOPHandler)(nil)).Elem(),
		"AUTH": reflect.TypeOf((*pop3.AuthHandler)(nil)).Elem(),
		"UTF8": reflect.TypeOf((*UTF8Handler)(nil)).Elem(),
		"LANG": reflect.TypeOf((*LangHandler)(nil)).Elem(),
	}
	required := map[string]bool{"USER": true, "PASS": true}
	// The lines that exercise the commands the core answers.
	coreLines := map[string]string{
		"STLS": "STLS", "CAPA": "CAPA", "QUIT": "QUIT", "STAT": "STAT", "LIST": "LIST", "RETR": "RETR 1",
		"DELE": "DELE 1", "NOOP": "NOOP", "RSET": "RSET", "TOP": "TOP 1 1", "UIDL": "UIDL 1",
	}
	h := reflect.TypeOf((*Handler)(nil)).Elem()
	methods := map[string]bool{}
	for _, c := range protocol.Commands[1:] {
		name := c.Name
		m := name[:1] + strings.ToLower(name[1:])
		if initialisms[name] {
			m = name
		}
		methods[m] = true
		if c.Enabled != nil {
			require.NotNil(t, optional[name], "%s is enabled by a variation: it needs an optional interface", name)
		}
		switch {
		case required[name]:
			_, ok := h.MethodByName(m)
			assert.True(t, ok, "Handler lacks %s for %s", m, name)
		case optional[name] != nil:
			_, ok := optional[name].MethodByName(m)
			assert.True(t, ok, "%s lacks %s for %s", optional[name].Name(), m, name)
		default:
			_, ok := h.MethodByName(m)
			assert.False(t, ok, "the core answers %s: Handler needs no %s", name, m)
			line, ok := coreLines[name]
			require.True(t, ok, "no line to check that the core answers %s", name)
			var out bytes.Buffer
			s := pop3.NewSession(minimalHandler{drop: &memDrop{bodies: []string{"Subject: a\n\nbody\n"}}}, pop3.NewWriter(&out), dialect(RFC1939()))
			s.SetMode(pop3.ModeSecure)
			s.SetTLS(true, false)
			if c.In&pop3.StateAuthorization == 0 {
				s.Feed([]byte("USER a\r\n"))
				s.Feed([]byte("PASS b\r\n"))
				require.Equal(t, pop3.StateTransaction, s.State())
			}
			out.Reset()
			s.Feed([]byte(line + "\r\n"))
			assert.True(t, strings.HasPrefix(out.String(), "+OK"), "the core answers %s: %q", name, out.String())
		}
	}
	for i := range h.NumMethod() {
		assert.True(t, methods[h.Method(i).Name], "Handler.%s is no command of the table", h.Method(i).Name)
	}
	for _, minimal := range []string{"USER", "PASS", "QUIT", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET"} {
		found := false
		for _, c := range protocol.Commands[1:] {
			found = found || c.Name == minimal
		}
		assert.True(t, found, "%s is missing from the table", minimal)
	}
}

// TestNotApplicableClauses: C0010 (Active Directory sites) describes a part
// of Exchange that a POP3 server on a Maildir does not have; the table says
// so, and why, rather than leaving it out. (E0003 and E0004, quotas and
// their warnings, are the server's now: server/quota_test.go.)
func TestNotApplicableClauses(t *testing.T) {
	clause.Covers(t, "C0010")
	for id, why := range map[string]string{"C0010": "sites"} {
		c, ok := clauseByID(id)
		require.True(t, ok, id)
		assert.Equal(t, "n/a", c.Layer, id)
		assert.Contains(t, c.Behaviour, why, id)
	}
}

// clauseByID returns the clause of the table with the given id.
func clauseByID(id string) (Clause, bool) {
	i := slices.IndexFunc(Clauses, func(c Clause) bool { return c.ID == id })
	if i < 0 {
		return Clause{}, false
	}
	return Clauses[i], true
}
