package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
)

// argon2Field is a passwd-file field for password under ARGON2ID with m
// KiB of memory (one pass, four lanes).
func argon2Field(password string, m uint32) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 1, m, 4, 32)
	enc := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("{ARGON2ID}$argon2id$v=%d$m=%d,t=1,p=4$%s$%s", argon2.Version, m, enc(salt), enc(key))
}

// vmHWM returns the peak resident set of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^VmHWM:\s*(\d+) kB`).FindStringSubmatch(string(b))
	require.NotNil(t, m)
	kb, _ := strconv.ParseInt(m[1], 10, 64)
	return kb << 10
}

// TestBuiltAuthMemoryBounded: the built pop3d with --auth-workers 16 (the
// default on a 16-core host) and the default auth_memory, under a storm of
// wrong passwords for an ARGON2ID user from many addresses at once, stays
// under 512 MB of resident memory, whether each verification takes 64 MiB
// (RFC 9106's low-memory profile) or 256 MiB; every password is checked
// and refused. Before, the default cap was an eighth of the machine's
// memory, so the workers were the only bound: 40 wrong passwords took
// 1,044 MB with 16 workers at 64 MiB, 787 MB at 256 MiB.
func TestBuiltAuthMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of argon2 verification; -short leaves it to the plain run")
	}
	for _, tc := range []struct {
		name  string
		m     uint32 // KiB
		storm int
	}{
		{"64MiB", 64 << 10, 24},
		{"256MiB", 256 << 10, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.write(s.passwd, "dave:"+argon2Field("right", tc.m)+"\n")
			for _, sub := range []string{"", "cur", "new", "tmp"} {
				s.mkdir(filepath.Join(s.root, "dave", sub))
			}
			srv := s.serve("--trusted-networks", "127.0.0.0/8", "--auth-workers", "16", "--fail-delay", "0",
				"--max-preauth-per-ip", "100", "--auth-queue-timeout", "2m")
			addr := srv.addrs[0]
			var wg sync.WaitGroup
			replies := make([]string, tc.storm)
			for i := range tc.storm {
				wg.Add(1)
				go func() {
					defer wg.Done()
					replies[i], _ = login(t, fmt.Sprintf("127.0.71.%d", i+1), addr, "dave", "wrong")
				}()
			}
			wg.Wait()
			for i, r := range replies {
				assert.Equal(t, "-ERR [AUTH] invalid user name or password", r, "attempt %d", i)
			}
			r, _ := login(t, "127.0.72.1", addr, "dave", "right")
			assert.True(t, strings.HasPrefix(r, "+OK"), "the owner after the storm: %s", r)
			peak := vmHWM(t, srv.cmd.Process.Pid)
			t.Logf("%d wrong passwords at %s each, 16 workers: peak RSS %d MiB", tc.storm, tc.name, peak>>20)
			assert.Less(t, peak, int64(512<<20), "peak RSS")
		})
	}
}
