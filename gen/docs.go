package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/pop3kit/pop3kit/spec"
)

// stateDiagram returns the Mermaid state diagram of the table: one arrow
// per edge, the commands that keep a state as a loop, and the closes.
func stateDiagram(t *spec.Table) string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	for _, s := range t.States {
		if s.Initial {
			fmt.Fprintf(&b, "    [*] --> %s: greeting\n", s.Name)
		}
	}
	for _, s := range t.States {
		to := map[string][]string{}
		var order []string
		var closes []string
		for _, c := range t.Commands {
			if c.In&s.State == 0 {
				continue
			}
			dst := s.Name
			for _, e := range c.Edges {
				if e.From == s.State {
					for _, si := range t.States {
						if si.State == e.To {
							dst = si.Name
						}
					}
				}
			}
			if dst == s.Name && c.Then == spec.Close {
				closes = append(closes, c.Name)
				continue
			}
			if _, ok := to[dst]; !ok {
				order = append(order, dst)
			}
			to[dst] = append(to[dst], c.Name)
		}
		for _, dst := range order {
			fmt.Fprintf(&b, "    %s --> %s: %s\n", s.Name, dst, strings.Join(to[dst], ", "))
		}
		if len(closes) > 0 {
			fmt.Fprintf(&b, "    %s --> [*]: %s\n", s.Name, strings.Join(closes, ", "))
		}
		if s.Final {
			fmt.Fprintf(&b, "    %s --> [*]: remove marked messages, close\n", s.Name)
		}
	}
	return b.String()
}

// testRefs maps each clause id to the tests (package dir and function)
// whose name, doc comment or body mentions it.
type testRefs map[string][]string

// scanTests reads every _test.go file under root and finds the clause ids
// of t in its test, fuzz, benchmark and example functions.
func scanTests(root string, t *spec.Table) (testRefs, error) {
	ids := make([]string, len(t.Clauses))
	for i, c := range t.Clauses {
		ids[i] = c.ID
	}
	// An id counts where it is not part of a longer id.
	var quoted []string
	for _, id := range ids {
		quoted = append(quoted, regexp.QuoteMeta(id))
	}
	sort.Slice(quoted, func(i, j int) bool { return len(quoted[i]) > len(quoted[j]) })
	re := regexp.MustCompile(`(?:^|[^A-Za-z0-9.-])(` + strings.Join(quoted, "|") + `)(?:$|[^A-Za-z0-9-]|\.[^0-9])`)
	refs := testRefs{}
	// A package's test files are read together: ids in a package-level
	// variable (a table of cases) count for the tests that use it.
	type testFunc struct {
		name, text string
		idents     map[string]bool // identifiers the body uses
	}
	type pkgTests struct {
		funcs []testFunc
		vars  map[string]string
	}
	pkgs := map[string]*pkgTests{}
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		p := pkgs[rel]
		if p == nil {
			p = &pkgTests{vars: map[string]string{}}
			pkgs[rel] = p
			dirs = append(dirs, rel)
		}
		text := func(n ast.Node, doc *ast.CommentGroup) string {
			start := n.Pos()
			if doc != nil {
				start = doc.Pos()
			}
			return string(src[fset.Position(start).Offset:fset.Position(n.End()).Offset])
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && isTestName(d.Name.Name) {
					idents := map[string]bool{}
					ast.Inspect(d.Body, func(n ast.Node) bool {
						if id, ok := n.(*ast.Ident); ok {
							idents[id.Name] = true
						}
						return true
					})
					p.funcs = append(p.funcs, testFunc{d.Name.Name, text(d, d.Doc), idents})
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, sp := range d.Specs {
					vs := sp.(*ast.ValueSpec)
					for _, n := range vs.Names {
						p.vars[n.Name] = text(vs, d.Doc)
					}
				}
			}
		}
		return nil
	})
	for _, dir := range dirs {
		p := pkgs[dir]
		for _, fn := range p.funcs {
			seen := map[string]bool{}
			scan := func(text string) {
				for _, m := range re.FindAllStringSubmatch(text, -1) {
					seen[m[1]] = true
				}
			}
			scan(fn.text)
			for name, vtext := range p.vars {
				if fn.idents[name] { // used in the code, not merely named in a comment
					scan(vtext)
				}
			}
			// An id in a test's name, written with _ for the separators.
			for _, id := range ids {
				if strings.Contains(fn.name, strings.NewReplacer("-", "_", ".", "_").Replace(id)) {
					seen[id] = true
				}
			}
			for id := range seen {
				refs[id] = append(refs[id], dir+"."+fn.name)
			}
		}
	}
	for id := range refs {
		sort.Strings(refs[id])
	}
	return refs, err
}

