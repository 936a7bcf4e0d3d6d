package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pop3kit/pop3kit/server"
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

func setUpDemo(dir string) (*demo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
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
		field, err := server.HashPassword("SHA512-CRYPT", d.password)
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
	return d, nil
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
