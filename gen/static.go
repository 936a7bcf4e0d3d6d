package gen

import (
	"bytes"
	"embed"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"path"
	"sort"
	"strings"
)

// staticFS holds the table-independent parts of the core (see package
// static). table.go holds the generated names they use, rendered from the
// table for the package's own build and tests, and is not copied.
//
//go:embed static/*.go
var staticFS embed.FS

// staticFiles returns the files of package static to copy, by base name,
// in name order.
func staticFiles() []string {
	entries, err := staticFS.ReadDir("static")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, "_test.go") || n == "table.go" || n == "doc.go" {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// coreOnly is the build constraint of static files that use names only
// the generated package has (Session, Handler, Command…): package static
// cannot compile them on its own, so the constraint leaves them out of its
// build, and they are compiled, vetted and tested as part of the generated
// package (pop3gen/*_test.go). renderStatic drops the line.
const coreOnly = "//go:build pop3gen_core\n\n"

// renderStatic returns a static file with its package clause renamed to
// pkg and the generated-code header in front.
func renderStatic(name, pkg string) ([]byte, error) {
	src, err := staticFS.ReadFile(path.Join("static", name))
	if err != nil {
		return nil, err
	}
	src = bytes.TrimPrefix(src, []byte(coreOnly))
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("static/%s: %w", name, err)
	}
	f.Name.Name = pkg
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s from gen/static/%s. DO NOT EDIT.\n\n", headerPrefix, name)
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, fmt.Errorf("static/%s: %w", name, err)
	}
	return buf.Bytes(), nil
}
