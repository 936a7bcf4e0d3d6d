// Package testkdc runs a private MIT Kerberos realm for tests: a KDC
// database, krb5.conf and kdc.conf in a temporary directory, and krb5kdc
// listening on 127.0.0.1 on a free port, stopped when the test ends.
// Every program it runs gets the realm's configuration through
// KRB5_CONFIG and KRB5_KDC_PROFILE (Env), so the host's /etc/krb5.conf
// is never read nor changed.
package testkdc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop3kit/pop3kit/internal/pop3test"
)

// Programs are the MIT Kerberos programs a realm needs (Debian's
// krb5-kdc, krb5-admin-server and krb5-user).
var Programs = []string{"krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist"}

// Available says why a realm cannot be started here, or nil.
func Available() error {
	for _, p := range Programs {
		if _, err := lookPath(p); err != nil {
			return fmt.Errorf("MIT Kerberos is not installed (%s: %v; apt-get install krb5-kdc krb5-admin-server krb5-user)", p, err)
		}
	}
	return nil
}

// lookPath finds p in PATH or in /usr/sbin, which a non-root PATH may
// lack.
func lookPath(p string) (string, error) {
	if path, err := exec.LookPath(p); err == nil {
		return path, nil
	}
	path := filepath.Join("/usr/sbin", p)
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	return path, nil
}

// Need skips tb when MIT Kerberos is missing, except under CI=true, where
// the tests that need it must run: it fails instead.
func Need(tb testing.TB) {
	tb.Helper()
	if err := Available(); err != nil {
		pop3test.Missing(tb, err)
	}
}

// KDC is one running realm.
type KDC struct {
	tb     testing.TB
	Realm  string
	Dir    string // the temporary directory
	Port   int    // the KDC's TCP port on 127.0.0.1
	Config string // krb5.conf's path
	env    []string
}

// Start creates realm in a temporary directory and starts its KDC; the
// test's cleanup stops it. It calls Need first.
func Start(tb testing.TB, realm string) *KDC {
	tb.Helper()
	Need(tb)
	dir := tb.TempDir()
	port := freePort(tb)
	k := &KDC{tb: tb, Realm: realm, Dir: dir, Port: port, Config: filepath.Join(dir, "krb5.conf")}
	// The client side: only this realm, its KDC over TCP (a free TCP
	// port need not be free for UDP), and no DNS: the host name in a
	// service principal is taken as given (pop/127.0.0.1).
	krb5 := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	noaddresses = true
	forwardable = false
	default_ccache_name = FILE:%[2]s/ccache
	clockskew = 300

[realms]
	%[1]s = {
		kdc = 127.0.0.1:%[3]d
	}
`, realm, dir, port)
	kdc := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = 127.0.0.1:%[3]d
	kdc_tcp_listen = 127.0.0.1:%[3]d

[realms]
	%[1]s = {
		database_name = %[2]s/principal
		key_stash_file = %[2]s/stash
		acl_file = %[2]s/kadm5.acl
		max_life = 10h 0m 0s
		max_renewable_life = 0
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
	}

[logging]
	kdc = FILE:%[2]s/kdc.log
`, realm, dir, port)
	must(tb, os.WriteFile(k.Config, []byte(krb5), 0o600))
	must(tb, os.WriteFile(filepath.Join(dir, "kdc.conf"), []byte(kdc), 0o600))
	must(tb, os.WriteFile(filepath.Join(dir, "kadm5.acl"), nil, 0o600))
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.Config, "KRB5_KDC_PROFILE="+filepath.Join(dir, "kdc.conf"),
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache"), "KRB5_KTNAME=FILE:"+filepath.Join(dir, "default.keytab"), "KRB5RCACHETYPE=none")
	k.Run("kdb5_util", "create", "-s", "-P", "master-"+realm, "-r", realm)

	bin, _ := lookPath("krb5kdc")
	cmd := exec.Command(bin, "-n", "-r", realm)
	cmd.Env = k.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(tb, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	// Ready when the port answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			tb.Fatalf("krb5kdc exited: %s\n%s", out.String(), k.log())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("krb5kdc did not listen on %d: %v\n%s\n%s", port, err, out.String(), k.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return k
}

func (k *KDC) log() string {
	b, _ := os.ReadFile(filepath.Join(k.Dir, "kdc.log"))
	return string(b)
}

// Env is the environment the realm's programs run with: KRB5_CONFIG,
// KRB5_KDC_PROFILE and a private KRB5CCNAME, which later entries (a
// test's own KRB5CCNAME) override.
func (k *KDC) Env(extra ...string) []string {
	return append(append([]string(nil), k.env...), extra...)
}

// Run runs a Kerberos program with the realm's environment and returns
// its output; a failure fails the test.
func (k *KDC) Run(prog string, args ...string) string {
	k.tb.Helper()
	out, err := k.Try(nil, prog, args...)
	if err != nil {
		k.tb.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a Kerberos program with the realm's environment plus env, and
// stdin none.
func (k *KDC) Try(env []string, prog string, args ...string) (string, error) {
	bin, err := lookPath(prog)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = k.Env(env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// AddPrincipal adds a principal with a password ("" for a random key).
func (k *KDC) AddPrincipal(name, password string) {
	k.tb.Helper()
	if password == "" {
		k.Run("kadmin.local", "-r", k.Realm, "-q", "addprinc -randkey "+name)
		return
	}
	k.Run("kadmin.local", "-r", k.Realm, "-q", fmt.Sprintf("addprinc -pw %s %s", password, name))
}

// Keytab writes the keys of principals to a new keytab at path.
func (k *KDC) Keytab(path string, principals ...string) {
	k.tb.Helper()
	k.Run("kadmin.local", "-r", k.Realm, "-q", "ktadd -norandkey -k "+path+" "+strings.Join(principals, " "))
}

// Kinit gets a ticket-granting ticket for principal into the credential
// cache ccache (a file path), with kinit's extra options (-l 5s).
func (k *KDC) Kinit(ccache, principal, password string, options ...string) {
	k.tb.Helper()
	bin, err := lookPath("kinit")
	must(k.tb, err)
	cmd := exec.Command(bin, append(append([]string{"-c", "FILE:" + ccache}, options...), principal)...)
	cmd.Env = k.Env("KRB5CCNAME=FILE:" + ccache)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		k.tb.Fatalf("kinit %s: %v\n%s\n%s", principal, err, out, k.log())
	}
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
