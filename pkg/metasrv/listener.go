package metasrv

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Term is what a leadership listener gets when its node is elected.
type Term struct {
	// ID is the election term; it fences every write made through Store.
	ID int64
	// Store is the leader's view of the metadata for this term: reads from the
	// leader cache, writes fenced by ID and written through to the cache. It
	// stops working when the term ends.
	Store kv.Backend
	// Memory is the leader-only in-memory KV, emptied on every leadership change.
	Memory kv.Backend
}

// Listener is leader-only work (the procedure manager, node expiry, later the
// region supervisor). Start runs when the node becomes leader and ready, in
// registration order; Stop runs when it steps down, in reverse order.
type Listener interface {
	// Name identifies the listener in logs.
	Name() string
	// Start begins the work for one term and returns once it runs. ctx ends
	// when the term does; work started here must stop by then.
	Start(ctx context.Context, t Term) error
	// Stop ends the work of the current term and waits for it; safe to call
	// when Start failed or was never called.
	Stop()
}

// listenerRetry bounds the backoff between attempts to start a failing listener.
const (
	listenerRetryBase = 100 * time.Millisecond
	listenerRetryMax  = 5 * time.Second
)

// termListeners runs the listeners of one term: a listener whose Start fails is
// retried in the background so it never holds up the ones after it.
type termListeners struct {
	logger    *slog.Logger
	listeners []Listener
	wg        sync.WaitGroup
}

func startListeners(ctx context.Context, logger *slog.Logger, ls []Listener, t Term) *termListeners {
	tl := &termListeners{logger: logger, listeners: ls}
	for _, l := range ls {
		if err := l.Start(ctx, t); err != nil {
			logger.Error("leadership listener failed to start; retrying in the background", "listener", l.Name(), "term", t.ID, "err", err)
			tl.wg.Add(1)
			go tl.retry(ctx, l, t)
			continue
		}
		logger.Info("leadership listener started", "listener", l.Name(), "term", t.ID)
	}
	return tl
}

func (tl *termListeners) retry(ctx context.Context, l Listener, t Term) {
	defer tl.wg.Done()
	pause := backoff.Policy{Base: listenerRetryBase, Max: listenerRetryMax}
	for attempt := 2; ; attempt++ {
		if backoff.Sleep(ctx, pause.Delay(attempt-1)) != nil {
			return
		}
		err := l.Start(ctx, t)
		if err == nil {
			tl.logger.Info("leadership listener started", "listener", l.Name(), "term", t.ID, "attempt", attempt)
			return
		}
		tl.logger.Error("leadership listener failed to start", "listener", l.Name(), "term", t.ID, "attempt", attempt, "err", err)
	}
}

// stop must be called after the term's context is cancelled: it waits for
// the retry loops, then stops every listener in reverse order.
func (tl *termListeners) stop(termID int64) {
	tl.wg.Wait()
	for i := len(tl.listeners) - 1; i >= 0; i-- {
		l := tl.listeners[i]
		l.Stop()
		tl.logger.Info("leadership listener stopped", "listener", l.Name(), "term", termID)
	}
}
