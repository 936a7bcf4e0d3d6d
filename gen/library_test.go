package gen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/spec"
)

// repoOptions are the options of the //go:generate line in doc.go, with
// paths under root.
func repoOptions(root string) Options {
	return Options{
		Pkg:      "pop3gen",
		Dir:      filepath.Join(root, "pop3gen"),
		Docs:     filepath.Join(root, "docs"),
		Coverage: filepath.Join(root, "docs", "coverage.txt"),
		README:   filepath.Join(root, "README.md"),
		Runtime:  filepath.Join(root, "pop3"),
	}
}

// TestBadPackageName: a package name that Go would refuse is one line of
// error, before anything is rendered.
func TestBadPackageName(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Pkg: "my-pop3"}, `package name "my-pop3" (-pkg) is not a Go identifier`},
		{Options{Pkg: "func"}, `package name "func" (-pkg) is a Go keyword`},
		{Options{Pkg: "main"}, `package name "main" (-pkg) cannot be imported`},
		{Options{Dir: "internal/my-pop3"}, `package name "my-pop3" (the base name of -out (set -pkg)) is not a Go identifier`},
		{Options{}, `no package name: set -pkg or -out`},
	} {
		_, err := Generate(&spec.POP3, tc.o)
		require.Error(t, err)
		assert.Equal(t, tc.want, err.Error())
		assert.NotContains(t, err.Error(), "\n")
	}
}

// TestValidateIsStable: a table with many problems gets the same report,
// line for line, on every run (no map order shows through).
func TestValidateIsStable(t *testing.T) {
	tab := clone()
	for i := range tab.Variations {
		tab.Variations[i].Profile["nosuch"+strings.Repeat("x", i%3)] = "1"
		tab.Variations[i].Profile["other"] = "1"
	}
	tab.Variations = tab.Variations[3:]
	tab.Errors = nil
	first := spec.Validate(tab)
	require.Error(t, first)
	for range 20 {
		assert.Equal(t, first.Error(), spec.Validate(tab).Error())
	}
}

