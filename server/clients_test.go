package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/internal/clause"
)

// need returns the path of a client program, or skips the test saying
// which program is missing. Under CI (CI=true, where .ci/run installs
// every client) a missing program fails the test instead.
func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		missing(t, "%s is not installed on this machine; the test drives the real client", prog)
	}
	return p
}

// missing skips the test for a reason outside the project, or fails it
// under CI, which must run every test.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("under CI=true this test must run: "+format, args...)
	}
	t.Skipf(format, args...)
}

func runClient(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v:\n%s", name, args, out)
	return string(out)
}

// TestCurl drives curl over pop3:// (with --ssl-reqd for STLS) and
// pop3s://: LIST, RETR, UIDL and DELE with -X (RFC2595-4-STLS,
// RFC8314-3-IMPLICIT).
func TestCurl(t *testing.T) {
	clause.Covers(t, "RFC2595-4-STLS", "RFC8314-3-IMPLICIT")
	curl := need(t, "curl")
	e := newEnv(t, "exchange2010")
	e.deliver("bob", msg1, "")
	e.deliver("bob", msg2, "")
	base := "pop3://" + e.addr + "/"
	tlsBase := "pop3s://localhost:" + strings.Split(e.tlsAddr, ":")[1] + "/"
	common := []string{"-sS", "--max-time", "20", "-u", "bob:hunter2", "--cacert", certFile, "--resolve", "localhost:" + strings.Split(e.tlsAddr, ":")[1] + ":127.0.0.1"}

	assert.Equal(t, "1 41\r\n2 60\r\n", runClient(t, curl, append(common, base)...), "LIST")
	assert.Equal(t, strings.ReplaceAll(msg2, "\n", "\r\n"), runClient(t, curl, append(common, base+"2")...), "RETR (curl undoes the dot-stuffing)")
	assert.Equal(t, "1 1\r\n2 2\r\n", runClient(t, curl, append(common, "-X", "UIDL", base)...))
	assert.Equal(t, "1 41\r\n2 60\r\n", runClient(t, curl, append(common, "--ssl-reqd", "-X", "LIST", "pop3://localhost:"+strings.Split(e.addr, ":")[1]+"/",
		"--resolve", "localhost:"+strings.Split(e.addr, ":")[1]+":127.0.0.1")...), "STLS")
	assert.Equal(t, strings.ReplaceAll(msg1, "\n", "\r\n"), runClient(t, curl, append(common, tlsBase+"1")...), "pop3s RETR")
	runClient(t, curl, append(common, "-X", "DELE", base+"1", "-I")...)
	assert.Equal(t, "1 60\r\n", runClient(t, curl, append(common, base)...), "DELE took effect at QUIT")
	assert.Len(t, e.files("bob"), 1)
}

// TestPythonPoplib runs a full session with Python's poplib, including
// stls() (RFC2595-4-STLS), capa(), uidl(), top(), retr(), dele(), rset()
// and quit().
func TestPythonPoplib(t *testing.T) {
	clause.Covers(t, "RFC2595-4-STLS")
	py := need(t, "python3")
	e := newEnv(t, "rfc1939")
	e.deliver("bob", msg1, "")
	e.deliver("bob", msg2, "")
	script := `
import poplib, ssl, sys
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
p = poplib.POP3(host, port, timeout=20)
assert "STLS" in p.capa(), p.capa()
p.stls(context=ctx)
assert "STLS" not in p.capa()
p.user("bob")
p.pass_("hunter2")
print("stat", p.stat())
print("list", p.list()[1])
print("uidl", p.uidl()[1])
print("top", p.top(2, 1)[1])
print("retr", p.retr(2)[1])
p.dele(1)
p.rset()
p.dele(2)
print("quit", p.quit())
`
	host, port := "localhost", strings.Split(e.addr, ":")[1]
	out := runClient(t, py, "-c", script, host, port, certFile)
	assert.Contains(t, out, "stat (2, 112)")
	assert.Contains(t, out, "list [b'1 45', b'2 67']")
	assert.Contains(t, out, "uidl [b'1 1', b'2 2']")
	assert.Contains(t, out, "top [b'From: b@example.org', b'Subject: two', b'', b'.dot line']")
	assert.Contains(t, out, "retr [b'From: b@example.org', b'Subject: two', b'', b'.dot line', b'.', b'line 2', b'line 3']")
	assert.Contains(t, out, "quit b'+OK signing off (1 message removed)'")
	files := e.files("bob")
	require.Len(t, files, 1)
	b, err := os.ReadFile(filepath.Join(e.root, "bob", files[0]))
	require.NoError(t, err)
	assert.Equal(t, msg1, string(b))
}

// TestPerlNetPOP3 runs a session with Perl's Net::POP3 (plain: the machine
// has no IO::Socket::SSL), including its UIDL, TOP and APOP-less login.
func TestPerlNetPOP3(t *testing.T) {
	perl := need(t, "perl")
	if exec.Command(perl, "-MNet::POP3", "-e1").Run() != nil {
		missing(t, "Perl's Net::POP3 (libnet) is not installed on this machine")
	}
	e := newEnv(t, "exchange2010")
	e.deliver("dave", msg1, "")
	e.deliver("dave", msg2, "")
	script := `
use strict; use Net::POP3;
my ($host, $port) = @ARGV;
my $p = Net::POP3->new($host, Port => $port, Timeout => 20) or die "connect: $@";
my $n = $p->login("dave", "battery staple");
defined $n or die "login failed: " . $p->message;
print "count $n\n";
my $list = $p->list; print "list ", join(",", map { "$_=$list->{$_}" } sort keys %$list), "\n";
my $uidl = $p->uidl; print "uidl ", join(",", map { "$_=$uidl->{$_}" } sort keys %$uidl), "\n";
my $top = $p->top(2, 1); print "top ", join("|", map { s/\r?\n$//r } @$top), "\n";
my $msg = $p->get(2); print "get ", join("|", map { s/\r?\n$//r } @$msg), "\n";
$p->delete(2) or die "dele";
$p->quit or die "quit";
print "done\n";
`
	out := runClient(t, perl, "-e", script, "127.0.0.1", strings.Split(e.addr, ":")[1])
	assert.Contains(t, out, "count 2\n")
	assert.Contains(t, out, "list 1=41,2=60\n")
	assert.Contains(t, out, "uidl 1=1,2=2\n")
	assert.Contains(t, out, "top From: b@example.org|Subject: two||.dot line\n")
	assert.Contains(t, out, "get From: b@example.org|Subject: two||.dot line|.|line 2|line 3\n")
	assert.Contains(t, out, "done\n")
	assert.Len(t, e.files("dave"), 1)
}
