package procedure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Manager runs durable procedures. It is a leadership listener: Start it with
// the term's (fenced) store when this node becomes leader, Stop it when the
// node steps down; it can then be started again for a later term.
type Manager struct {
	opts Options
	log  *slog.Logger

	// lifecycle serialises Start and Stop, so a Stop returns only once the
	// run it ends has fully stopped.
	lifecycle sync.Mutex

	mu      sync.Mutex
	loaders map[string]Loader
	run     *run
	totals  totals

	testSignals testSignals
}

// New returns a stopped manager.
func New(opts Options, logger *slog.Logger) *Manager {
	return &Manager{
		opts:    opts.withDefaults(),
		log:     logger.With("component", "procedure_manager"),
		loaders: make(map[string]Loader),
	}
}

// RegisterLoader registers the loader of a procedure type. Register every
// type before Start: procedures of a type unknown at Start are not resumed.
func (m *Manager) RegisterLoader(typeName string, loader Loader) error {
	if typeName == "" || loader == nil {
		return invalidArgf("RegisterLoader needs a non-empty type name and a loader (type %q)", typeName)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.run != nil {
		return fmt.Errorf("%w: register procedure type %q before Start", ErrAlreadyRunning, typeName)
	}
	if _, ok := m.loaders[typeName]; ok {
		return fmt.Errorf("procedure: a loader for type %q is already registered", typeName)
	}
	m.loaders[typeName] = loader
	return nil
}

// now is the clock in the form a stored timestamp reads back as (UTC, no
// monotonic reading), so in-memory and stored infos compare equal.
func (m *Manager) now() time.Time { return m.opts.Now().UTC().Round(0) }

func (m *Manager) loader(typeName string) (Loader, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.loaders[typeName]
	return l, ok
}

func (m *Manager) current() (*run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.run == nil {
		return nil, ErrNotRunning
	}
	return m.run, nil
}

// Start begins a leader term on store, which must be the term's fenced view of
// the backend. It reads the pause switch, loads every unfinished procedure and
// resumes each from its last persisted step (in submission order, so locks are
// granted in that order), starts garbage collection, and returns. ctx bounds
// the term: when it ends, procedures stop as with Stop (which must still be
// called).
func (m *Manager) Start(ctx context.Context, store kv.Backend) error {
	return m.StartTerm(ctx, 0, store)
}

// StartTerm is Start for leader term term, which every step then sees in
// Context.Term.
func (m *Manager) StartTerm(ctx context.Context, term int64, store kv.Backend) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	m.mu.Lock()
	running := m.run != nil
	m.mu.Unlock()
	if running {
		return ErrAlreadyRunning
	}
	if err := m.opts.validate(); err != nil {
		return err
	}
	r := &run{
		m:     m,
		term:  term,
		store: newRecordStore(store, m.opts),
		kv:    store,
		locks: newLockTable(),
		procs: make(map[ID]*entry),
	}
	r.pause.init(&m.testSignals)
	paused, err := r.readPaused(ctx)
	if err != nil {
		return err
	}
	r.pause.set(paused)
	entries, unloadable, err := r.load(ctx)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	// The term's context ending stops the procedures as Stop does.
	r.stopWatch = context.AfterFunc(runCtx, r.halt)
	// Resumed procedures queue for their locks before any new submission
	// can: r.mu is held from before the run is published.
	r.mu.Lock()
	m.mu.Lock()
	m.run = r
	m.mu.Unlock()
	r.unloadable = unloadable
	for _, e := range entries {
		r.procs[e.id] = e
		r.launchLocked(runCtx, e)
	}
	r.wg.Add(1)
	go r.background(runCtx)
	r.mu.Unlock()
	m.log.Info("procedure manager started", "resumed", len(entries), "unloadable", unloadable, "paused", paused)
	return nil
}

