package interop

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/internal/testserver"
	"github.com/pop3kit/pop3kit/pop3gen"
	"github.com/pop3kit/pop3kit/probe"
	"github.com/pop3kit/pop3kit/server"
)

var updateDialects = flag.Bool("update-dialects", false, "write docs/dialects/README.md from this run")

// dialectsDoc is the committed comparison.
const dialectsDoc = "../docs/dialects/README.md"

// TestDialects probes a private Dovecot and pop3d under each of its
// profiles with one test account and mail, and holds the variation-by-
// variation table to the one committed in docs/dialects/README.md: a
// change in the probe or in a server shows there (make dialects writes it
// again).
func TestDialects(t *testing.T) {
	dovecot := findDovecot(t)
	w := newWorld(t, rand.New(rand.NewPCG(8, 18)))
	servers := []probe.Named{{Name: "Dovecot 2.3", Report: probeServer(t, w.startDovecot(t, dovecot))}}
	for _, p := range pop3gen.ProfileNames {
		servers = append(servers, probe.Named{Name: "pop3d " + p, Report: probeServer(t, w.startPop3dProfile(t, p))})
	}
	table := probe.Table(servers)
	doc := dialectsHead + table
	if *updateDialects {
		must(t, os.MkdirAll(filepath.Dir(dialectsDoc), 0o755))
		must(t, os.WriteFile(dialectsDoc, []byte(doc), 0o644))
		return
	}
	have, err := os.ReadFile(dialectsDoc)
	must(t, err)
	if string(have) != doc {
		t.Errorf("the probe no longer agrees with %s (make dialects writes it again):\n%s", dialectsDoc, table)
	}
}

func probeServer(t *testing.T, addr string) *probe.Report {
	t.Helper()
	rep, err := probe.Run(context.Background(), probe.Options{Addr: addr, User: bob.name, Pass: bob.password})
	must(t, err)
	return rep
}

// startPop3dProfile serves pop3d's copy of the mail with profile as
// shipped, but for plaintext logins on the loopback (the Exchange
// profiles allow them only on secure connections).
func (w *world) startPop3dProfile(t *testing.T, profile string) string {
	t.Helper()
	dir := filepath.Join(w.dir, "pop3d-"+profile)
	must(t, os.MkdirAll(dir, 0o755))
	pw := bob.name + ":{PLAIN}" + bob.password + "::::::\n"
	must(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw), 0o600))
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.ListenTLS = []string{"127.0.0.1:0"}, nil
	cfg.MailRoot, cfg.Passwd, cfg.Profile = w.pdMail, filepath.Join(dir, "passwd"), profile
	cfg.TrustedNetworks = []string{"127.0.0.0/8"}
	_, addrs := testserver.Serve(t, cfg)
	return addrs[0].String()
}

var dialectsHead = strings.TrimLeft(`
# POP3 dialects, variation by variation

Written by `+"`make dialects`"+` (interop's TestDialects, which make test runs
and which fails when the probe no longer agrees with this page): pop3probe
(`+"`go run ./cmd/pop3probe`"+`, package probe) run against each server with
one test account and its mail. A value is as `+"`--set`"+` takes it; "—"
where the probe could not tell (run pop3probe for why: a timer, a probe not
written yet, a login the server refused). Each server is a private instance
on 127.0.0.1, as shipped but for plaintext logins on the loopback:
Dovecot with a passwd-file and Maildir, pop3d under each of its profiles.

`, "\n")
