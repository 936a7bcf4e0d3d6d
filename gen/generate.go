// Package gen turns a spec table into a POP3 protocol core: a Go package
// that imports only the standard library, and optionally
// docs/CONFORMANCE.md and a README's state diagram.
//
// pop3kit generates its own core, pop3gen, with the command in
// gen/cmd/pop3kit-gen. Another module that extends the table calls the
// library from a few lines of its own:
//
//	//go:build ignore
//
//	package main
//
//	import (
//		"github.com/pop3kit/pop3kit/gen"
//		"github.com/pop3kit/pop3kit/spec"
//	)
//
//	func main() {
//		t := spec.POP3.Clone()
//		t.Commands = append(t.Commands, spec.Command{Name: "XHLO", …})
//		gen.Main(&t) // go run gen.go -out internal/mypop3
//	}
//
// Generate validates the table first (spec.Validate) and returns every
// problem it finds, so a broken row never yields a half-written package.
package gen

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pop3kit/pop3kit/spec"
)

// Options say what Generate produces and where.
type Options struct {
	// Pkg is the package name of the generated core: a Go identifier that
	// is not a keyword. Empty means the base name of Dir.
	Pkg string
	// Dir is the directory of the generated core; the files Generate
	// returns are named Dir/<file>. Empty means the names alone.
	Dir string
	// Docs, when set, is the directory to write CONFORMANCE.md to.
	Docs string
	// Coverage, when set, is the clause-coverage manifest (one "ID package"
	// a line, as the tests' clause.Covers calls record it) that
	// CONFORMANCE.md cites for each clause. Without it the document has no
	// tests column.
	Coverage string
	// Collect, when set with Coverage, is a directory of records that
	// clause.Covers wrote during a test run (POP3KIT_CLAUSES=dir): the
	// manifest at Coverage is rewritten from them, and CONFORMANCE.md cites
	// them.
	Collect string
	// README, when set, is a README file whose text between
	// "<!-- states:begin -->" and "<!-- states:end -->" becomes the state
	// diagram of the table.
	README string
	// Runtime, when set, is the directory of the runtime package (pop3/):
	// pop3kit writes there the declarations the runtime takes from the
	// standard table (table.go: limits, response codes, errors, the
	// variations it honours). Other modules leave it empty.
	Runtime string
}

// pkgName returns the package name o asks for, or a one-line error.
func (o Options) pkgName() (string, error) {
	pkg, from := o.Pkg, "-pkg"
	if pkg == "" {
		pkg, from = filepath.Base(o.Dir), "the base name of -out (set -pkg)"
		if o.Dir == "" {
			return "", fmt.Errorf("no package name: set -pkg or -out")
		}
	}
	switch {
	case token.IsKeyword(pkg):
		return "", fmt.Errorf("package name %q (%s) is a Go keyword", pkg, from)
	case !token.IsIdentifier(pkg):
		return "", fmt.Errorf("package name %q (%s) is not a Go identifier", pkg, from)
	case pkg == "_" || pkg == "main":
		return "", fmt.Errorf("package name %q (%s) cannot be imported", pkg, from)
	}
	return pkg, nil
}

// Generate validates t and returns the files it generates, by path: the
// core under o.Dir, and the documents o asks for. It writes nothing.
func Generate(t *spec.Table, o Options) (map[string][]byte, error) {
	pkg, err := o.pkgName()
	if err != nil {
		return nil, err
	}
	core, err := renderCore(t, pkg)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for name, b := range core {
		files[filepath.Join(o.Dir, name)] = b
	}
	if o.Runtime != "" {
		b, vb, err := renderRuntime(t)
		if err != nil {
			return nil, err
		}
		files[filepath.Join(o.Runtime, "table.go")] = b
		files[filepath.Join(o.Runtime, "variations.go")] = vb
	}
	if o.Docs != "" {
		var cov Coverage
		switch {
		case o.Collect != "" && o.Coverage != "":
			if cov, err = CollectCoverage(o.Collect); err != nil {
				return nil, err
			}
			files[o.Coverage] = cov.Format()
		case o.Coverage != "":
			if cov, err = ReadCoverage(o.Coverage); err != nil {
				return nil, err
			}
		}
		files[filepath.Join(o.Docs, "CONFORMANCE.md")] = []byte(conformance(t, cov))
	}
	if o.README != "" {
		old, err := os.ReadFile(o.README)
		if err != nil {
			return nil, err
		}
		b, err := readmeBlock(old, t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.README, err)
		}
		files[o.README] = b
	}
	return files, nil
}