// Stop ends the current term's work: every procedure stops where it is
// (finishing nothing more, writing nothing more, so its persisted state is
// what the next leader resumes), locks are released, and Stop returns once
// every goroutine has ended. Safe to call more than once.
func (m *Manager) Stop() {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	m.mu.Lock()
	r := m.run
	m.run = nil
	m.mu.Unlock()
	if r == nil {
		return
	}
	r.stopWatch()
	r.halt()
	r.cancel()
	r.wg.Wait()
	m.log.Info("procedure manager stopped")
}

// Submit builds a procedure of a registered type from args (with the type's
// loader) and submits it.
func (m *Manager) Submit(ctx context.Context, typeName string, args []byte) (ID, error) {
	loader, ok := m.loader(typeName)
	if !ok {
		return "", fmt.Errorf("%w %q: register it with RegisterLoader", ErrUnknownType, typeName)
	}
	p, err := loader(args)
	if err != nil {
		return "", fmt.Errorf("%w: procedure type %q rejected its arguments: %w", ErrInvalidArgument, typeName, err)
	}
	if p == nil {
		return "", fmt.Errorf("procedure: loader of type %q returned no procedure and no error", typeName)
	}
	return m.SubmitProcedure(ctx, p)
}

// SubmitProcedure persists p's initial state and starts running it; the id is
// returned only once the state is stored, so an acknowledged procedure
// survives a leader change. p's type must be registered (a new leader needs
// its loader). Refused with ErrNotRunning, ErrPaused or ErrTooManyProcedures.
func (m *Manager) SubmitProcedure(ctx context.Context, p Procedure) (ID, error) {
	typeName := p.Type()
	if _, ok := m.loader(typeName); !ok {
		return "", fmt.Errorf("%w %q: register it with RegisterLoader", ErrUnknownType, typeName)
	}
	r, err := m.current()
	if err != nil {
		return "", err
	}
	keys, err := normalizeLockKeys(p.LockKeys())
	if err != nil {
		return "", fmt.Errorf("procedure of type %q: %w", typeName, err)
	}
	id := ID(uuid.NewString())
	raw, err := p.Dump()
	if err != nil {
		return "", fmt.Errorf("procedure: dump new procedure of type %q: %w", typeName, err)
	}
	data, err := compactJSON(id, raw)
	if err != nil {
		return "", err
	}
	if err := r.reserve(id); err != nil {
		return "", err
	}
	now := m.now()
	rec := &record{ID: id, Type: typeName, State: StateRunning, LockKeys: keys, SubmittedAt: now, UpdatedAt: now}
	st, err := r.store.write(ctx, nil, rec, replaceData, data)
	if err != nil {
		r.unreserve(id)
		return "", err
	}
	r.launch(ctx, &entry{id: id, p: p, keys: keys, st: st, done: make(chan struct{})})
	m.log.Debug("procedure submitted", "procedure_id", id, "type", typeName)
	return id, nil
}

// run is one leader term of the manager.
type run struct {
	m         *Manager
	term      int64
	store     *recordStore
	kv        kv.Backend
	locks     *lockTable
	cancel    context.CancelFunc
	stopWatch func() bool
	wg        sync.WaitGroup
	pause     pauseSwitch

	mu         sync.Mutex
	stopped    bool
	procs      map[ID]*entry // unfinished procedures driven (or reserved) by this run
	unloadable int
}

// entry is one procedure driven by a run. st is owned by its drive goroutine.
type entry struct {
	id     ID
	p      Procedure
	keys   []LockKey
	st     *stored
	lock   *lockRequest
	cancel context.CancelFunc // ends the drive goroutine's context
	state  State              // guarded by run.mu, for stats
	done   chan struct{}
	final  *Info // set before done is closed; nil when the procedure was abandoned
}

// reserve takes a slot for a new procedure, enforcing the pause switch and
// max_running_procedures before anything is written.
func (r *run) reserve(id ID) error {
	if r.pause.paused() {
		return fmt.Errorf("%w: resume it to submit procedures", ErrPaused)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrNotRunning
	}
	if n := len(r.procs); n >= r.m.opts.MaxRunningProcedures {
		return fmt.Errorf("%w: %d procedures are running, max_running_procedures is %d", ErrTooManyProcedures, n, r.m.opts.MaxRunningProcedures)
	}
	r.procs[id] = nil
	// Stop waits for a submit in flight, so no write of this term lands
	// after Stop returns.
	r.wg.Add(1)
	return nil
}

