package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/examples/emlserver/internal/emlpop3"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
)

// The mailbox of the tests: LF line ends, as files usually hold them; the
// second has lines that start with a dot.
const (
	eml1 = "From: a@example.org\nSubject: hello\n\nfirst body\n"
	eml2 = "From: b@example.org\nSubject: dots\n  folded\n\n.dot line\n.\nline 3\n"
)

// start writes the test mailbox into a temporary directory and serves it
// on 127.0.0.1:0 for the test's duration.
func start(t *testing.T) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "one.eml"), []byte(eml1), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "two.eml"), []byte(eml2), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a message"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = Serve(ln, &Mailbox{Dir: dir, User: "demo", Password: "demo"}) }()
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String(), dir
}

// need returns the path of a client program, or skips the test; under
// CI=true, which must run every test, a missing program fails it.
func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("under CI=true this test must run: %s is not installed", prog)
		}
		t.Skipf("%s is not installed on this machine; the test drives the real client", prog)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v:\n%s", name, args, out)
	return string(out)
}

// TestPoplibSession drives emlserver with Python's poplib: CAPA lists the
// table's own XHDR, which answers with the unfolded Subject of each
// message; sizes are those of the CRLF form; unique-ids are the file
// names; RETR and TOP come back dot-unstuffed; XHDR leaves out a message
// marked deleted until RSET; DELE then QUIT removes the file.
func TestPoplibSession(t *testing.T) {
	py := need(t, "python3")
	addr, dir := start(t)
	host, port, _ := strings.Cut(addr, ":")
	script := `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=20)
print("greeting", p.getwelcome())
print("capa", sorted(p.capa()))
p.user("demo")
p.pass_("demo")
print("capa-after-login", sorted(p.capa()))
print("stat", p.stat())
print("list", p.list()[1])
print("uidl", p.uidl()[1])
print("xhdr", p._longcmd("XHDR Subject")[1])
print("xhdr-none", p._longcmd("XHDR X-Nothing")[1])
print("retr", p.retr(2)[1])
print("top", p.top(2, 1)[1])
print("dele", p.dele(1))
print("xhdr-after-dele", p._longcmd("XHDR from")[1])
p.rset()
print("xhdr-after-rset", p._longcmd("XHDR from")[1])
p.dele(1)
print("quit", p.quit())
`
	out := run(t, py, "-c", script, host, port)
	size1 := int64(len(eml1) + strings.Count(eml1, "\n"))
	size2 := int64(len(eml2) + strings.Count(eml2, "\n"))
	assert.Contains(t, out, "greeting b'+OK emlserver ready'")
	assert.Contains(t, out, "'XHDR'")
	assert.Contains(t, out, "'IMPLEMENTATION'")
	assert.Contains(t, out, "capa-after-login ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'TOP', 'UIDL', 'XHDR']", "no USER once logged in")
	assert.Contains(t, out, "stat (2, "+itoa(size1+size2)+")")
	assert.Contains(t, out, "list [b'1 "+itoa(size1)+"', b'2 "+itoa(size2)+"']")
	assert.Contains(t, out, "uidl [b'1 one', b'2 two']")
	assert.Contains(t, out, "xhdr [b'1 hello', b'2 dots folded']")
	assert.Contains(t, out, "xhdr-none []")
	assert.Contains(t, out, "retr [b'From: b@example.org', b'Subject: dots', b'  folded', b'', b'.dot line', b'.', b'line 3']")
	assert.Contains(t, out, "top [b'From: b@example.org', b'Subject: dots', b'  folded', b'', b'.dot line']")
	assert.Contains(t, out, "dele b'+OK message 1 deleted'")
	assert.Contains(t, out, "xhdr-after-dele [b'2 b@example.org']")
	assert.Contains(t, out, "xhdr-after-rset [b'1 a@example.org', b'2 b@example.org']")
	assert.Contains(t, out, "quit b'+OK signing off (1 message removed)'")
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "notes.txt"), filepath.Join(dir, "two.eml")}, names, "DELE and QUIT removed one.eml")
}

// TestPoplibRefusals: a wrong password, XHDR before login, a second
// session while the mailbox is locked, and a session that ends without
// QUIT removes nothing.
func TestPoplibRefusals(t *testing.T) {
	py := need(t, "python3")
	addr, dir := start(t)
	host, port, _ := strings.Cut(addr, ":")
	script := `
import poplib, sys
def try_(f, *a):
    try:
        return f(*a)
    except poplib.error_proto as e:
        return e.args[0]
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=20)
print("xhdr-unauth", try_(p._shortcmd, "XHDR Subject"))
p.user("demo")
print("wrong", try_(p.pass_, "nope"))
p.user("demo")
p.pass_("demo")
q = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=20)
q.user("demo")
print("locked", try_(q.pass_, "demo"))
print("xhdr-noarg", try_(p._shortcmd, "XHDR"))
p.dele(1)
p.sock.close()
`
	out := run(t, py, "-c", script, host, port)
	assert.Contains(t, out, "xhdr-unauth b'-ERR")
	assert.Contains(t, out, "wrong b'-ERR [AUTH] invalid user name or password'")
	assert.Contains(t, out, "locked b'-ERR [IN-USE] mailbox in use by another session'")
	assert.Contains(t, out, "xhdr-noarg b'-ERR")
	_, err := os.Stat(filepath.Join(dir, "one.eml"))
	assert.NoError(t, err, "a session that ends without QUIT removes nothing")
}

