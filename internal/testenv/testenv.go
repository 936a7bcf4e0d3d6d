// Package testenv builds what pop3kit's tests run against, in one place:
// pop3d built once per test binary, Maildir trees with their messages,
// and passwd-files of hashed accounts. A test that needs a mail site
// asks for it here rather than writing files by hand.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/pop3kit/pop3kit/server/account"
)

var (
	buildOnce sync.Once
	builtDir  string
	builtBin  string
	buildErr  error
)

// Pop3d builds cmd/pop3d once per test binary and returns its path, in a
// directory every account may search: a test run as root starts it to
// serve as nobody. A package that calls it removes the binary with
// Cleanup from its TestMain.
func Pop3d(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "pop3kit-pop3d-")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(builtDir, 0o755); buildErr != nil {
			return
		}
		builtBin = filepath.Join(builtDir, "pop3d")
		cmd := exec.Command("go", "build", "-o", builtBin, "github.com/pop3kit/pop3kit/cmd/pop3d")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/pop3d: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// Cleanup removes what Pop3d built; a TestMain calls it after m.Run.
func Cleanup() {
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
}

// moduleRoot is the repository's root, where go build finds the module.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Maildir makes root/user a Maildir (cur, new, tmp; mode 0700) if it is
// not one yet, and delivers msgs into its new/ in order, under names such
// as a delivery agent gives (1000.M1P1.test, 1001.M2P1.test …, sorting in
// delivery order). It returns the paths of the files written.
func Maildir(t testing.TB, root, user string, msgs ...string) []string {
	t.Helper()
	dir := filepath.Join(root, user)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i, m := range msgs {
		n := len(have) + i
		p := filepath.Join(dir, "new", fmt.Sprintf("%d.M%dP1.test", 1000+n, n+1))
		if err := os.WriteFile(p, []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// User is an account of a passwd-file: its name, its password, and the
// scheme the password is hashed with (PLAIN, SHA512-CRYPT, ARGON2ID …;
// empty is PLAIN, which is quick for a test that logs in often).
type User struct {
	Name, Password, Scheme string
}

// Passwd writes a passwd-file at path (mode 0600), one line per user in
// Dovecot's format with the password hashed as its scheme says, and
// returns path.
func Passwd(t testing.TB, path string, users ...User) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		scheme := u.Scheme
		if scheme == "" {
			scheme = "PLAIN"
		}
		field, err := account.HashPassword(scheme, u.Password)
		if err != nil {
			t.Fatalf("hash %s's password: %v", u.Name, err)
		}
		b.WriteString(u.Name + ":" + field + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
