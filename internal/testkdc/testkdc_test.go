package testkdc_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/internal/testkdc"
)

// TestRealm starts a realm, gets a ticket and lists it.
func TestRealm(t *testing.T) {
	k := testkdc.Start(t, "TEST.POP3KIT")
	k.AddPrincipal("alice", "alice-pw")
	k.AddPrincipal("pop/127.0.0.1", "")
	kt := filepath.Join(k.Dir, "pop.keytab")
	k.Keytab(kt, "pop/127.0.0.1")
	cc := filepath.Join(k.Dir, "alice.cc")
	k.Kinit(cc, "alice", "alice-pw")
	out := k.Run("klist", "-c", "FILE:"+cc)
	if !strings.Contains(out, "alice@TEST.POP3KIT") {
		t.Fatalf("klist:\n%s", out)
	}
	if out := k.Run("klist", "-k", kt); !strings.Contains(out, "pop/127.0.0.1@TEST.POP3KIT") {
		t.Fatalf("klist -k:\n%s", out)
	}
}
