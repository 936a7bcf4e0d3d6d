package server_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/internal/testserver"
	"github.com/pop3kit/pop3kit/server"
	"github.com/pop3kit/pop3kit/server/account"
)

// The users every test server knows, one per password scheme.
var users = []struct{ name, scheme, password string }{
	{"alice", "PLAIN", "secret"},
	{"bob", "SHA512-CRYPT", "hunter2"},
	{"carol", "BLF-CRYPT", "correct horse"},
	{"dave", "ARGON2ID", "battery staple"},
	{"erin", "PLAIN", "open sesame"}, // a password with a space (V0011)
}

var (
	passwdOnce sync.Once
	passwdText string
	certOnce   sync.Once
	certFile   string
	keyFile    string
	certPool   *x509.CertPool
)

// passwdFile returns the text of the test passwd-file (hashing once per
// test binary: argon2id is slow on purpose).
func passwdFile(t testing.TB) string {
	passwdOnce.Do(func() {
		var b strings.Builder
		b.WriteString("# test users\n")
		for _, u := range users {
			f, err := account.HashPassword(u.scheme, u.password)
			if err != nil {
				panic(err)
			}
			b.WriteString(u.name + ":" + f + "::::::\n")
		}
		passwdText = b.String()
	})
	return passwdText
}

// testCert writes a self-signed certificate for 127.0.0.1 once.
func testCert(t testing.TB) (string, string, *x509.CertPool) {
	certOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pop3kit-cert")
		if err != nil {
			panic(err)
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			panic(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
		c, _ := x509.ParseCertificate(der)
		certPool = x509.NewCertPool()
		certPool.AddCert(c)
	})
	return certFile, keyFile, certPool
}

// env is a running pop3d with its own mail root and passwd-file.
type env struct {
	t       testing.TB
	dir     string
	root    string
	srv     *server.Server
	addr    string // plain, with STLS
	tlsAddr string // implicit TLS
	pool    *x509.CertPool
}

// newEnv starts a server with the profile and options for the test's
// duration; failed logins are not delayed unless an option says so.
func newEnv(t testing.TB, profile string, opts ...func(*server.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "mail")}
	require.NoError(t, os.MkdirAll(e.root, 0o700))
	pw := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(pw, []byte(passwdFile(t)), 0o600))
	cert, key, pool := testCert(t)
	e.pool = pool
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.ListenTLS = []string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}
	cfg.TLSCert, cfg.TLSKey = cert, key
	cfg.MailRoot, cfg.Passwd, cfg.Profile = e.root, pw, profile
	cfg.FailDelay = 0
	cfg.Hostname = "pop3kit.test"
	// The tests talk over loopback and most assume it is secure, as a
	// site that trusts its own host would say; untrusted takes it back.
	cfg.TrustedNetworks = []string{"127.0.0.0/8", "::1"}
	for _, o := range opts {
		o(&cfg)
	}
	srv, addrs := testserver.Serve(t, cfg)
	e.srv = srv
	e.addr = addrs[0].String()
	if len(addrs) > 1 {
		e.tlsAddr = addrs[1].String()
	}
	return e
}

// untrusted is an option that trusts no network: loopback clients are
// not secure without TLS.
func untrusted(c *server.Config) { c.TrustedNetworks = nil }

// set returns an option that sets a variation.
func set(kv string) func(*server.Config) {
	return func(c *server.Config) {
		if err := c.AddSet(kv); err != nil {
			panic(err)
		}
	}
}

var deliveries atomic.Int64

// deliver puts a message into user's new/ as an MDA does (tmp/, then
// rename) and returns its file name. extra is appended to the name
// (",S=…,W=…").
func (e *env) deliver(user, body, extra string) string {
	e.t.Helper()
	md := filepath.Join(e.root, user)
	for _, sub := range []string{"cur", "new", "tmp"} {
		require.NoError(e.t, os.MkdirAll(filepath.Join(md, sub), 0o700))
	}
	name := fmt.Sprintf("%d.M%dP%d.test%s", 1764000000+deliveries.Add(1), deliveries.Load(), os.Getpid(), extra)
	tmp := filepath.Join(md, "tmp", name)
	require.NoError(e.t, os.WriteFile(tmp, []byte(body), 0o600))
	require.NoError(e.t, os.Rename(tmp, filepath.Join(md, "new", name)))
	return name
}

// files lists the message files in user's maildrop (cur and new).
func (e *env) files(user string) []string {
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, _ := os.ReadDir(filepath.Join(e.root, user, sub))
		for _, d := range ents {
			out = append(out, sub+"/"+d.Name())
		}
	}
	return out
}

func (e *env) dial() *pop3test.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	require.NoError(e.t, err)
	return e.wrap(c)
}

func (e *env) dialTLS() *pop3test.Conn {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: e.pool, ServerName: "localhost"})
	require.NoError(e.t, err)
	return e.wrap(c)
}

// wrap greets on c through the tests' one client (internal/pop3test),
// which reads replies with the runtime's parser: every line must end in
// CRLF and hold at most 512 octets (C0001), every status line must be
// +OK, -ERR or "+ ". Tests may replace C and R (after STLS); its methods
// follow.
func (e *env) wrap(c net.Conn) *pop3test.Conn {
	e.t.Helper()
	return pop3test.Greeted(e.t, c)
}

// login logs in with USER/PASS and checks the reply.
func (e *env) login(user, password string) *pop3test.Conn {
	e.t.Helper()
	c := e.dial()
	require.True(e.t, strings.HasPrefix(c.Cmd("USER "+user), "+OK"))
	r := c.Cmd("PASS " + password)
	require.True(e.t, strings.HasPrefix(r, "+OK"), r)
	return c
}

// closed reports whether the server closed the connection.

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
