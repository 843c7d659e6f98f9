package metasrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// Deps is what a Metasrv is built from.
type Deps struct {
	Logger *slog.Logger
	// Store is the durable metadata store, unfenced, without the key prefix.
	// Serializable reads and the cache load read it.
	Store kv.Backend
	// Fenced returns the durable store whose writes are fenced by term (for
	// postgres_store, pgkv's WithFence with the election's fence). Nil means
	// Store needs no fence (memory_store: one node, nobody to race).
	Fenced func(term int64) kv.Backend
	// Settle returns once no fenced write sent before the call can still
	// commit (pgelection's Elector.Settle). A write of unknown outcome is
	// re-read only after it, so the re-read is final. Nil when writes cannot
	// be of unknown outcome (memory_store).
	Settle func(ctx context.Context) error
	// WriteTimeout bounds one durable write of the leader, whoever its caller
	// is and however early the caller gives up (default 30s): a write that
	// hangs ends with an unknown outcome and is then resolved.
	WriteTimeout time.Duration
	// KeyPrefix is store_key_prefix.
	KeyPrefix []byte
	// Limits are enforced on the leader's backend (max_txn_ops, value size).
	Limits kv.Limits
	// Elector decides leadership; election.Single for memory_store.
	Elector election.Elector
	// Listeners run while this node leads, in order.
	Listeners []Listener
	// Addr returns the address this node advertises (grpc.server_addr); a
	// function because it is known only once the gRPC listener is bound.
	Addr func() string
	// OnStateChange, if set, is called with every new state, in order, from
	// the goroutine that changed it (keep it quick).
	OnStateChange func(State)
}

// DefaultWriteTimeout is Deps.WriteTimeout's default.
const DefaultWriteTimeout = 30 * time.Second

// Metasrv is one metadata server node: it follows the election, and while it
// leads it keeps the leader cache and runs the leadership listeners.
type Metasrv struct {
	logger       *slog.Logger
	store        kv.Backend // prefixed, unfenced
	fenced       func(term int64) kv.Backend
	settle       func(ctx context.Context) error
	writeTimeout time.Duration
	signals      *testSignals // nil outside this package's tests
	limits       kv.Limits
	elector      election.Elector
	listeners    []Listener
	addr         func() string
	onState      func(State)

	// stateMu orders state notifications; notified is the last one sent.
	stateMu  sync.Mutex
	notified State
	// leaderHint is the leader address last seen, for response headers.
	leaderHint atomic.Pointer[string]
	// current is the running term; nil while following. The node's State is
	// derived from it (nil: Follower, else the term's phase), so the two
	// cannot disagree.
	current atomic.Pointer[leadTerm]
	// memory is the in-memory KV of the current term, replaced on every change.
	memory atomic.Pointer[memkv.Store]

	// stopped is set when shutdown begins; finished (under stopMu) once
	// every goroutine Start started has ended.
	started, stopped atomic.Bool
	stopMu           sync.Mutex
	finished         bool
	watcherDone      chan struct{}
	unsubscribe      func()
	stopHint         context.CancelFunc
	hintDone         chan struct{}
}

// leadTerm is one term of leadership on this node: the core's resources for
// the term the election says this node won. Whether the node may still act
// for it is asked of the election per call (Elector.TrustedTerm), never kept.
type leadTerm struct {
	id int64
	// phase is LeaderNotReady until the cache is loaded and the default
	// metadata exists, then LeaderReady (back to LeaderNotReady while a
	// reload runs): whether the term is open to callers.
	phase  atomic.Int32
	cache  *leaderCache
	writes *writeGate // the term's writes in flight, ended with the term
	store  kv.Backend // the Term.Store handed out: limits over the term store
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the term's lead goroutine returned
	reload chan error    // asks the lead goroutine to reload the cache
}

// New builds a Metasrv; Start makes it run.
func New(d Deps) (*Metasrv, error) {
	if d.Logger == nil || d.Store == nil || d.Elector == nil || d.Addr == nil {
		return nil, errors.New("metasrv: Logger, Store, Elector and Addr are required")
	}
	m := &Metasrv{
		logger:       d.Logger.With("component", "metasrv"),
		store:        kv.WithPrefix(d.Store, d.KeyPrefix),
		settle:       d.Settle,
		writeTimeout: d.WriteTimeout,
		limits:       d.Limits,
		elector:      d.Elector,
		listeners:    d.Listeners,
		addr:         d.Addr,
		onState:      d.OnStateChange,
	}
	if m.writeTimeout <= 0 {
		m.writeTimeout = DefaultWriteTimeout
	}
	if d.Fenced != nil {
		m.fenced = func(term int64) kv.Backend { return kv.WithPrefix(d.Fenced(term), d.KeyPrefix) }
	} else {
		m.fenced = func(int64) kv.Backend { return m.store }
	}
	m.memory.Store(memkv.New())
	return m, nil
}