func (r *run) unreserve(id ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs, id)
	r.wg.Done()
}

// launch starts driving a reserved, persisted procedure. If the run stopped
// meanwhile, the procedure stays persisted for the next leader.
func (r *run) launch(reqCtx context.Context, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.wg.Done() // the reservation's
	if r.stopped {
		delete(r.procs, e.id)
		return
	}
	r.procs[e.id] = e
	// The procedure outlives the submitter's request (keeping its values,
	// not its deadline) and ends with the term, through halt.
	r.launchLocked(context.WithoutCancel(reqCtx), e)
}

func (r *run) launchLocked(parent context.Context, e *entry) {
	ctx, cancel := context.WithCancel(parent)
	e.cancel = cancel
	e.state = e.st.rec.State
	e.lock = r.locks.enqueue(e.keys)
	r.wg.Add(1)
	go r.drive(ctx, e)
}

// halt stops the run's procedures: no new one starts, every running one has
// its context cancelled.
func (r *run) halt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for _, e := range r.procs {
		if e != nil {
			e.cancel()
		}
	}
}

// load reads every unfinished procedure and rebuilds it with its loader, in
// submission order. A procedure that cannot be rebuilt (no loader on this
// node, corrupt data) is logged and left as stored, for a node that can.
func (r *run) load(ctx context.Context) ([]*entry, int, error) {
	var entries []*entry
	unloadable := 0
	err := r.store.scan(ctx, func(st *stored, err error) error {
		if err != nil {
			unloadable++
			r.m.log.Error("procedure record unreadable, not resumed", "err", err)
			return nil
		}
		if st.rec.State.Final() {
			return nil
		}
		e, err := r.rebuild(ctx, st)
		if err != nil {
			var u *unloadableError
			if !errors.As(err, &u) {
				return err // the store failed: Start fails and is retried
			}
			unloadable++
			r.m.log.Error("procedure not resumed", "procedure_id", st.rec.ID, "type", st.rec.Type, "err", err)
			return nil
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("procedure: load unfinished procedures: %w", err)
	}
	slices.SortStableFunc(entries, func(a, b *entry) int {
		if c := a.st.rec.SubmittedAt.Compare(b.st.rec.SubmittedAt); c != 0 {
			return c
		}
		return compareIDs(a.id, b.id)
	})
	return entries, unloadable, nil
}

func compareIDs(a, b ID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// unloadableError: a stored procedure this node cannot rebuild (as opposed to
// a store failure while reading it).
type unloadableError struct{ err error }

func (e *unloadableError) Error() string { return e.err.Error() }
func (e *unloadableError) Unwrap() error { return e.err }

func (r *run) rebuild(ctx context.Context, st *stored) (*entry, error) {
	rec := st.rec
	loader, ok := r.m.loader(rec.Type)
	if !ok {
		return nil, &unloadableError{fmt.Errorf("%w %q: no loader registered on this node", ErrUnknownType, rec.Type)}
	}
	data, err := r.store.readData(ctx, rec)
	if errors.Is(err, ErrCorruptState) {
		return nil, &unloadableError{err}
	}
	if err != nil {
		return nil, err
	}
	p, err := loader(data)
	if err != nil {
		return nil, &unloadableError{fmt.Errorf("procedure: loader of type %q rejected the stored state of %s: %w", rec.Type, rec.ID, err)}
	}
	if p == nil {
		return nil, &unloadableError{fmt.Errorf("procedure: loader of type %q returned no procedure for %s", rec.Type, rec.ID)}
	}
	if err := r.store.removeStaleData(ctx, rec); err != nil {
		return nil, err
	}
	// The stored lock keys are authoritative: they are what the procedure
	// was acknowledged with.
	return &entry{id: rec.ID, p: p, keys: rec.LockKeys, st: st, state: rec.State, done: make(chan struct{})}, nil
}