// Write writes the files that differ from what is on disk, unless check
// is set, and returns their paths in order (with check, each followed by
// the first line that differs). A generated Go file (one that
// starts with gen's header) beside them that files no longer holds is
// stale too, and removed unless check is set.
func Write(files map[string][]byte, check bool) ([]string, error) {
	var paths []string
	dirs := map[string]bool{}
	for p := range files {
		paths = append(paths, p)
		if strings.HasSuffix(p, ".go") {
			dirs[filepath.Dir(p)] = true
		}
	}
	sort.Strings(paths)
	var stale []string
	for _, p := range paths {
		old, err := os.ReadFile(p)
		if err == nil && bytes.Equal(old, files[p]) {
			continue
		}
		if check {
			stale = append(stale, p+firstDiff(old, files[p]))
			continue
		}
		stale = append(stale, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, files[p], 0o644); err != nil {
			return nil, err
		}
	}
	var gone []string
	for dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if _, ok := files[p]; ok || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || !generatedByGen(p) {
				continue
			}
			gone = append(gone, p)
		}
	}
	sort.Strings(gone)
	for _, p := range gone {
		stale = append(stale, p+" (no longer generated)")
		if !check {
			if err := os.Remove(p); err != nil {
				return nil, err
			}
		}
	}
	return stale, nil
}

// firstDiff describes where have (nil: missing) first differs from want:
// ":12: have … want …", so that -check says what changed.
func firstDiff(have, want []byte) string {
	if have == nil {
		return " (missing)"
	}
	h, w := strings.Split(string(have), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(h) || i < len(w); i++ {
		var a, b string
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf(":%d:\n\t\thave %.120q\n\t\twant %.120q", i+1, a, b)
		}
	}
	return ""
}

// generatedByGen reports whether the file at p starts with gen's header.
func generatedByGen(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.HasPrefix(line, headerPrefix)
}

