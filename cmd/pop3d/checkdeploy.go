package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/pop3kit/pop3kit/server"
)

// checkDeployment checks, before anything is bound, what serve would find
// wrong only when it starts or later: the account to serve as, the files
// it reads and the mail root it writes (as that account: by owner, group
// and mode), the addresses it listens on. Each problem names the file and
// line of its setting; all are returned at once.
func checkDeployment(cfg server.Config, file string, data []byte) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", lineOf(file, data, key), key, fmt.Sprintf(format, args...)))
	}
	var acct *serviceAccount
	if cfg.User != "" {
		a, err := lookupAccount(cfg.User, cfg.Group)
		if err != nil {
			bad("user", "%v", err)
		} else {
			acct = a
		}
	}
	as := "pop3d"
	if acct != nil {
		as = "user " + acct.name
	}
	readable := func(key, path string) {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			bad(key, "%v", err)
		case !fi.Mode().IsRegular():
			bad(key, "%s is not a file", path)
		case acct != nil && !allowed(fi, acct, 4):
			bad(key, "%s cannot be read by %s (owner %s, mode %v)", path, as, owner(fi), fi.Mode().Perm())
		}
	}
	// Root reads the configuration and the TLS files for the server (at
	// start and, through the config reader, at every reload). If the
	// account it serves as can change one of them, or a directory on the
	// way, it can make root hand it any file: another service's key
	// beside that service's public certificate passes the pair check.
	rootsOnly := func(key, path string) {
		if acct == nil || acct.uid == 0 || path == "" {
			return
		}
		if who := changeableBy(path, acct); who != "" {
			bad(key, "%s can be changed by %s (%s): root reads it for the server, so it and its directories must be root's to change", path, as, who)
		}
	}
	rootsOnly("config", file)
	rootsOnly("tls_cert", cfg.TLSCert)
	rootsOnly("tls_key", cfg.TLSKey)
	if cfg.Passwd != "" {
		readable("passwd", cfg.Passwd)
	}
	if cfg.MailRoot != "" {
		switch fi, err := os.Stat(cfg.MailRoot); {
		case err != nil:
			bad("mail_root", "%v", err)
		case !fi.IsDir():
			bad("mail_root", "%s is not a directory", cfg.MailRoot)
		case acct != nil && !allowed(fi, acct, 2|1):
			bad("mail_root", "%s cannot be written by %s (owner %s, mode %v)", cfg.MailRoot, as, owner(fi), fi.Mode().Perm())
		}
	}
	// The TLS files are read as root, before the switch of accounts; only
	// regular files of a sane size are read (not /dev/zero, say).
	if cfg.TLSCert != "" {
		cert, certErr := server.ReadSettingsFile(cfg.TLSCert)
		if certErr != nil {
			bad("tls_cert", "%v", certErr)
		}
		key, keyErr := server.ReadSettingsFile(cfg.TLSKey)
		if keyErr != nil {
			bad("tls_key", "%v", keyErr)
		}
		if certErr == nil && keyErr == nil {
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				bad("tls_cert", "%v", err)
			}
		}
	}
	for _, f := range []struct{ key, path string }{{"oauth_jwks", cfg.OAuthJWKS}, {"gssapi_keytab", cfg.GSSAPIKeytab}} {
		if f.path != "" {
			readable(f.key, f.path)
		}
	}
	for _, l := range []struct {
		key   string
		addrs []string
	}{{"listen", cfg.Listen}, {"listen_tls", cfg.ListenTLS}, {"metrics", nonEmpty(cfg.Metrics)}, {"lmtp", nonEmpty(cfg.LMTP)}} {
		for _, a := range l.addrs {
			if l.key == "lmtp" && strings.HasPrefix(a, "unix:") {
				continue
			}
			if err := checkAddr(a); err != nil {
				bad(l.key, "%q: %v", a, err)
			}
		}
	}
	return errors.Join(errs...)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// checkAddr checks a host:port address to listen on: the port a number
// from 0 to 65535, the host empty, an IP address or a name.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q is not an address or a name", host)
	}
	return nil
}

// allowed reports whether a may do what mode bits want (4 read, 2 write,
// 1 search or execute) to the file fi: by owner, by its only group (pop3d
// drops every supplementary group), or by others. Root may.
func allowed(fi fs.FileInfo, a *serviceAccount, want fs.FileMode) bool {
	if a.uid == 0 {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // cannot tell: serve will say
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == a.uid:
		perm >>= 6
	case int(st.Gid) == a.gid:
		perm >>= 3
	}
	return perm&want == want
}

// owner names fi's owner and group by number.
// changeableBy says how a can change the file at path, or what it
// resolves to through symbolic links: the file or a directory above either
// is a's, or a may write it; "" when it cannot. A directory with the
// sticky bit (/tmp) counts only when it is a's: only an entry's owner may
// replace the entry.
func changeableBy(path string, a *serviceAccount) string {
	paths := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		paths = append(paths, real)
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		for cur := abs; ; cur = filepath.Dir(cur) {
			fi, err := os.Lstat(cur)
			if err == nil {
				st, ok := fi.Sys().(*syscall.Stat_t)
				switch {
				case ok && int(st.Uid) == a.uid:
					return fmt.Sprintf("%s is its own", cur)
				case fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 && cur != abs:
					// Only an entry's owner may replace it, and the
					// entry below was found not to be a's.
				case fi.Mode().Type() != fs.ModeSymlink && allowed(fi, a, 2):
					return fmt.Sprintf("%s has owner %s, mode %v", cur, owner(fi), fi.Mode())
				}
			}
			if cur == filepath.Dir(cur) {
				break
			}
		}
	}
	return ""
}

func owner(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return "?"
}

// lineOf returns "file:line" of key's assignment at the top level of the
// TOML data, or the file alone when the key is not in it (a default, or
// a flag).
func lineOf(file string, data []byte, key string) string {
	re := regexp.MustCompile(`^\s*` + regexp.QuoteMeta(key) + `\s*=`)
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "[") {
			break // a table: top-level keys are above it
		}
		if re.MatchString(l) {
			return file + ":" + strconv.Itoa(i+1)
		}
	}
	return file
}
