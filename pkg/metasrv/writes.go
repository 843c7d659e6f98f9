package metasrv

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/pgmetasrv/metasrv/internal/testsignal"
)

// writeGate tracks the leader writes of one term. A write runs on the gate's
// context, which only the term's end cancels, so a caller that gives up
// cannot cut it short: it goes on until PostgreSQL's outcome is known and
// that outcome, not the caller's departure, decides what the cache holds.
// close ends the term's writes and waits for them, so none outlives its term.
//
// The writes share one context rather than each deriving its own from its
// caller's: none of the write path reads a context value, and a context, a
// cancel function and a map entry per write were a measurable part of a
// put's cost.
type writeGate struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newWriteGate() *writeGate {
	ctx, cancel := context.WithCancel(context.Background())
	return &writeGate{ctx: ctx, cancel: cancel}
}

// enter registers a write. It returns the write's context (no deadline,
// cancelled when the term ends); leave must follow once the write has ended.
// ok is false once the term has ended.
func (g *writeGate) enter() (wctx context.Context, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, false
	}
	g.wg.Add(1)
	return g.ctx, true
}

// leave ends a registration enter made.
func (g *writeGate) leave() { g.wg.Done() }

// close refuses new writes, cancels the running ones and waits for them. A
// write cancelled here may be of unknown outcome, which no longer matters:
// the term's cache is dropped with the term.
func (g *writeGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cancel()
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
