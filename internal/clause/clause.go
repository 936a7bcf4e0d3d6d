// Package clause lets a test declare which clauses of the standards it
// covers, in code that runs:
//
//	func TestListOneMessage(t *testing.T) {
//		clause.Covers(t, "RFC1939-5-LIST", "MS-2.1.5")
//		…
//	}
//
// The declaration, not the test's name or a comment, is what counts: a
// test can be renamed freely, and an id that is only mentioned in a comment
// covers nothing. Ids are checked against the spec table when the test
// runs, so a typo fails the test.
//
// With POP3KIT_CLAUSES set to a directory, every call also records
// "id<TAB>package" lines in a file of that directory (one per test
// process); "make coverage" runs every test that way and rewrites
// docs/coverage.txt from the records, which docs/CONFORMANCE.md cites and
// CI checks is fresh. gen's TestClauseCoverage reads the same calls from
// the source (ids must be string literals) and fails when a clause that
// is not pending has none.
package clause

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/pop3kit/pop3kit/spec"
)

// Env names the environment variable that holds the directory to record
// in.
const Env = "POP3KIT_CLAUSES"

const module = "github.com/pop3kit/pop3kit"

var (
	known = func() map[string]bool {
		m := map[string]bool{}
		for _, c := range spec.POP3.Clauses {
			m[c.ID] = true
		}
		return m
	}()
	mu sync.Mutex
)

// Covers declares that the calling test covers the clauses ids of
// spec.POP3. Call it at the top of the test, before anything that may skip
// it, with the ids as string literals.
func Covers(t testing.TB, ids ...string) {
	t.Helper()
	if len(ids) == 0 {
		t.Errorf("clause.Covers: no clause ids")
	}
	valid := ids[:0:0]
	for _, id := range ids {
		if !known[id] {
			t.Errorf("clause.Covers: %q is not a clause id of spec.POP3", id)
			continue
		}
		valid = append(valid, id)
	}
	ids = valid // an unknown id is refused, never recorded
	dir := os.Getenv(Env)
	if dir == "" || len(ids) == 0 {
		return
	}
	pc, _, _, _ := runtime.Caller(1)
	pkg := Package(runtime.FuncForPC(pc).Name())
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s\t%s\n", id, pkg)
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("clauses-%d.txt", os.Getpid())), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("clause.Covers: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatalf("clause.Covers: %v", err)
	}
}

// Package returns the module-relative directory of the package of a
// function, from its full name as runtime.FuncForPC gives it:
// "github.com/pop3kit/pop3kit/server_test.TestX.func1" is "server", the
// module's root package is ".".
func Package(fn string) string {
	i := strings.LastIndex(fn, "/")
	j := strings.Index(fn[i+1:], ".")
	path := fn
	if j >= 0 {
		path = fn[:i+1+j]
	}
	path = strings.TrimSuffix(path, "_test")
	switch {
	case path == module:
		return "."
	case strings.HasPrefix(path, module+"/"):
		return path[len(module)+1:]
	}
	return path
}
