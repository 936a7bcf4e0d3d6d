package main

import "fmt"

// checkPasswdReadable opens the passwd-file as the account pop3d serves
// as, after the switch. pop3d read it as root at start, but it re-reads it
// whenever it changes, as that account, and refuses every login while a
// changed file cannot be read (it cannot know which users were removed).
// A file only root can read would serve until its first edit and then
// lock every user out, so pop3d refuses to start with it and says what to
// change.
func checkPasswdReadable(path string, a *serviceAccount, open func() error) error {
	if err := open(); err != nil {
		return fmt.Errorf("--passwd %s cannot be read as --user %s --group %s (uid %d, gid %d), the account pop3d serves as: %v; "+
			"pop3d re-reads the file whenever it changes, and refuses logins while it cannot, so make it readable by that account, "+
			"e.g. group-readable by --group: chgrp %s %s && chmod 640 %s",
			path, a.name, a.groupName, a.uid, a.gid, err, a.groupName, path, path)
	}
	return nil
}
