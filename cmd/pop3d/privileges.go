package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// errRootWithoutUser is why pop3d will not serve mail as root: a bug in
// a session, or a symlink in a maildrop, would then reach every file of
// the system.
var errRootWithoutUser = errors.New("refusing to serve as root: pass --user (and --group) naming an unprivileged account, " +
	"such as --user pop3 --group mail (or user = \"…\" in the config file); pop3d binds its ports and reads its TLS key as root, then switches to that account, " +
	"which must be able to read the passwd-file and write the mail root")

// serviceAccount is the user and group pop3d serves as.
type serviceAccount struct {
	name      string
	uid, gid  int
	groupName string
}

// lookupAccount resolves --user and --group (the user's primary group
// when group is empty). Numeric ids are accepted where no name matches.
func lookupAccount(name, group string) (*serviceAccount, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr != nil {
			return nil, fmt.Errorf("--user %q: %v", name, err)
		}
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("--user %q: %v", name, err)
		}
	}
	a := &serviceAccount{name: u.Username}
	if a.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("--user %q: uid %q is not a number", name, u.Uid)
	}
	gid := u.Gid
	a.groupName = gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			if _, nerr := strconv.Atoi(group); nerr != nil {
				return nil, fmt.Errorf("--group %q: %v", group, err)
			}
			if g, err = user.LookupGroupId(group); err != nil {
				return nil, fmt.Errorf("--group %q: %v", group, err)
			}
		}
		gid, a.groupName = g.Gid, g.Name
	}
	if a.gid, err = strconv.Atoi(gid); err != nil {
		return nil, fmt.Errorf("--group %q: gid %q is not a number", group, gid)
	}
	if a.uid == 0 {
		return nil, fmt.Errorf("--user %q is root: name an unprivileged account", name)
	}
	if a.gid == 0 {
		return nil, fmt.Errorf("--group %q is root's group: name an unprivileged group", group)
	}
	return a, nil
}

// checkPrivileges decides, before anything is bound, whether pop3d may
// start: as root it needs an account to switch to (the demo is given
// demoAccount's); as anyone else --user may only name the account it
// already runs as. It returns the account to
// switch to after binding, or nil to stay as it is.
func checkPrivileges(userName, group string, demo bool, log *slog.Logger) (*serviceAccount, error) {
	root := os.Geteuid() == 0
	switch {
	case userName == "" && group != "":
		return nil, errors.New("--group needs --user")
	case userName == "" && root:
		return nil, errRootWithoutUser
	case userName == "":
		return nil, nil
	}
	a, err := lookupAccount(userName, group)
	if err != nil {
		return nil, err
	}
	if !root {
		if a.uid != os.Getuid() || a.gid != os.Getgid() {
			return nil, fmt.Errorf("--user %s --group %s: only root can switch accounts; pop3d runs as uid %d gid %d", a.name, a.groupName, os.Getuid(), os.Getgid())
		}
		return nil, nil
	}
	return a, nil
}

// dropPrivileges switches the process to a for good: supplementary
// groups to a's group only, then the group, then the user (in that order:
// after setuid the others are no longer allowed). Go's syscall versions
// apply to every thread on Linux. It then checks that the switch took and
// cannot be undone.
func dropPrivileges(a *serviceAccount) error {
	if err := syscall.Setgroups([]int{a.gid}); err != nil {
		return fmt.Errorf("setgroups(%d): %v", a.gid, err)
	}
	if err := syscall.Setgid(a.gid); err != nil {
		return fmt.Errorf("setgid(%d): %v", a.gid, err)
	}
	if err := syscall.Setuid(a.uid); err != nil {
		return fmt.Errorf("setuid(%d): %v", a.uid, err)
	}
	if os.Getuid() != a.uid || os.Geteuid() != a.uid || os.Getgid() != a.gid || os.Getegid() != a.gid {
		return fmt.Errorf("after switching to %s: uid %d euid %d gid %d egid %d", a.name, os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	}
	if os.Getuid() == 0 || os.Geteuid() == 0 {
		return errors.New("still root after switching accounts")
	}
	if syscall.Setuid(0) == nil {
		return errors.New("could switch back to root after dropping privileges")
	}
	return nil
}

// demoAccount is the account the demo serves as when root starts it:
// nobody, in nogroup (or nobody's own group).
func demoAccount() (*serviceAccount, error) {
	a, err := lookupAccount("nobody", "nogroup")
	if err != nil {
		a, err = lookupAccount("nobody", "")
	}
	if err != nil {
		return nil, fmt.Errorf("there is no account nobody to serve the demo as: pass --user: %v", err)
	}
	return a, nil
}

// keepPrivilegesInProcess is set by the tests, which run subcommands in
// the test binary as root and cannot give root up without taking it from
// the rest of the binary; the built-binary tests cover the switch.
var keepPrivilegesInProcess bool

// asMailUser is the privilege rule of every subcommand that opens a mail
// root (expire, import), the same as serve's: as root it needs --user (or
// the config's user) and switches to that account for good before
// anything in a Maildir is opened or written, so that every lock, UID
// list and moved message belongs to the account pop3d serves as. Files
// written there as root would make the server renumber the maildrop or
// refuse every login. Called by anyone else, --user may only name the
// account it already runs as. What only root can reach (a directory
// handle, a root-only file) is opened before, read-only.
func asMailUser(cmd, userName, group string) error {
	if keepPrivilegesInProcess {
		return nil
	}
	acct, err := checkPrivileges(userName, group, false, nil)
	if errors.Is(err, errRootWithoutUser) {
		return fmt.Errorf("pop3d %s: refusing to run as root: pass --user (and --group) naming the account pop3d serves as "+
			"(or user = \"…\" in the config file); files written into a Maildir as root would make pop3d renumber its messages "+
			"or refuse its logins", cmd)
	}
	if err != nil {
		return fmt.Errorf("pop3d %s: %v", cmd, err)
	}
	if acct == nil {
		return nil
	}
	if err := dropPrivileges(acct); err != nil {
		return fmt.Errorf("pop3d %s: switching to --user %s: %v", cmd, acct.name, err)
	}
	return nil
}
