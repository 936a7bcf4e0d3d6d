package gen

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Coverage maps a clause id to the packages (module-relative directories,
// sorted) whose tests declare that they cover it, by calling
// clause.Covers(t, id, …) from pop3kit's internal/clause. Test names do not
// appear, so renaming a test changes nothing; a comment that names an id is
// not a call, so it is not coverage.
type Coverage map[string][]string

// coverageHeader starts docs/coverage.txt.
const coverageHeader = `# Clause coverage: a clause id and a package whose tests declare, with
# clause.Covers, that they cover it; one pair a line, sorted. Written from
# the records of a full test run by "make coverage"; CI checks it is fresh.
# DO NOT EDIT.
`

// add records that pkg covers id.
func (c Coverage) add(id, pkg string) {
	if !slices.Contains(c[id], pkg) {
		c[id] = append(c[id], pkg)
		sort.Strings(c[id])
	}
}

// Format returns the manifest: the header, then "id package" lines sorted.
func (c Coverage) Format() []byte {
	var lines []string
	for id, pkgs := range c {
		for _, p := range pkgs {
			lines = append(lines, id+" "+p)
		}
	}
	sort.Strings(lines)
	var b bytes.Buffer
	b.WriteString(coverageHeader)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseCoverage reads a manifest in the form Format writes (and the form of
// the records clause.Covers writes: "id<TAB>package" lines). Blank lines and
// lines starting with # are skipped.
func ParseCoverage(b []byte) (Coverage, error) {
	c := Coverage{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"clause-id package\", got %q", n, line)
		}
		c.add(f[0], f[1])
	}
	return c, sc.Err()
}

// ReadCoverage reads the manifest at path.
func ReadCoverage(path string) (Coverage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCoverage(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// CollectCoverage merges the records that clause.Covers wrote into dir
// (one file per test process, when the tests ran with POP3KIT_CLAUSES=dir).
func CollectCoverage(dir string) (Coverage, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	c := Coverage{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		part, err := ReadCoverage(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for id, pkgs := range part {
			for _, p := range pkgs {
				c.add(id, p)
			}
		}
	}
	if len(c) == 0 {
		return nil, fmt.Errorf("%s holds no clause records: run the tests with POP3KIT_CLAUSES=%s", dir, dir)
	}
	return c, nil
}

// ScanCoverage reads the calls clause.Covers(t, "id", …) in the test files
// under root, without running them: the coverage a full run records, as
// long as every call passes its ids as string literals (a call that does
// not is an error). Comments are not calls and count for nothing.
func ScanCoverage(root string) (Coverage, error) {
	c := Coverage{}
	var errs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		local := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == clausePkg {
				local = "clause"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Covers" {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != local {
				return true
			}
			for _, a := range call.Args[1:] {
				lit, ok := a.(*ast.BasicLit)
				var id string
				if ok && lit.Kind == token.STRING {
					id, _ = strconv.Unquote(lit.Value)
				}
				if id == "" {
					errs = append(errs, fmt.Sprintf("%s: clause.Covers takes clause ids as string literals", fset.Position(a.Pos())))
					continue
				}
				c.add(id, pkg)
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return c, nil
}

// clausePkg is the import path of the package whose Covers calls declare
// coverage.
const clausePkg = "github.com/pop3kit/pop3kit/internal/clause"
