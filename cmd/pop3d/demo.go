package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pop3kit/pop3kit/server/account"
)

// demo is the embedded default: a mail root with one user and a few
// messages, a passwd-file, and a self-signed certificate for STLS and
// implicit TLS, all under one directory, made on first run.
type demo struct {
	root, passwd, cert, key string
	user, password          string
}

// demoMessages are delivered to the demo user on first run.
var demoMessages = []string{
	"From: pop3kit <postmaster@localhost>\nTo: demo@localhost\nSubject: Welcome to pop3kit\nDate: Wed, 25 Nov 2026 12:00:00 +0000\nMessage-ID: <welcome@pop3kit>\n\nThis message lives in a Maildir: %s\n\nRETR sends it with CRLF line ends; DELE and QUIT remove it.\n",
	"From: pop3kit <postmaster@localhost>\nTo: demo@localhost\nSubject: Lines that start with a dot\nDate: Wed, 25 Nov 2026 12:01:00 +0000\nMessage-ID: <dots@pop3kit>\n\n.this line starts with a dot and is sent dot-stuffed\n.\nThe line above is a lone dot.\n",
	"From: pop3kit <postmaster@localhost>\nTo: demo@localhost\nSubject: Try TOP\nDate: Wed, 25 Nov 2026 12:02:00 +0000\nMessage-ID: <top@pop3kit>\n\nline 1\nline 2\nline 3\nline 4\n",
}

// setUpDemo makes the demo under dir, or reuses the one there. owner is
// the account the demo will serve as when root starts it (nil otherwise):
// root then accepts only a demo directory that is no symbolic link, is
// owned by root or owner and writable by no one else, and whose files are
// no symbolic links — a local user cannot hand root a demo directory whose
// mail root points at /, or at files only root may read — and gives the
// tree to owner.
func setUpDemo(dir string, owner *serviceAccount) (*demo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := checkDemoDir(abs, owner); err != nil {
		return nil, err
	}
	d := &demo{
		root:   filepath.Join(abs, "mail"),
		passwd: filepath.Join(abs, "passwd"),
		cert:   filepath.Join(abs, "tls", "cert.pem"),
		key:    filepath.Join(abs, "tls", "key.pem"),
		user:   "demo",
	}
	pwFile := filepath.Join(abs, "demo-password")
	if b, err := os.ReadFile(pwFile); err == nil {
		d.password = strings.TrimSpace(string(b))
	} else {
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, err
		}
		r := make([]byte, 10)
		if _, err := rand.Read(r); err != nil {
			return nil, err
		}
		d.password = strings.ToLower(base32.StdEncoding.EncodeToString(r))
		field, err := account.HashPassword("SHA512-CRYPT", d.password)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(d.passwd, []byte("# pop3kit demo passwd-file (Dovecot format): user:{SCHEME}secret\n"+d.user+":"+field+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(pwFile, []byte(d.password+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := deliverDemo(filepath.Join(d.root, d.user)); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(d.cert); err != nil {
		if err := selfSigned(d.cert, d.key); err != nil {
			return nil, err
		}
	}
	if owner != nil && ownedByRoot(abs) {
		// Only a tree that root owns is given away: no one else can
		// change it while it is walked (a directory swapped for a link
		// mid-walk would otherwise hand out files elsewhere). WalkDir
		// does not follow links, and Lchown changes a link itself.
		err := filepath.WalkDir(abs, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, owner.uid, owner.gid)
		})
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// checkDemoDir refuses a demo directory root must not trust (see
// setUpDemo); a directory that does not exist yet is made by setUpDemo.
func checkDemoDir(abs string, owner *serviceAccount) error {
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory of its own (a symbolic link or a file)", abs)
	}
	for _, rel := range []string{"mail", "mail/demo", "passwd", "demo-password", "tls", "tls/cert.pem", "tls/key.pem"} {
		if fi, err := os.Lstat(filepath.Join(abs, rel)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link: the demo uses only files of its own", filepath.Join(abs, rel))
		}
	}
	if owner == nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot tell its owner", abs)
	}
	if (st.Uid != 0 && int(st.Uid) != owner.uid) || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s belongs to uid %d (mode %v): started as root, the demo uses only a directory of root's or %s's that no one else may write; remove it or pass --demo-dir",
			abs, st.Uid, fi.Mode().Perm(), owner.name)
	}
	return nil
}

// deliverDemo writes the demo messages the way an MDA does: into tmp/,
// then renamed into new/.
func deliverDemo(maildir string) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, sub), 0o700); err != nil {
			return err
		}
	}
	host, _ := os.Hostname()
	for i, m := range demoMessages {
		if i == 0 {
			m = fmt.Sprintf(m, maildir)
		}
		name := fmt.Sprintf("%d.M%dP%d.%s,S=%d", time.Now().Unix(), i, os.Getpid(), host, len(m))
		tmp := filepath.Join(maildir, "tmp", name)
		if err := os.WriteFile(tmp, []byte(m), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
			return err
		}
	}
	return nil
}

// selfSigned writes a self-signed ECDSA certificate for localhost.
func selfSigned(certFile, keyFile string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"pop3kit demo"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return err
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
}

// ownedByRoot reports whether path is a directory owned by root.
func ownedByRoot(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
