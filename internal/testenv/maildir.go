package testenv

// What tests of the Maildir store and of the commands that open it share:
// a description of a file tree to compare before and after, and the form
// a stored message takes on the wire.

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// State describes every file and directory under dir, by path relative to
// dir: type and mode, size, owner, modification and change times and, for
// a regular file, a digest of its content. Two States are equal when
// nothing under dir was created, removed, written, moved, chmodded or
// chowned in between (access times, which a read changes, are left out).
func State(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		v := fmt.Sprintf("%v %d %d:%d mtime=%d ctime=%d.%d", fi.Mode(), fi.Size(), st.Uid, st.Gid,
			fi.ModTime().UnixNano(), st.Ctim.Sec, st.Ctim.Nsec)
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatalf("testenv.State(%s): %v", dir, err)
	}
	return out
}

// CRLFForm is what RETR must deliver for a stored message: every LF not
// preceded by CR becomes CRLF, and a message that does not end with a line
// break gets one to end the reply.
func CRLFForm(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\r', '\n')
	}
	return out
}