// Start subscribes to the election, starts the leadership watcher and then the
// election. A second call logs a warning and returns nil.
func (m *Metasrv) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		m.logger.Warn("metasrv already started")
		return nil
	}
	changes, unsubscribe := m.elector.Subscribe()
	m.unsubscribe = unsubscribe
	m.watcherDone = make(chan struct{})
	go m.watch(changes)
	hintCtx, stopHint := context.WithCancel(context.WithoutCancel(ctx))
	m.stopHint, m.hintDone = stopHint, make(chan struct{})
	go m.watchLeader(hintCtx, m.hintDone)
	if err := m.elector.Start(ctx); err != nil {
		m.Stop(context.WithoutCancel(ctx))
		return fmt.Errorf("metasrv: start election: %w", err)
	}
	m.logger.Info("metasrv started")
	return nil
}

// Stop stops leader work, resigns and waits for every goroutine Start
// started. ctx bounds the wait: when it ends first, Stop returns its
// error with the stop under way (nothing new starts, the leader-hint watcher
// has stopped), and a later call waits again for the rest. Once a call has
// returned nil, further calls log a warning and return nil.
func (m *Metasrv) Stop(ctx context.Context) error {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	if !m.started.Load() || m.finished {
		m.logger.Warn("metasrv stop called again or before start")
		return nil
	}
	if m.stopped.CompareAndSwap(false, true) {
		// The hint watcher's look-ups run under its context: cancelling it
		// ends one in flight too.
		m.stopHint()
		// Stopping the elector resigns and ends the stream after its last
		// StepDown, which makes the watcher stop the listeners and return.
		m.elector.Stop()
	}
	// Not bounded by ctx: with its context cancelled, the hint watcher ends
	// as soon as its look-up returns, and it must not outlive this call.
	<-m.hintDone
	select {
	case <-m.watcherDone:
	default:
		select {
		case <-m.watcherDone:
		case <-ctx.Done():
			return fmt.Errorf("metasrv: shutdown: waiting for leader work to stop (call Stop again to keep waiting): %w", ctx.Err())
		}
	}
	m.unsubscribe()
	m.finished = true
	m.logger.Info("metasrv stopped")
	return nil
}

// State reports where this node stands.
func (m *Metasrv) State() State {
	t := m.current.Load()
	if t == nil {
		return Follower
	}
	return State(t.phase.Load())
}

// stateChanged tells OnStateChange (and the tests' signal) of the state, in
// order, once per change. Callers change current or a phase first.
func (m *Metasrv) stateChanged() {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	s := m.State()
	if s == m.notified {
		return
	}
	m.notified = s
	if m.onState != nil {
		m.onState(s)
	}
	if m.signals != nil {
		m.signals.stateChanged.Signal(s)
	}
}

// Elector is the election this node follows.
func (m *Metasrv) Elector() election.Elector { return m.elector }

// servesTerm is true while t is this node's running term and the election
// still trusts this node's leadership of it (inside the trust window).
func (m *Metasrv) servesTerm(t *leadTerm) bool {
	return m.current.Load() == t && m.elector.TrustedTerm() == t.id
}

// notLeader builds the refusal of a leader-only request, naming the leader.
// The hint kept fresh in the background answers it without a query; only
// when the hint is empty or names this node (it just stepped down) is the
// election asked, so a follower under load does not query PostgreSQL per
// refused call.
func (m *Metasrv) notLeader(ctx context.Context) error {
	if hint := m.HeaderInfo().LeaderAddr; hint != "" && hint != m.addr() {
		return &election.NotLeaderError{Leader: hint}
	}
	l, err := m.elector.Leader(ctx)
	if err != nil || l.Addr == m.addr() {
		return &election.NotLeaderError{}
	}
	m.leaderHint.Store(&l.Addr)
	return &election.NotLeaderError{Leader: l.Addr}
}

// LeaderBackend returns the leader's store for the current term: reads from
// the leader cache, writes fenced and written through. It fails with an
// *election.NotLeaderError when this node has no term open to callers; the
// store itself checks the trust window on every call (see termStore.check),
// since a handle outlives the moment it was handed out.
func (m *Metasrv) LeaderBackend(ctx context.Context) (kv.Backend, error) {
	t := m.current.Load()
	if t == nil || State(t.phase.Load()) != LeaderReady {
		return nil, m.notLeader(ctx)
	}
	return t.store, nil
}

// SerializableBackend reads the durable store directly, on any node: it may lag
// the leader by the writes in flight, never by a committed one it was asked
// after.
func (m *Metasrv) SerializableBackend() kv.Backend { return kv.WithLimits(m.store, m.limits) }

// MemoryBackend is the in-memory KV of the current term.
func (m *Metasrv) MemoryBackend() kv.Backend { return m.memory.Load() }

// CacheStats reports the leader cache's keys and bytes (zero while following).
func (m *Metasrv) CacheStats() (keys int, bytes int64) {
	t := m.current.Load()
	if t == nil {
		return 0, 0
	}
	return t.cache.data.Stats()
}

// invalidateCache asks the term's lead goroutine to reload the cache; until it
// has, leader-only calls are refused. The reload settles the term's writes
// first, so it cannot read a key before a write of unknown outcome is final.
func (m *Metasrv) invalidateCache(term int64, reason error) {
	t := m.current.Load()
	if t == nil || t.id != term {
		return
	}
	t.cache.ready.Store(false)
	t.phase.Store(int32(LeaderNotReady))
	m.stateChanged()
	m.logger.Error("leader cache invalidated; reloading", "term", term, "err", reason)
	select {
	case t.reload <- reason:
	default: // a reload is already pending
	}
}