// Main is the generator's command line over t: it reads the flags below,
// generates and writes, and exits 1 on an error or, with -check, when a
// file is stale. pop3kit's gen/cmd/pop3kit-gen is Main(&spec.POP3); a
// module that extends the table calls it with its own.
//
//	-out dir        directory of the generated package (default pop3gen)
//	-pkg name       its package name (default: the base name of -out)
//	-docs dir       write CONFORMANCE.md there
//	-coverage file  clause-coverage manifest that CONFORMANCE.md cites
//	-collect dir    rewrite -coverage from the records of a test run
//	-readme file    refresh the README's state diagram
//	-check          write nothing; list stale files and exit 1 if any
func Main(t *spec.Table) {
	var o Options
	flag.StringVar(&o.Dir, "out", "pop3gen", "output `directory` of the generated package")
	flag.StringVar(&o.Pkg, "pkg", "", "package `name` of the output (default: the directory's base name)")
	flag.StringVar(&o.Docs, "docs", "", "`directory` for CONFORMANCE.md (empty: no docs)")
	flag.StringVar(&o.Coverage, "coverage", "", "clause-coverage manifest `file` that CONFORMANCE.md cites")
	flag.StringVar(&o.Collect, "collect", "", "`directory` of clause records from a test run (POP3KIT_CLAUSES) to rewrite -coverage from")
	flag.StringVar(&o.README, "readme", "", "README `file` whose states block to refresh (empty: none)")
	flag.StringVar(&o.Runtime, "runtime", "", "`directory` of the runtime, for its table.go (pop3kit only)")
	check := flag.Bool("check", false, "write nothing; report files that differ and exit 1 if any")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	files, err := Generate(t, o)
	if err != nil {
		fail(err)
	}
	stale, err := Write(files, *check)
	if err != nil {
		fail(err)
	}
	if *check && len(stale) > 0 {
		hint := "go generate ./..."
		if o.Collect != "" {
			hint = "make coverage: the tests' clause.Covers calls changed"
		}
		fmt.Fprintf(os.Stderr, "gen: stale generated files (run %s):\n\t%s\n", hint, strings.Join(stale, "\n\t"))
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}

// runtimeTableNote follows the package clause of pop3/table.go.
const runtimeTableNote = `// This file holds what the runtime takes from the standard table
// (spec.POP3): its limits, response codes and errors, and the variations
// it honours. A generated package imports them; a table's own rows are
// generated into its package.`

// renderRuntime returns the runtime's table.go (limits, response codes,
// errors) and variations.go from t, which must be the standard table.
func renderRuntime(t *spec.Table) (table, variations []byte, err error) {
	g := &gen{t: t, pkg: "pop3", runtime: true}
	var buf, vbuf bytes.Buffer
	if err := g.limits().Render(&buf); err != nil {
		return nil, nil, fmt.Errorf("render runtime table: %w", err)
	}
	if err := g.variations().Render(&vbuf); err != nil {
		return nil, nil, fmt.Errorf("render runtime variations: %w", err)
	}
	b := buf.Bytes()
	const clause = "\npackage pop3\n"
	i := bytes.Index(b, []byte(clause))
	if i < 0 {
		return nil, nil, fmt.Errorf("render runtime table: no package clause")
	}
	out := append([]byte{}, b[:i+len(clause)]...)
	out = append(out, "\n"+runtimeTableNote+"\n"...)
	out = append(out, b[i+len(clause):]...)
	return out, vbuf.Bytes(), nil
}

// checkDecls parses the generated files and refuses two top-level
// declarations of one name (a table row whose name collides with another
// generated or copied identifier), naming both files.
func checkDecls(files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	where := map[string]string{}
	fields := map[string]string{} // "Type.Field" → file
	var errs []string
	for _, n := range names {
		f, err := parser.ParseFile(token.NewFileSet(), n, files[n], parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("generated %s does not parse: %w\n%s", n, err, numbered(files[n]))
		}
		for _, d := range f.Decls {
			var ids []string
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil {
					ids = append(ids, recvName(d.Recv.List[0].Type)+"."+d.Name.Name)
				} else {
					ids = append(ids, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						ids = append(ids, s.Name.Name)
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fl := range st.Fields.List {
								for _, id := range fl.Names {
									fields[s.Name.Name+"."+id.Name] = n
								}
							}
						}
					case *ast.ValueSpec:
						for _, id := range s.Names {
							ids = append(ids, id.Name)
						}
					}
				}
			}
			for _, id := range ids {
				if id == "_" || id == "init" {
					continue
				}
				if prev, ok := where[id]; ok {
					errs = append(errs, fmt.Sprintf("%s is declared in %s and %s: a row's name collides with another identifier", id, prev, n))
					continue
				}
				where[id] = n
			}
		}
	}
	var methods []string
	for id := range where {
		if strings.Contains(id, ".") {
			methods = append(methods, id)
		}
	}
	sort.Strings(methods)
	for _, m := range methods {
		if f, ok := fields[m]; ok {
			errs = append(errs, fmt.Sprintf("%s is both a field (in %s) and a method (in %s): a row's name collides with a method", m, f, where[m]))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

func recvName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvName(e.X)
	case *ast.Ident:
		return e.Name
	case *ast.IndexExpr:
		return recvName(e.X)
	}
	return "?"
}

// numbered returns src with line numbers, for an error about generated
// code that does not parse.
func numbered(src []byte) string {
	var b strings.Builder
	for i, l := range strings.Split(string(src), "\n") {
		fmt.Fprintf(&b, "%5d  %s\n", i+1, l)
	}
	return b.String()
}
