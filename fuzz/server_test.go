package pop3fuzz

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	fuzz "github.com/AdaLogics/go-fuzz-headers"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/internal/pop3test"
	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/server"
)

// servers holds one pop3d per profile for the fuzz process, with a mail
// root of its own and one user, "f" with password "pw".
var (
	serversOnce sync.Once
	servers     map[string]*server.Server
	mailRoots   map[string]string
)

func fuzzServer(t testing.TB, profile string) (*server.Server, string) {
	serversOnce.Do(func() {
		servers, mailRoots = map[string]*server.Server{}, map[string]string{}
		for _, p := range pop3gen.ProfileNames {
			dir, err := os.MkdirTemp("", "pop3kit-fuzz")
			if err != nil {
				panic(err)
			}
			root := filepath.Join(dir, "mail")
			_ = os.MkdirAll(root, 0o700)
			pw := filepath.Join(dir, "passwd")
			_ = os.WriteFile(pw, []byte("f:{PLAIN}pw\n"), 0o600)
			cfg := server.DefaultConfig()
			cfg.Listen = []string{"127.0.0.1:0"} // never opened: sessions come through ServeConn
			cfg.MailRoot, cfg.Passwd, cfg.Profile, cfg.FailDelay = root, pw, p, 0
			_ = cfg.AddSet("PlaintextAuth=always") // a pipe is not loopback
			srv, err := server.New(cfg, nil)
			if err != nil {
				panic(err)
			}
			servers[p], mailRoots[p] = srv, root
		}
	})
	return servers[profile], mailRoots[profile]
}

// FuzzServerSession runs whole pop3d sessions over an in-memory
// connection: script is what the client says, one line per command (seeds
// are transcripts of real clients), and msgs, read with go-fuzz-headers,
// are the messages in the maildrop. It checks that every status line is at
// most 512 octets and starts with +OK, -ERR or "+ ", that the server never
// hangs, and that when the session ends exactly the messages marked deleted
// before a successful QUIT are gone: an unmarked message is never removed.
func FuzzServerSession(f *testing.F) {
	f.Add(uint8(2), []byte("\x02\x00\x00\x00\x05hello\x00\x00\x00\x06.world"), []byte("USER f\nPASS pw\nDELE 1\nQUIT"))
	fuzzbound.Fuzz(f, serverSession)
}

