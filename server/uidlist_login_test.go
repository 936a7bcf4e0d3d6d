package server_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pop3kit/pop3kit/server"
)

// TestLoginUIDListUnreadable: a login whose UID list cannot be opened now
// (out of descriptors here) is answered -ERR [SYS/TEMP] and logged at
// error; the next login, the error gone, sees every UID as it was.
// Before, the login started a new list: logged at warning, answered +OK,
// every message renumbered.
func TestLoginUIDListUnreadable(t *testing.T) {
	e, logs := newLoggedEnv(t, "exchange2010", nil)
	e.deliver("alice", "Subject: 1\r\n\r\none\r\n", "")
	e.deliver("alice", "Subject: 2\r\n\r\ntwo\r\n", "")
	c := e.login("alice", "secret")
	c.Cmd("UIDL")
	before := c.Multi()
	c.Cmd("QUIT")

	dir := filepath.Join(e.root, "alice")
	server.InjectOpenFault(t, func(d, name string) error {
		if d == dir && name == "pop3kit-uidlist" {
			return syscall.EMFILE
		}
		return nil
	})
	c = e.dial()
	c.Cmd("USER alice")
	assert.Equal(t, "-ERR [SYS/TEMP] maildrop is not available now, try again later", c.Cmd("PASS secret"))
	assert.Regexp(t, `level=ERROR msg="open maildrop".*too many open files`, logs.String())
	server.InjectOpenFault(t, nil)

	c = e.login("alice", "secret")
	c.Cmd("UIDL")
	assert.Equal(t, before, c.Multi(), "every UID as it was")
}