func isTestName(n string) bool {
	for _, p := range []string{"Test", "Fuzz", "Benchmark", "Example"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// conformance returns docs/CONFORMANCE.md: every clause, what each profile
// does and the tests that cover it.
func conformance(t *spec.Table, refs testRefs) string {
	var b strings.Builder
	b.WriteString("<!-- Code generated by github.com/pop3kit/pop3kit/gen from the spec table. DO NOT EDIT. -->\n\n")
	b.WriteString("# Conformance\n\n")
	b.WriteString("Every clause of the standards that the spec table (`spec/`) implements or\nexplains, with the layer that honours it, what each profile does, and the\ntests that name its id. Regenerate with `go generate ./...`.\n\n")
	var profiles []string
	for _, p := range t.Profiles {
		profiles = append(profiles, p.Name)
	}
	layers := map[spec.Layer]string{spec.Core: "core", spec.Server: "server", spec.Store: "store", spec.NotApplicable: "n/a"}
	covered, pending := 0, 0
	for _, c := range t.Clauses {
		if len(refs[c.ID]) > 0 {
			covered++
		}
		if c.Pending != "" {
			pending++
		}
	}
	fmt.Fprintf(&b, "%d clauses: %d covered by tests, %d pending.\n\n", len(t.Clauses), covered, pending)
	b.WriteString("## Variations by profile\n\n| variation | " + strings.Join(profiles, " | ") + " | clauses |\n|---|" + strings.Repeat("---|", len(profiles)) + "---|\n")
	for _, v := range t.Variations {
		fmt.Fprintf(&b, "| `%s` |", v.Name)
		for _, p := range profiles {
			fmt.Fprintf(&b, " %s |", v.Profile[p])
		}
		fmt.Fprintf(&b, " %s |\n", strings.Join(v.Clauses, ", "))
	}
	b.WriteString("\n## Clauses\n\n| id | source | layer | what the standard says | what pop3kit does | tests |\n|---|---|---|---|---|---|\n")
	for _, c := range t.Clauses {
		does := c.Behaviour
		for _, v := range t.Variations {
			for _, id := range v.Clauses {
				if id == c.ID {
					var per []string
					for _, p := range profiles {
						per = append(per, p+": "+v.Profile[p])
					}
					does += fmt.Sprintf(" `%s` = %s.", v.Name, strings.Join(per, ", "))
				}
			}
		}
		tests := strings.Join(refs[c.ID], "<br>")
		if c.Pending != "" {
			tests = "pending: " + c.Pending
		} else if tests == "" {
			tests = "**none**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.ID, c.Source, layers[c.Layer], cell(c.Summary), cell(does), tests)
	}
	b.WriteString("\n## States\n\n```mermaid\n" + stateDiagram(t) + "```\n")
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// readmeBlock replaces the text between the markers in a README with the
// state diagram.
func readmeBlock(readme []byte, t *spec.Table) ([]byte, error) {
	const begin, end = "<!-- states:begin -->\n", "<!-- states:end -->"
	s := string(readme)
	i := strings.Index(s, begin)
	j := strings.Index(s, end)
	if i < 0 || j < i {
		return nil, fmt.Errorf("README has no %q … %q block", strings.TrimSpace(begin), end)
	}
	return []byte(s[:i+len(begin)] + "```mermaid\n" + stateDiagram(t) + "```\n" + s[j:]), nil
}
