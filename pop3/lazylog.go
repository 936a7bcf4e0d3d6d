package pop3

import (
	"context"
	"log/slog"
	"sync"
)

// lazyHandler adds attributes to its handler only when a record is
// logged. Every connection's logger carries its remote address, and a
// session's adds its user; a text or JSON handler formats them at once,
// into a handler of its own (400 octets and more), which an idle session
// would keep for as long as it idles, though at the usual levels most
// sessions never log a line.
type lazyHandler struct {
	inner slog.Handler
	attrs []slog.Attr
	once  sync.Once
	built slog.Handler
}

// withLazy returns l with attrs added when it first logs.
func withLazy(l *slog.Logger, attrs ...slog.Attr) *slog.Logger {
	return slog.New(&lazyHandler{inner: l.Handler(), attrs: attrs})
}

func (h *lazyHandler) handler() slog.Handler {
	h.once.Do(func() { h.built = h.inner.WithAttrs(h.attrs) })
	return h.built
}

func (h *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.handler().Handle(ctx, r)
}

// WithAttrs stays lazy: the attributes join the ones not yet added.
func (h *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	all := make([]slog.Attr, 0, len(h.attrs)+len(attrs))
	all = append(append(all, h.attrs...), attrs...)
	return &lazyHandler{inner: h.inner, attrs: all}
}

func (h *lazyHandler) WithGroup(name string) slog.Handler {
	return h.handler().WithGroup(name)
}
