package hbload

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// warnings is the nodes' logger: it counts their warnings and keeps the
// first, instead of printing thousands of nodes' lines.
type warnings struct {
	count atomic.Uint64
	mu    sync.Mutex
	first string
}

func (w *warnings) logger() *slog.Logger { return slog.New(&warnHandler{w: w}) }

// take returns the first warning logged since the last take ("" if none)
// and how many were, and starts counting again.
func (w *warnings) take() (first string, n uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	first, w.first = w.first, ""
	return first, w.count.Swap(0)
}

// warnHandler is a slog.Handler that hands warnings and errors to warnings.
type warnHandler struct {
	w     *warnings
	attrs []slog.Attr
}

func (h *warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warnHandler) Handle(_ context.Context, r slog.Record) error {
	if h.w.count.Add(1) != 1 {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.w.mu.Lock()
	h.w.first = b.String()
	h.w.mu.Unlock()
	return nil
}

func (h *warnHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &warnHandler{w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup is not used by the fake; attributes stay flat.
func (h *warnHandler) WithGroup(string) slog.Handler { return h }
