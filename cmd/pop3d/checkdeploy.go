package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
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
	var acct *account
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
func allowed(fi fs.FileInfo, a *account, want fs.FileMode) bool {
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
