// Command gen turns the pop3kit spec table into a POP3 protocol core: a Go
// package (pop3gen by default) and, optionally, docs/CONFORMANCE.md and the
// README's state diagram.
//
//	go run ./gen -out pop3gen -pkg pop3gen -docs docs -readme README.md
//
// With -check it writes nothing, prints what would change and exits 1 when
// anything would.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pop3kit/pop3kit/spec"
)

func main() {
	out := flag.String("out", "pop3gen", "output `directory` of the generated package")
	pkg := flag.String("pkg", "", "package `name` of the output (default: the directory's base name)")
	docs := flag.String("docs", "", "`directory` for CONFORMANCE.md (empty: no docs)")
	readme := flag.String("readme", "", "README `file` whose states block to refresh (empty: none)")
	root := flag.String("root", ".", "repository `root` whose tests CONFORMANCE.md cites")
	check := flag.Bool("check", false, "write nothing; report files that differ and exit 1 if any")
	flag.Parse()
	if *pkg == "" {
		*pkg = filepath.Base(*out)
	}
	files, err := render(&spec.POP3, *out, *pkg, *docs, *readme, *root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	stale, err := sync(files, *check)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if *check && len(stale) > 0 {
		fmt.Fprintf(os.Stderr, "gen: stale generated files (run go generate ./...):\n\t%s\n", strings.Join(stale, "\n\t"))
		os.Exit(1)
	}
}

// render returns every file gen produces, by path.
func render(t *spec.Table, out, pkg, docs, readme, root string) (map[string][]byte, error) {
	core, err := renderCore(t, Options{Pkg: pkg})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for name, b := range core {
		files[filepath.Join(out, name)] = b
	}
	if docs != "" || readme != "" {
		refs, err := scanTests(root, t)
		if err != nil {
			return nil, err
		}
		if docs != "" {
			files[filepath.Join(docs, "CONFORMANCE.md")] = []byte(conformance(t, refs))
		}
		if readme != "" {
			old, err := os.ReadFile(readme)
			if err != nil {
				return nil, err
			}
			b, err := readmeBlock(old, t)
			if err != nil {
				return nil, err
			}
			files[readme] = b
		}
	}
	return files, nil
}

// sync writes the files that differ from what is on disk (unless check)
// and returns their paths. Generated files in out that gen no longer
// produces are reported and removed too.
func sync(files map[string][]byte, check bool) ([]string, error) {
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var stale []string
	for _, p := range paths {
		old, err := os.ReadFile(p)
		if err == nil && bytes.Equal(old, files[p]) {
			continue
		}
		stale = append(stale, p)
		if check {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, files[p], 0o644); err != nil {
			return nil, err
		}
	}
	return stale, nil
}
