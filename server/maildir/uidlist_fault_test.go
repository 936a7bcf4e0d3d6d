package maildir

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/store"

	"github.com/pop3kit/pop3kit/internal/faultinject"
	"github.com/pop3kit/pop3kit/internal/testenv"
)

// TestUIDListTransientErrors: an error opening the UID list, its lock,
// its temporary file, dovecot-uidlist (to import) or the session lock —
// EACCES (files left by root), EMFILE and ENFILE (out of descriptors),
// EIO, ENOMEM — fails the open with that error and starts no new list:
// the UID list is as it was, and once the error is gone every message
// has the UID it had. Before, any error opening pop3kit-uidlist but
// "does not exist" started a new list ("UID list cannot be read;
// starting a new one"), renumbering the maildrop: uid 8 became 1 and the
// next new message got 2, a reused UID, and leave-on-server clients
// downloaded everything again.
func TestUIDListTransientErrors(t *testing.T) {
	errnos := []syscall.Errno{syscall.EACCES, syscall.EMFILE, syscall.ENFILE, syscall.EIO, syscall.ENOMEM}
	targets := []struct {
		what, file string
		exclusive  bool
		// setup changes the maildrop after the first open, before the
		// failing one.
		setup func(m *maildropT)
	}{
		{what: "the UID list", file: uidListName},
		{what: "the UID list's lock", file: uidLockName},
		{what: "the UID list's temporary file", file: uidListName + ".tmp", setup: func(m *maildropT) {
			m.write("new/1764000100.M9P1.test", "From: d\r\n\r\nnew\r\n") // the list must be written
		}},
		{what: "the session lock", file: lockName, exclusive: true},
		{what: "dovecot-uidlist, to import", file: dovecotUIDList, setup: func(m *maildropT) {
			require.NoError(m.t, os.Remove(filepath.Join(m.dir, uidListName)))
			var b strings.Builder
			fmt.Fprintf(&b, "3 V1764000000 N11\n")
			ents, err := os.ReadDir(filepath.Join(m.dir, "cur"))
			require.NoError(m.t, err)
			for i, e := range ents {
				fmt.Fprintf(&b, "%d :%s\n", 8+i, baseName(e.Name()))
			}
			m.write(dovecotUIDList, b.String())
		}},
	}
	for _, tg := range targets {
		for _, errno := range errnos {
			t.Run(fmt.Sprintf("%s/%s", tg.what, errno), func(t *testing.T) {
				m := newMaildropT(t)
				for i := range 3 {
					m.write(fmt.Sprintf("new/17640000%02d.M%dP1.test", i, i), fmt.Sprintf("From: a\r\n\r\nmessage %d\r\n", i))
				}
				d := m.open()
				before := contents(t, d)
				d.Close()
				if tg.setup != nil {
					tg.setup(m)
					if tg.file == dovecotUIDList {
						before = map[string]uint32{}
						for body, uid := range contents(t, m.open()) {
							before[body] = uid
						}
						require.NoError(t, os.Remove(filepath.Join(m.dir, uidListName)))
						for body, uid := range before {
							assert.GreaterOrEqual(t, uid, uint32(8), "%q: Dovecot's UID", body)
						}
					}
				}
				listBefore := testenv.State(t, m.dir)
				dir := filepath.Join(m.root, "alice")
				faultinject.SetOpen(func(d, name string) error {
					if d == dir && name == tg.file {
						return errno
					}
					return nil
				})
				_, err := m.mr.openWithin(time.Second, "alice", store.OpenOptions{Exclusive: tg.exclusive, Log: slog.New(slog.NewTextHandler(m.logs, nil))})
				faultinject.SetOpen(nil)
				require.ErrorIs(t, err, errno)
				assert.NotContains(t, m.logs.String(), "starting a new", "no new list")
				after := testenv.State(t, m.dir)
				for _, name := range []string{uidListName, dovecotUIDList} {
					assert.Equal(t, listBefore[name], after[name], "%s unchanged", name)
				}
				if tg.setup == nil {
					assert.Equal(t, listBefore, after, "nothing in the maildrop changed")
				}

				got := contents(t, m.open())
				for body, uid := range before {
					assert.Equal(t, uid, got[body], "%q keeps its UID", body)
				}
				if tg.file == uidListName+".tmp" {
					assert.Equal(t, uint32(4), got["From: d\r\n\r\nnew\r\n"], "the new message gets the next UID, not a reused one")
				}
			})
		}
	}
}
