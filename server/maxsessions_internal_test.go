package server

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDefaultMaxSessions: unless set, max_sessions is what the descriptor
// limit serves at five descriptors a busy session (its socket, its lock,
// its Maildir and cur/, a message being read), less the process's own; at
// most 10,000, at least 16. With 20,000 descriptors and 4 held by each
// idle session, 5,000 sessions ran out before; beyond a default of 3,987 a
// connection is refused [SYS/TEMP] at the door instead.
func TestDefaultMaxSessions(t *testing.T) {
	defer func(f func() int) { descriptorLimit = f }(descriptorLimit)
	for limit, want := range map[int]int{20000: 3987, 1024: 192, 100: 16, 1 << 30: 10000} {
		descriptorLimit = func() int { return limit }
		assert.Equal(t, want, DefaultMaxSessions(), "limit %d", limit)
		assert.Equal(t, want, DefaultConfig().MaxSessions, "limit %d", limit)
	}
}

// TestMaxSessionsOverLimitWarns: a max_sessions the descriptor limit
// cannot serve is said in the log at start.
func TestMaxSessionsOverLimitWarns(t *testing.T) {
	defer func(f func() int) { descriptorLimit = f }(descriptorLimit)
	descriptorLimit = func() int { return 1024 }
	var logs bytes.Buffer
	cfg := DefaultConfig()
	cfg.MailRoot, cfg.Passwd = t.TempDir(), writeEmptyPasswd(t)
	cfg.MaxSessions = 5000
	cfg.Listen = []string{"127.0.0.1:0"}
	_, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	assert.NoError(t, err)
	assert.Contains(t, logs.String(), "max_sessions is more than the descriptor limit serves")
	assert.Contains(t, logs.String(), "serves=192")
}

// writeEmptyPasswd writes a passwd-file with no account.
func writeEmptyPasswd(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