// serverSession is FuzzServerSession's body.
func serverSession(t *testing.T, sel uint8, msgData, script []byte) {
	profile := pop3gen.ProfileNames[int(sel)%len(pop3gen.ProfileNames)]
	srv, root := fuzzServer(t, profile)
	v := srv.Variations()
	md := filepath.Join(root, "f")
	_ = os.RemoveAll(md)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c := fuzz.NewConsumer(msgData)
	nmsg, _ := c.GetByte()
	var msgs []string
	for i := 0; i < int(nmsg%5); i++ {
		b, err := c.GetBytes()
		if err != nil {
			break
		}
		if len(b) > 4096 {
			b = b[:4096]
		}
		name := fmt.Sprintf("%d.M%d.fuzz", 1700000000+i, i)
		if err := os.WriteFile(filepath.Join(md, "new", name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, string(b))
	}

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	client, conn := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(conn); close(done) }()
	defer func() {
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end after the client closed")
		}
	}()
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	pc := pop3test.New(nil, client)
	readLine := func() (string, bool) {
		l, err := pc.ReadRaw()
		if pop3test.IsTimeout(err) {
			t.Fatalf("the server did not answer within 10 s (after %q)\n%s", l, pc.Transcript())
		}
		return l, err == nil
	}
	status := func(cmd, l string) {
		if err := pop3test.CheckStatus(l); err != nil {
			t.Fatalf("%q: %v\n%s", cmd, err, pc.Transcript())
		}
	}
	g, ok := readLine()
	if !ok {
		t.Fatal("no greeting")
	}
	status("greeting", g)

	marked := map[uint32]bool{}
	inTransaction, sasl, quitOK := false, false, false
	lines := strings.Split(string(script), "\n")
	for _, cmd := range lines[:min(len(lines), 64)] {
		cmd = strings.TrimSuffix(cmd, "\r")
		if err := pc.WriteLine(cmd); err != nil {
			break // the server closed
		}
		l, ok := readLine()
		if !ok {
			break
		}
		status(cmd, l)
		// The model reads the line as the server does, unless it was a
		// SASL response.
		var parsed pop3.Command
		var errs []*pop3.Error
		if !sasl {
			parsed, errs = Reference([]byte(cmd+"\r\n"), &v, 0)
		}
		wasSASL := sasl
		sasl = strings.HasPrefix(l, "+ ")
		okReply := strings.HasPrefix(l, "+OK")
		if okReply && !wasSASL && len(errs) == 0 && MultiLine(parsed) {
			data := parsed.Cmd == pop3gen.CmdRETR || parsed.Cmd == pop3gen.CmdTOP
			for {
				d, ok := readLine()
				if !ok {
					t.Fatalf("%q: the multi-line reply did not end", cmd)
				}
				if d == ".\r\n" {
					break
				}
				if !data && len(d) > pop3.MaxReplyOctets {
					t.Fatalf("%q: listing line of %d octets", cmd, len(d))
				}
			}
		}
		switch {
		case !okReply:
		case !wasSASL && parsed.Cmd == pop3gen.CmdRSET:
			marked = map[uint32]bool{}
		case !wasSASL && parsed.Cmd == pop3gen.CmdDELE:
			marked[parsed.Msg] = true
		case strings.HasPrefix(l, "+OK maildrop has"):
			inTransaction = true // a login: PASS, APOP, AUTH or a SASL response
		}
		if !wasSASL && parsed.Cmd == pop3gen.CmdQUIT && len(errs) == 0 {
			quitOK = okReply && inTransaction
			break
		}
	}
	client.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}

	// Allocation is bounded by the input: a fixed cost per session (buffers,
	// the maildrop scan, the UID list), a bounded factor of what the client
	// and the maildrop hold, and a password verification per line (a
	// SHA-crypt check allocates about 320 kB). A session that kept copies
	// of lines or messages would break it.
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	nlines := min(len(lines), 64)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(2<<20+64*(len(msgData)+len(script))+512<<10*nlines); got > limit {
		t.Fatalf("the session allocated %d octets for %d octets of input (limit %d)", got, len(msgData)+len(script), limit)
	}

	// What is left must be every message but the marked ones, and those
	// only after a successful QUIT in TRANSACTION.
	var left []string
	for _, sub := range []string{"cur", "new"} {
		ents, _ := os.ReadDir(filepath.Join(md, sub))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(md, sub, e.Name()))
			if err == nil {
				left = append(left, string(b))
			}
		}
	}
	var want []string
	for i, m := range msgs {
		if !(quitOK && marked[uint32(i+1)]) {
			want = append(want, m)
		}
	}
	sort.Strings(left)
	sort.Strings(want)
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Fatalf("after the session %d messages are left, want %d (marked %v, QUIT ok %v)", len(left), len(want), marked, quitOK)
	}
}

// pipeClient is a lock-step client on an in-memory connection to srv:
// the shared test client (internal/pop3test), whose Cmd checks each status
// line for CRLF, 512 octets and a status indicator.
type pipeClient struct {
	*pop3test.Conn
	done chan struct{}
}

func newPipeClient(t *testing.T, srv *server.Server) *pipeClient {
	client, conn := net.Pipe()
	p := &pipeClient{Conn: pop3test.New(t, client), done: make(chan struct{})}
	go func() { srv.ServeConn(conn); close(p.done) }()
	t.Cleanup(func() {
		client.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Error("the session did not end")
		}
	})
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	p.Greet()
	return p
}