// TestCurlRetr fetches a listing and a message with curl, which undoes
// the dot-stuffing: the message comes back as the file, in CRLF form.
func TestCurlRetr(t *testing.T) {
	curl := need(t, "curl")
	addr, _ := start(t)
	base := "pop3://" + addr + "/"
	common := []string{"-sS", "--max-time", "20", "-u", "demo:demo"}
	size1 := int64(len(eml1) + strings.Count(eml1, "\n"))
	size2 := int64(len(eml2) + strings.Count(eml2, "\n"))
	assert.Equal(t, "1 "+itoa(size1)+"\r\n2 "+itoa(size2)+"\r\n", run(t, curl, append(common, base)...), "LIST")
	assert.Equal(t, strings.ReplaceAll(eml2, "\n", "\r\n"), run(t, curl, append(common, base+"2")...), "RETR")
}

// TestGeneratedUpToDate: internal/emlpop3 is what gen.go generates from
// the extended table today (gen.Main's -check writes nothing and fails on
// a difference). After a change to pop3kit's table or generator, run `go
// generate ./examples/emlserver`.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds the generator with the go tool; skipped in -short runs (never under CI=true)")
	}
	cmd := exec.Command("go", "run", "gen.go", "-out", "internal/emlpop3", "-check")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "internal/emlpop3 is stale: run go generate ./examples/emlserver\n%s", out)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestUniqueIDs: a file name that is a valid unique-id is one; any other
// gets a hash of the name, valid and the same every time.
func TestUniqueIDs(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{name: "one.eml", want: "one"},
		{name: "2026-11-30.msg-17.eml", want: "2026-11-30.msg-17"},
		{name: "with space.eml"},                 // "": hashed
		{name: strings.Repeat("x", 71) + ".eml"}, // longer than 70 octets
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := uid(tc.name)
			assert.True(t, pop3.ValidUID(got), "%q is not a valid unique-id", got)
			assert.Equal(t, got, uid(tc.name), "stable")
			if tc.want != "" {
				assert.Equal(t, tc.want, got)
				return
			}
			assert.Regexp(t, "^[0-9a-f]{32}$", got)
		})
	}
}

// TestCRLFSize: the size is that of the CRLF form, whatever the file's
// line ends and however the reads split a CRLF.
func TestCRLFSize(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   int64
	}{
		{name: "LF", chunks: []string{"a\nb\n"}, want: 6},
		{name: "CRLF", chunks: []string{"a\r\nb\r\n"}, want: 6},
		{name: "CRLF split across writes", chunks: []string{"a\r", "\nb"}, want: 4},
		{name: "no final line end", chunks: []string{"a\nb"}, want: 4},
		{name: "bare CR", chunks: []string{"a\rb\n"}, want: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &crlfCounter{}
			for _, s := range tc.chunks {
				_, _ = c.Write([]byte(s))
			}
			assert.Equal(t, tc.want, c.n)
		})
	}
}

// TestXhdrUnreadable: XHDR reads every value before its +OK, so a file
// removed behind the session's back is -ERR, not a listing cut short, and
// the session goes on.
func TestXhdrUnreadable(t *testing.T) {
	addr, dir := start(t)
	c := pop3test.Dial(t, addr)
	require.Equal(t, "+OK emlserver ready", c.Greeting)
	var got []string
	for _, cmd := range []string{"USER demo", "PASS demo", "remove", "XHDR Subject", "NOOP"} {
		if cmd == "remove" {
			require.NoError(t, os.Remove(filepath.Join(dir, "two.eml")))
			continue
		}
		got = append(got, c.Cmd(cmd))
	}
	assert.Equal(t, []string{"+OK", "+OK maildrop has 2 messages (" + itoa(int64(len(eml1)+strings.Count(eml1, "\n")+len(eml2)+strings.Count(eml2, "\n"))) + " octets)",
		"-ERR [SYS/TEMP] cannot read the mailbox", "+OK"}, got)
}

// plainHandler serves only what every Handler must: no XHDR.
type plainHandler struct{}

func (plainHandler) User(w *pop3.Writer, arg []byte) error { return nil }
func (plainHandler) Pass(user, secret []byte) (pop3.Maildrop, error) {
	return nil, pop3.NewError(pop3.CodeAuth, "no one logs in here")
}

// TestOptionalCommandNotAnnounced: a command the table adds as Optional is
// neither announced in CAPA nor served when the Handler lacks its
// interface (RFC 2449 §5: CAPA lists what the server supports).
func TestOptionalCommandNotAnnounced(t *testing.T) {
	var out strings.Builder
	s := pop3.NewSession(plainHandler{}, pop3.NewWriter(&out), func() *emlpop3.Variations { v := emlpop3.RFC1939(); return &v }())
	s.Feed([]byte("CAPA\r\n"))
	assert.NotContains(t, out.String(), "XHDR")
	assert.Contains(t, out.String(), "TOP\r\n")
	out.Reset()
	s.Feed([]byte("USER a\r\n"))
	s.Feed([]byte("XHDR Subject\r\n"))
	assert.Contains(t, out.String(), "-ERR")
	// The same table with a Handler that serves XHDR announces it.
	out.Reset()
	s = pop3.NewSession(&handler{mb: &Mailbox{}}, pop3.NewWriter(&out), func() *emlpop3.Variations { v := emlpop3.RFC1939(); return &v }())
	s.Feed([]byte("CAPA\r\n"))
	assert.Contains(t, out.String(), "XHDR\r\n")
}
