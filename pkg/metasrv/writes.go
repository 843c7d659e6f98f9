package metasrv

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/pgmetasrv/metasrv/internal/testsignal"
)

// writeGate tracks the leader writes of one term. A write runs on a context
// of its own that only the term's end cancels, so a caller that gives up
// cannot cut it short: it goes on until PostgreSQL's outcome is known and
// that outcome, not the caller's departure, decides what the cache holds.
// close ends the term's writes and waits for them, so none outlives its term.
type writeGate struct {
	mu      sync.Mutex
	closed  bool
	next    uint64
	cancels map[uint64]context.CancelFunc
	wg      sync.WaitGroup
}

func newWriteGate() *writeGate {
	return &writeGate{cancels: make(map[uint64]context.CancelFunc)}
}

// enter registers a write. It returns the write's context (ctx's values, no
// deadline, cancelled when the term ends) and the function that ends the
// registration; ok is false once the term has ended.
func (g *writeGate) enter(ctx context.Context) (wctx context.Context, leave func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, nil, false
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	id := g.next
	g.next++
	g.cancels[id] = cancel
	g.wg.Add(1)
	return wctx, func() {
		g.mu.Lock()
		delete(g.cancels, id)
		g.mu.Unlock()
		cancel()
		g.wg.Done()
	}, true
}

// close refuses new writes, cancels the running ones and waits for them. A
// write cancelled here may be of unknown outcome, which no longer matters:
// the term's cache is dropped with the term.
func (g *writeGate) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		for _, cancel := range g.cancels {
			cancel()
		}
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// A write is waiting (for its keys' locks) until it is sent to the durable
// store, unless its caller left first: then it is abandoned and never sent.
const (
	writeWaiting int32 = iota
	writeSent
	writeAbandoned
)

// pendingWrite is one write handed from its caller to the goroutine that
// runs it.
type pendingWrite struct {
	state atomic.Int32
	once  sync.Once
	done  chan struct{} // closed once err is the write's answer
	err   error
}

// answer gives the caller its answer; later calls do nothing. A write of
// unknown outcome answers before it is resolved, so the caller is not held
// while PostgreSQL finishes a transaction it can no longer see.
func (w *pendingWrite) answer(err error) {
	w.once.Do(func() {
		w.err = err
		close(w.done)
	})
}

// testSignals lets this package's tests wait for the core's events instead
// of sleeping or polling; nil outside tests. The write signals each carry the
// write's first key ("" for a range delete); sends never block.
type testSignals struct {
	locking chan string // the write's goroutine is about to take its keys' locks
	sent    chan string // the write is about to be sent to the durable store
	unsure  chan string // its outcome is unknown and its keys were marked
	// stateChanged: the node's state changed to the value, in order (sent
	// from stateChanged, after OnStateChange).
	stateChanged testsignal.Signal[State]
}

func newTestSignals(tb testsignal.TB) *testSignals {
	ts := &testSignals{locking: make(chan string, 1024), sent: make(chan string, 1024), unsure: make(chan string, 1024)}
	ts.stateChanged.Init(tb)
	return ts
}

func signal(ch chan string, keys [][]byte) {
	key := ""
	if len(keys) > 0 {
		key = string(keys[0])
	}
	select {
	case ch <- key:
	default:
	}
}
