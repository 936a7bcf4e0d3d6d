package gen

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// clone returns a copy of the POP3 table to break in a test.
func clone() *spec.Table {
	t := spec.POP3.Clone()
	return &t
}

// problems returns the lines of spec.Validate's error, or none.
func problems(t *spec.Table) []string {
	err := spec.Validate(t)
	if err == nil {
		return nil
	}
	var msgs []string
	for _, e := range err.(spec.Problems) {
		msgs = append(msgs, e.Error())
	}
	return msgs
}

func find[T any](rows []T, match func(T) bool) int {
	for i, r := range rows {
		if match(r) {
			return i
		}
	}
	panic("row not found")
}

// TestValidateTable: the real table is consistent.
func TestValidateTable(t *testing.T) {
	assert.Empty(t, problems(&spec.POP3))
}

// TestValidateRefusesBrokenTables: each kind of inconsistency is refused
// with an error that names the row.
func TestValidateRefusesBrokenTables(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*spec.Table)
		want   string
	}{
		{"command allowed in no state", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "NOOP" })].In = 0
		}, `command "NOOP" (row 14): command allowed in no state`},
		{"state nothing reaches", func(t *spec.Table) {
			i := find(t.Commands, func(c spec.Command) bool { return c.Name == "QUIT" })
			t.Commands[i].Edges = nil
		}, `state "UPDATE" (row 3): nothing reaches it`},
		{"variation no profile sets", func(t *spec.Table) {
			t.Variations[0].Profile = nil
		}, `variation "LenientSeparators" (row 1): no profile sets this variation`},
		{"variation one profile misses", func(t *spec.Table) {
			delete(t.Variations[find(t.Variations, func(v spec.Variation) bool { return v.Name == "MaxCommandOctets" })].Profile, spec.Exchange2007)
		}, `variation "MaxCommandOctets" (row 5): profile "exchange2007" does not set it`},
		{"value out of range", func(t *spec.Table) {
			t.Variations[find(t.Variations, func(v spec.Variation) bool { return v.Name == "MaxCommandOctets" })].Profile[spec.Exchange2007] = "30"
		}, `variation "MaxCommandOctets" (row 5): profile "exchange2007": 30 is outside 40–1024`},
		{"clause used twice for different behaviour", func(t *spec.Table) {
			c := t.Clauses[find(t.Clauses, func(c spec.Clause) bool { return c.ID == "V0011" })]
			c.Behaviour = "PASS stops at the first space."
			t.Clauses = append(t.Clauses, c)
		}, `clause "V0011" (row 95): clause id used twice for different behaviour`},
		{"clause cited but not defined", func(t *spec.Table) {
			t.Commands[0].Clauses = append(t.Commands[0].Clauses, "V0099")
		}, `command "USER" (row 1): cites clause "V0099", which the clause table does not define`},
		{"capability missing", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "TOP" })].Capability = "TOPS"
		}, `command "TOP" (row 16): advertised by capability "TOPS", which the capability table lacks`},
		{"bad keyword", func(t *spec.Table) {
			t.Commands[0].Name = "USERS"
		}, `command "USERS" (row 1): keyword must be 3 or 4 upper-case characters`},
		{"error the lexer needs", func(t *spec.Table) {
			t.Errors = t.Errors[1:]
		}, `error "ErrEmptyLine": the runtime returns it as`},
		{"variation the core reads", func(t *spec.Table) {
			t.Variations[find(t.Variations, func(v spec.Variation) bool { return v.Name == "PassKeepsSpaces" })].Name = "PassSpaces"
		}, `variation "PassKeepsSpaces": the runtime carries it (pop3.Variations), but the table does not define it`},
		{"ignored arguments on a command that changes state", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "QUIT" })].IgnoresArgsWhen = "IgnoreExtraArgs"
		}, `command "QUIT" (row 9): a command that closes, starts TLS or changes state must not ignore its arguments`},
		{"ignored arguments on a command that takes some", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "DELE" })].IgnoresArgsWhen = "IgnoreExtraArgs"
		}, `command "DELE" (row 13): only a command of the NoArgs grammar can ignore its arguments`},
		{"after any, by a variation that is not a switch", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "PASS" })].AfterAnyWhen = "UserNameCase"
		}, `command "PASS" (row 2): after any "USER" when "UserNameCase", which is not a boolean variation`},
		{"a command of the table's own answered by the core", func(t *spec.Table) {
			t.Commands = append(t.Commands, xhlo(spec.ByCore))
		}, `command "XHLO" (row 18): the core answers only CAPA, DELE, LIST, NOOP, QUIT, RETR, RSET, STAT, STLS, TOP, UIDL; a command of the table's own is answered by a Handler method (ByHandler)`},
		{"a command the core answers with another grammar", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "LIST" })].Args = spec.MsgNum
		}, `command "LIST" (row 11): the core answers LIST with argument grammar`},
		{"a command the core answers made optional", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "NOOP" })].Optional = true
		}, `command "NOOP" (row 14): a command the core answers has no Handler method to be optional`},
		{"a Handler method into UPDATE", func(t *spec.Table) {
			c := xhlo(spec.ByHandler)
			c.Edges = []spec.Edge{{From: spec.Transaction, To: spec.Update}}
			t.Commands = append(t.Commands, c)
		}, `command "XHLO" (row 18): an edge into the final state is the core's: it runs UPDATE from the Maildrop`},
		{"a Maildrop command before login", func(t *spec.Table) {
			t.Commands[find(t.Commands, func(c spec.Command) bool { return c.Name == "STAT" })].In |= spec.Authorization
		}, `command "STAT" (row 10): answered from the Maildrop, but allowed in AUTHORIZATION, before any login opened one`},
		{"edge from a state the command is not in", func(t *spec.Table) {
			i := find(t.Commands, func(c spec.Command) bool { return c.Name == "STAT" })
			t.Commands[i].Edges = []spec.Edge{{From: spec.Authorization, To: spec.Update}}
		}, `command "STAT" (row 10): edge from a state the command is not allowed in`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := clone()
			tc.break_(tab)
			joined := strings.Join(problems(tab), "\n")
			assert.Contains(t, joined, tc.want)
			// renderCore refuses it too, listing every problem.
			_, err := renderCore(tab, "p")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// xhlo is a command of a table's own, answered by answer.
func xhlo(answer spec.Answer) spec.Command {
	return spec.Command{Name: "XHLO", Answer: answer, Args: spec.NoArgs, In: spec.Transaction,
		Clauses: []string{"RFC2449-5-CAPA"}, Doc: "Says hello."}
}

// miniTable is the real table cut down to four commands, for goldens that
// a reviewer can read in full.
func miniTable() *spec.Table {
	t := clone()
	var cmds []spec.Command
	for _, c := range t.Commands {
		switch c.Name {
		case "USER", "PASS", "QUIT", "TOP":
			cmds = append(cmds, c)
		}
	}
	t.Commands = cmds
	return t
}

// TestGolden renders the cut-down table and compares the table-dependent
// files with testdata/golden/*.golden (go test ./gen -update rewrites them).
func TestGolden(t *testing.T) {
	files, err := renderCore(miniTable(), "mini")
	require.NoError(t, err)
	for _, name := range []string{"protocol.go", "handler.go"} {
		golden := filepath.Join("testdata", "golden", name+".golden")
		if *update {
			require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
			require.NoError(t, os.WriteFile(golden, files[name], 0o644))
			continue
		}
		want, err := os.ReadFile(golden)
		require.NoError(t, err, "run go test ./gen -update")
		assert.Equal(t, string(want), string(files[name]), "%s differs from %s (go test ./gen -update)", name, golden)
	}
	// The expected error for a broken table is a golden too.
	tab := clone()
	tab.Commands[0].In = 0
	tab.States[2].Initial = true
	_, err = renderCore(tab, "p")
	require.Error(t, err)
	golden := filepath.Join("testdata", "golden", "broken.err.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644))
		return
	}
	want, rerr := os.ReadFile(golden)
	require.NoError(t, rerr)
	assert.Equal(t, string(want), err.Error()+"\n")
}

// TestOutputIsFormattedAndHeadered: every generated file is gofmt-clean
// (jennifer formats it; static files go through go/format) and starts with
// the standard header.
func TestOutputIsFormattedAndHeadered(t *testing.T) {
	files, err := renderCore(&spec.POP3, "pop3gen")
	require.NoError(t, err)
	for name, b := range files {
		first, _, _ := strings.Cut(string(b), "\n")
		assert.Regexp(t, `^// Code generated .* DO NOT EDIT\.$`, first, name)
		assert.NotContains(t, string(b), "\t\n", "%s: trailing tab", name)
	}
}

// TestRenamedCopyCompiles generates the core under another package name
// into another directory, as a project reusing pop3kit would, and builds it
// (and vets it) with the go tool in a module of its own: it needs nothing
// but the standard library.
func TestRenamedCopyCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go tool; skipped in -short runs")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "internal", "mypop3")
	files, err := Generate(&spec.POP3, Options{Dir: out})
	require.NoError(t, err)
	_, err = Write(files, false)
	require.NoError(t, err)
	writeModule(t, dir) // the generated package imports the runtime, from this checkout
	// A main package that uses the copy, to show it is usable, not only
	// compilable.
	main := `package main

import (
	"fmt"
	"os"

	"example.com/mail/internal/mypop3"
	"github.com/pop3kit/pop3kit/pop3"
)

func main() {
	v := mypop3.Exchange2010()
	var c pop3.Command
	if err := c.Parse([]byte("RETR 7\r\n"), &v, 0); err != nil || c.Cmd != mypop3.CmdRETR || c.Msg != 7 {
		fmt.Println("parse failed:", err)
		os.Exit(1)
	}
	fmt.Println("ok", v.Protocol().Name(c.Cmd), c.Msg)
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644))
	for _, args := range [][]string{{"vet", "./..."}, {"run", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GONOSUMDB=*", "GOWORK=off")
		outb, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %v:\n%s", args, outb)
		if args[0] == "run" {
			assert.Equal(t, "ok RETR 7\n", string(outb))
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "protocol.go"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "package mypop3")
}

// TestGeneratedFilesUpToDate renders everything in memory and compares it
// with the committed files: pop3gen/, docs/CONFORMANCE.md and the README's
// state diagram.
func TestGeneratedFilesUpToDate(t *testing.T) {
	root := ".."
	files, err := Generate(&spec.POP3, repoOptions(root))
	require.NoError(t, err)
	var stale []string
	for p, b := range files {
		old, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(old, b) {
			stale = append(stale, p)
		}
	}
	sort.Strings(stale)
	assert.Empty(t, stale, "stale generated files: run go generate ./...")
	// No leftover generated file that gen no longer writes.
	entries, err := os.ReadDir(filepath.Join(root, "pop3gen"))
	require.NoError(t, err)
	for _, e := range entries {
		p := filepath.Join(root, "pop3gen", e.Name())
		if strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		_, ok := files[p]
		assert.True(t, ok, "%s is not produced by gen: remove it", p)
	}
}

// TestClauseCoverage: every clause of the table has a test that declares
// it with clause.Covers, unless the table marks it pending; a pending
// clause of the server or the store has no such test in server/ or cmd/
// yet (so the mark goes once the work lands; tests of the core's part, such
// as a profile's value, may exist). The declarations are read from the
// source, so removing the last test of a clause fails here at once;
// docs/coverage.txt, which CONFORMANCE.md cites, must say the same.
func TestClauseCoverage(t *testing.T) {
	refs, err := ScanCoverage("..")
	require.NoError(t, err)
	for _, c := range spec.POP3.Clauses {
		if c.Pending != "" {
			for _, r := range refs[c.ID] {
				assert.False(t, strings.HasPrefix(r, "server") || strings.HasPrefix(r, "cmd"),
					"clause %s is marked pending (%s) but tests in %s cover it: drop the mark", c.ID, c.Pending, r)
			}
			continue
		}
		assert.NotEmpty(t, refs[c.ID], "clause %s (%s) has no test that calls clause.Covers with it", c.ID, c.Source)
	}
	known := map[string]bool{}
	for _, c := range spec.POP3.Clauses {
		known[c.ID] = true
	}
	for id, pkgs := range refs {
		assert.True(t, known[id], "tests in %v declare clause %q, which the table lacks", pkgs, id)
	}
	committed, err := ReadCoverage(filepath.Join("..", "docs", "coverage.txt"))
	require.NoError(t, err)
	assert.Equal(t, string(refs.Format()), string(committed.Format()),
		"docs/coverage.txt differs from the clause.Covers calls in the tests: run make coverage")
}

// TestStateDiagram: the diagram shows the transitions of the table.
func TestStateDiagram(t *testing.T) {
	d := stateDiagram(&spec.POP3)
	for _, want := range []string{
		"[*] --> AUTHORIZATION: greeting",
		"AUTHORIZATION --> TRANSACTION: PASS, APOP, AUTH",
		"TRANSACTION --> UPDATE: QUIT",
		"AUTHORIZATION --> [*]: QUIT",
		"UPDATE --> [*]: remove marked messages, close",
	} {
		assert.Contains(t, d, want)
	}
}

// TestPerfectHash: the keyword hash is collision-free and deterministic.
func TestPerfectHash(t *testing.T) {
	keys := []uint32{0x75736572, 0x70617373, 0x00746f70, 0x75746638}
	m1, s1 := perfectHash(keys)
	m2, s2 := perfectHash(keys)
	assert.Equal(t, m1, m2)
	assert.Equal(t, s1, s2)
	seen := map[uint32]bool{}
	for _, k := range keys {
		h := k * m1 >> s1
		assert.False(t, seen[h])
		seen[h] = true
	}
}