// TestValidateNamesWhatTheRendererNeeds: rows whose names become Go
// identifiers, and rows the core uses by name, are checked before
// rendering.
func TestValidateNamesWhatTheRendererNeeds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*spec.Table)
		want   string
	}{
		{"profile name", func(t *spec.Table) { t.AddProfile(spec.Profile{Name: "My Site", Doc: "x"}, spec.RFC1939) },
			`profile "My Site" (row 4): name or alias "My Site" must be lower-case letters, digits and '-'`},
		{"profile function collides", func(t *spec.Table) { t.AddProfile(spec.Profile{Name: "rfc-1939", Doc: "x"}, spec.RFC1939) },
			`profile "rfc-1939" (row 4): its function RFC1939 is also profile "rfc1939"'s`},
		{"enum value", func(t *spec.Table) { t.Variation("UIDLFormat").Values[1] = "Dove cot" },
			`variation "UIDLFormat" (row 21): value "Dove cot" must be lower-case letters and digits`},
		{"response code name", func(t *spec.Table) { t.RespCodes[0].Name = "in-use" },
			`response code "IN-USE" (row 1): name "Codein-use" is not an exported Go identifier`},
		{"response code the core sends", func(t *spec.Table) { t.RespCodes = t.RespCodes[:3] },
			`response code "SysPerm": the runtime sends it as`},
		{"limit the core reads", func(t *spec.Table) { t.Limits = t.Limits[:1] },
			`limit "MaxUIDOctets": the runtime holds to`},
		{"variation names differing in case", func(t *spec.Table) {
			v := *t.Variation("APOP")
			v.Name = "Apop"
			t.Variations = append(t.Variations, v)
		}, `variation "Apop" (row 25): name differs from variation "APOP" only in case`},
		{"server capability without a field", func(t *spec.Table) {
			t.Capabilities = append(t.Capabilities, spec.Capability{Tag: "XFOO", When: "server", Clauses: []string{"RFC2449-5-CAPA"}, Doc: "x"})
		}, `capability "XFOO" (row 14): announced by the server, but the runtime has no CapaInfo field for it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := clone()
			tc.break_(tab)
			assert.Contains(t, strings.Join(problems(tab), "\n"), tc.want)
		})
	}
}

// TestStaticNeedsAreValidated: every name from the table that the
// hand-written runtime uses (it compiles against its table.go) is one that
// spec.Validate insists a table declares, so no table that passes
// validation drops a row the runtime sends.
func TestStaticNeedsAreValidated(t *testing.T) {
	files, err := Generate(&spec.POP3, Options{Pkg: "pop3gen", Runtime: "pop3"})
	require.NoError(t, err)
	table := string(files[filepath.Join("pop3", "table.go")])
	uses := staticUses(t)
	for _, name := range uses {
		if !strings.Contains(table, "\t"+name+" ") {
			continue // declared by the static code itself or by fixed generated code
		}
		tab := clone()
		switch {
		case strings.HasPrefix(name, "Err"), strings.HasPrefix(name, "err"):
			tab.Errors = dropRow(tab.Errors, func(e spec.Error) bool { return "Err"+e.Name == name || "err"+e.Name == name })
		case strings.HasPrefix(name, "Code"):
			tab.RespCodes = dropRow(tab.RespCodes, func(r spec.RespCode) bool { return "Code"+r.Name == name })
		default:
			tab.Limits = dropRow(tab.Limits, func(l spec.Limit) bool { return l.Name == name })
		}
		assert.Error(t, spec.Validate(tab), "the runtime uses %s, but a table without it passes spec.Validate: add it to spec's core lists", name)
	}
}

// staticUses returns the identifiers the hand-written files of the runtime
// use, table.go, variations.go and tests aside.
func staticUses(t *testing.T) []string {
	paths, err := filepath.Glob(filepath.Join("..", "pop3", "*.go"))
	require.NoError(t, err)
	seen := map[string]bool{}
	var names []string
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") || filepath.Base(p) == "table.go" || filepath.Base(p) == "variations.go" {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && !seen[id.Name] {
				seen[id.Name] = true
				names = append(names, id.Name)
			}
			return true
		})
	}
	require.NotEmpty(t, names)
	return names
}

func dropRow[T any](rows []T, match func(T) bool) []T {
	var out []T
	for _, r := range rows {
		if !match(r) {
			out = append(out, r)
		}
	}
	return out
}

// TestGenerateExtendedTable: a table extended by value — a command, a
// capability that advertises it, a response code and an error that uses
// it, a variation that switches the command on, a profile — generates a
// core that has each and compiles, and spec.POP3 is left as it was.
func TestGenerateExtendedTable(t *testing.T) {
	before := len(spec.POP3.Commands)
	tab := spec.POP3.Clone()
	tab.AddProfile(spec.Profile{Name: "mysite", Doc: "Exchange 2010 with XHLO."}, spec.Exchange2010)
	tab.Variations = append(tab.Variations, spec.Variation{Name: "Hello", Kind: spec.Bool,
		Profile: tab.Everywhere("false"), Layer: spec.SessionLayer, Clauses: []string{"RFC2449-5-CAPA"}, Doc: "Offer XHLO."})
	tab.Variation("Hello").Profile["mysite"] = "true"
	tab.Capabilities = append(tab.Capabilities, spec.Capability{Tag: "XHLO", When: "Hello",
		Clauses: []string{"RFC2449-5-CAPA"}, Doc: "The XHLO command."})
	tab.RespCodes = append(tab.RespCodes, spec.RespCode{Name: "Busy", Code: "X-BUSY",
		Clauses: []string{"RFC2449-8-RESP-CODE"}, Doc: "Try later."})
	tab.Errors = append(tab.Errors, spec.Error{Name: "Busy", Code: "X-BUSY", Text: "too busy, try later",
		Clauses: []string{"RFC2449-8-RESP-CODE"}})
	tab.Commands = append(tab.Commands, spec.Command{Name: "XHLO", Args: spec.OptWord, In: spec.Authorization | spec.Transaction,
		Capability: "XHLO", EnabledBy: "Hello", Clauses: []string{"RFC2449-5-CAPA"}, Doc: "Says hello."})
	// Two commands answered by a Handler method: XNUM is required, XOPT
	// Optional; XHLO, which a variation switches on, is optional too.
	tab.Commands = append(tab.Commands,
		spec.Command{Name: "XNUM", Args: spec.MsgNum, In: spec.Transaction, Clauses: []string{"RFC2449-5-CAPA"}, Doc: "Numbers."},
		spec.Command{Name: "XOPT", Args: spec.NoArgs, In: spec.Transaction, Optional: true, Clauses: []string{"RFC2449-5-CAPA"}, Doc: "Optional."})
	tab.Variation("MaxCommandOctets").Profile["mysite"] = "1024"
	files, err := Generate(&tab, Options{Dir: "mypop3"})
	require.NoError(t, err)
	all := ""
	for _, b := range files {
		all += string(b)
	}
	for _, want := range []string{"CmdXHLO", `"XHLO"`, "CodeBusy", `"X-BUSY"`, "func Mysite() Variations", "Hello:", `case "hello":`, "ErrBusy",
		"type XhloHandler interface", "type XoptHandler interface", "h.(XoptHandler)"} {
		assert.Contains(t, all, want)
	}
	session := string(files[filepath.Join("mypop3", "handler.go")])
	handler := session[strings.Index(session, "type Handler interface"):]
	handler = handler[:strings.Index(handler, "\n}\n")]
	assert.Contains(t, handler, "Xnum(w *pop3.Writer, msg uint32) error", "a required command is a method of Handler")
	assert.NotContains(t, handler, "Xopt(", "an Optional command is not")
	assert.NotContains(t, handler, "Xhlo(", "nor one a variation switches on")
	assert.Len(t, spec.POP3.Commands, before, "extending a clone changed spec.POP3")
	assert.NotContains(t, spec.POP3.Variation("MaxCommandOctets").Profile, "mysite")

	// The extended core compiles and vets on its own.
	if testing.Short() {
		return
	}
	dir := t.TempDir()
	files, err = Generate(&tab, Options{Dir: filepath.Join(dir, "mypop3")})
	require.NoError(t, err)
	_, err = Write(files, false)
	require.NoError(t, err)
	writeModule(t, dir)
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GONOSUMDB=*", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go vet of the extended core:\n%s", out)
}

// TestWriteRemovesWhatIsNoLongerGenerated: a generated file that the table
// no longer produces is stale, and removed; a hand-written one is not.
func TestWriteRemovesWhatIsNoLongerGenerated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mypop3")
	files, err := Generate(&spec.POP3, Options{Dir: dir})
	require.NoError(t, err)
	_, err = Write(files, false)
	require.NoError(t, err)
	old := filepath.Join(dir, "old.go")
	mine := filepath.Join(dir, "mine.go")
	require.NoError(t, os.WriteFile(old, []byte(headerPrefix+" from the spec table (old). DO NOT EDIT.\n\npackage "+filepath.Base(dir)+"\n"), 0o644))
	require.NoError(t, os.WriteFile(mine, []byte("package "+filepath.Base(dir)+"\n"), 0o644))
	stale, err := Write(files, true)
	require.NoError(t, err)
	assert.Equal(t, []string{old + " (no longer generated)"}, stale)
	assert.FileExists(t, old, "-check writes nothing")
	_, err = Write(files, false)
	require.NoError(t, err)
	assert.NoFileExists(t, old)
	assert.FileExists(t, mine)

	// -check names the first line that differs.
	lexer := filepath.Join(dir, "protocol.go")
	b, err := os.ReadFile(lexer)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(lexer, []byte(strings.Replace(string(b), "package mypop3", "package mypop4", 1)), 0o644))
	stale, err = Write(files, true)
	require.NoError(t, err)
	assert.Equal(t, []string{lexer + ":3:\n\t\thave \"package mypop4\"\n\t\twant \"package mypop3\""}, stale)
}

// TestGeneratedNamesCollide: a row whose generated name collides with
// another declaration, or with a method of the type it becomes a field of,
// is refused by name instead of producing a package that does not compile.
func TestGeneratedNamesCollide(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*spec.Table)
		want   string
	}{
		{"variation named like a method of Variations", func(t *spec.Table) {
			t.Variations = append(t.Variations, spec.Variation{Name: "Check", Kind: spec.Bool, Profile: t.Everywhere("true"), Layer: spec.StoreLayer,
				Clauses: []string{"V0001"}, Doc: "x"})
		}, "Variations.Check is both a field (in variations.go) and a method (in variations.go)"},
		{"limit named like a generated function", func(t *spec.Table) {
			t.Limits = append(t.Limits, spec.Limit{Name: "Clauses", Value: 1, Clauses: []string{"V0001"}, Doc: "x"})
		}, "Clauses is declared in clauses.go and limits.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := clone()
			tc.break_(tab)
			require.NoError(t, spec.Validate(tab))
			_, err := Generate(tab, Options{Pkg: "p"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// staticHardCoded are the table values that the runtime (pop3/) may still spell
// out instead of taking from table.go, by file ("writer.go: 70
// (MaxUIDOctets)"). None today.
var staticHardCoded = map[string]bool{}

// TestStaticTakesValuesFromTable: the hand-written code in gen/static
// uses the names table.go declares, not the values: a number equal to a
// limit of the table or a string equal to a response code (that is not
// also a CAPA tag), outside a comment, is refused (save the few listed in
// staticHardCoded).
func TestStaticTakesValuesFromTable(t *testing.T) {
	limits := map[string]string{}
	for _, l := range spec.POP3.Limits {
		limits[strconv.FormatInt(l.Value, 10)] = l.Name
	}
	tags := map[string]bool{}
	for _, c := range spec.POP3.Capabilities {
		tags[c.Tag] = true
	}
	codes := map[string]string{}
	for _, r := range spec.POP3.RespCodes {
		if !tags[r.Code] { // "LOGIN-DELAY" is a CAPA tag too, and may be looked up as one
			codes[strconv.Quote(r.Code)] = "Code" + r.Name
		}
	}
	paths, err := filepath.Glob(filepath.Join("..", "pop3", "*.go"))
	require.NoError(t, err)
	for _, p := range paths {
		base := filepath.Base(p)
		if strings.HasSuffix(p, "_test.go") || base == "table.go" || base == "variations.go" {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok {
				return true
			}
			name := limits[lit.Value]
			if lit.Kind == token.STRING {
				name = codes[lit.Value]
			}
			if name == "" || (lit.Kind != token.INT && lit.Kind != token.STRING) {
				return true
			}
			what := fmt.Sprintf("%s: %s (%s)", base, lit.Value, name)
			assert.True(t, staticHardCoded[what], "pop3/%s: use %s from table.go, not %s", base, name, lit.Value)
			return true
		})
	}
}

// TestScanCoverageCountsCallsNotComments: an id in a clause.Covers call
// is coverage under the package's directory, whatever the test is called;
// an id in a comment, a test name or a string elsewhere is not; ids that
// are not literals are refused.
func TestScanCoverageCountsCallsNotComments(t *testing.T) {
	root := t.TempDir()
	write := func(path, src string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, path), []byte(src), 0o644))
	}
	write("server/a_test.go", `package server

import (
	"testing"

	"github.com/pop3kit/pop3kit/internal/clause"
)

// TestRFC1939_5_LIST names RFC1939-5-DELE in its comment.
func TestRFC1939_5_LIST(t *testing.T) {
	clause.Covers(t, "V0011")
	_ = "RFC1939-5-STAT"
}
`)
	write("other/b_test.go", `package other

import (
	"testing"

	c "github.com/pop3kit/pop3kit/internal/clause"
)

func TestAnything(t *testing.T) { c.Covers(t, "V0011", "C0001") }
`)
	write("server/c_test.go", `package server

// RFC1939-7-TOP in a file that declares nothing.
func TestTop(t *testing.T) {}
`)
	cov, err := ScanCoverage(root)
	require.NoError(t, err)
	assert.Equal(t, Coverage{"V0011": {"other", "server"}, "C0001": {"other"}}, cov)

	write("server/d_test.go", `package server

import "github.com/pop3kit/pop3kit/internal/clause"

func TestIDs(t *testing.T) { id := "V0001"; clause.Covers(t, id) }
`)
	_, err = ScanCoverage(root)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "d_test.go:5:")
	assert.Contains(t, err.Error(), "clause.Covers takes clause ids as string literals")
}

// TestCoverageManifestRoundTrips: the manifest Format writes parses back
// to the same coverage, and CollectCoverage merges per-process records.
func TestCoverageManifestRoundTrips(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "clauses-1.txt"), []byte("V0011\tserver\nC0001\tpop3gen\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "clauses-2.txt"), []byte("V0011\tpop3gen\nV0011\tserver\n"), 0o644))
	cov, err := CollectCoverage(dir)
	require.NoError(t, err)
	assert.Equal(t, Coverage{"V0011": {"pop3gen", "server"}, "C0001": {"pop3gen"}}, cov)
	back, err := ParseCoverage(cov.Format())
	require.NoError(t, err)
	assert.Equal(t, cov, back)
	assert.True(t, strings.HasSuffix(string(cov.Format()), "C0001 pop3gen\nV0011 pop3gen\nV0011 server\n"))
	_, err = CollectCoverage(t.TempDir())
	assert.ErrorContains(t, err, "holds no clause records")
}

// writeModule writes the go.mod of a module in dir that holds a generated
// package: it requires pop3kit, for the runtime, from this checkout.
func writeModule(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	mod := "module example.com/mail\n\ngo 1.26\n\nrequire github.com/pop3kit/pop3kit v0.0.0\n\nreplace github.com/pop3kit/pop3kit => " + root + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
}
