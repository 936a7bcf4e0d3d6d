package pop3

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingHandler counts the handlers made from it.
type countingHandler struct {
	slog.Handler
	made *int
}

func (h countingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	*h.made++
	return countingHandler{h.Handler.WithAttrs(a), h.made}
}

// TestLazyLogger: a connection's logger makes no handler of its own until
// it logs a line (at the usual levels most sessions never do); then the
// line carries every attribute, in order, once, whichever goroutines log.
func TestLazyLogger(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	made := 0
	inner := countingHandler{slog.NewTextHandler(&lockedWriter{w: &out, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelWarn}), &made}
	l := withLazy(slog.New(inner), slog.String("remote", "192.0.2.1:1234")).With("user", "alice")
	l.Info("not logged at warn")
	assert.Zero(t, made, "no handler made for a logger that logged nothing")
	assert.Empty(t, out.String())

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { l.Warn("login failed") })
	}
	wg.Wait()
	assert.Equal(t, 1, made, "one handler, made at the first line")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 4)
	for _, line := range lines {
		assert.Contains(t, line, `msg="login failed" remote=192.0.2.1:1234 user=alice`)
	}
	out.Reset()
	l.WithGroup("g").Warn("grouped", "k", 1)
	assert.Contains(t, out.String(), "remote=192.0.2.1:1234 user=alice g.k=1")
	assert.True(t, l.Enabled(context.Background(), slog.LevelWarn))
	assert.False(t, l.Enabled(context.Background(), slog.LevelInfo))
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
