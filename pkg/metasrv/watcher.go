package metasrv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// errTermEnded is the cause a term's context is cancelled with on step-down.
var errTermEnded = errors.New("metasrv: leadership term ended")

// watch consumes the election's stream in order until it closes. Every change
// empties the in-memory KV and drops the leader cache; Elected starts a term,
// StepDown ends it and waits for its work to stop.
func (m *Metasrv) watch(changes <-chan election.LeaderChange) {
	defer close(m.watcherDone)
	for ch := range changes {
		m.memory.Store(memkv.New())
		switch ch.Kind {
		case election.Elected:
			if t := m.current.Load(); t != nil {
				m.logger.Error("elected while a term is still running; ending it first", "running_term", t.id, "term", ch.Term)
				m.becomeFollower(t.id)
			}
			m.becomeLeader(ch.Term)
		case election.StepDown:
			m.becomeFollower(ch.Term)
		default:
			m.logger.Error("unknown leadership change ignored", "change", ch.String())
		}
	}
	if t := m.current.Load(); t != nil {
		// The seed steps down when its leader-change channel closes: work that
		// nobody can tell to stop any more must not go on.
		if !m.stopped.Load() {
			m.logger.Error("leadership stream closed unexpectedly; stepping down", "term", t.id)
		}
		m.becomeFollower(t.id)
	}
}

func (m *Metasrv) becomeLeader(term int64) {
	ctx, cancel := context.WithCancelCause(context.Background())
	t := &leadTerm{
		id:     term,
		cache:  newLeaderCache(),
		writes: newWriteGate(),
		cancel: cancel,
		done:   make(chan struct{}),
		reload: make(chan error, 1),
	}
	ts := &termStore{m: m, lead: t, term: term, durable: m.fenced(term), cache: t.cache, writes: t.writes,
		settle: m.settle, writeTimeout: m.writeTimeout, signals: m.signals}
	t.store = kv.WithLimits(ts, m.limits)
	t.phase.Store(int32(LeaderNotReady))
	m.current.Store(t)
	m.stateChanged()
	m.logger.Info("became leader; loading the leader cache", "term", term, "state", LeaderNotReady.String())
	go m.lead(ctx, t)
}

func (m *Metasrv) becomeFollower(term int64) {
	t := m.current.Load()
	if t == nil {
		return
	}
	if t.id != term {
		m.logger.Warn("step-down for another term than the running one; stepping down anyway", "running_term", t.id, "term", term)
	}
	m.current.Store(nil)
	m.stateChanged()
	t.cancel(fmt.Errorf("%w: %d", errTermEnded, t.id))
	// Writes first: listeners stopping below may wait on them.
	t.writes.close()
	<-t.done
	m.logger.Info("became follower", "term", t.id, "state", Follower.String())
}

// lead is the life of one term: load the cache, create the default metadata,
// start the listeners, then keep the cache whole until the term ends.
func (m *Metasrv) lead(ctx context.Context, t *leadTerm) {
	defer close(t.done)
	if !m.retry(ctx, t.id, "load leader cache", func() error { return m.loadCache(ctx, t) }) {
		return
	}
	if !m.retry(ctx, t.id, "create default metadata", func() error { return initMetadata(ctx, t.store) }) {
		return
	}
	m.becomeReady(t)
	term := Term{ID: t.id, Store: t.store, Memory: m.memory.Load()}
	running := startListeners(ctx, m.logger, m.listeners, term)
	defer running.stop(t.id)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.reload:
			if !m.retry(ctx, t.id, "reload leader cache", func() error { return m.reloadCache(ctx, t) }) {
				return
			}
			m.becomeReady(t)
		}
	}
}

func (m *Metasrv) loadCache(ctx context.Context, t *leadTerm) error {
	keys, took, err := t.cache.load(ctx, m.store)
	if err != nil {
		return err
	}
	m.logger.Info("leader cache loaded", "term", t.id, "keys", keys, "took", took)
	return nil
}

// reloadCache reloads the cache once no write of the term can still commit:
// a reload is asked for after a write of unknown outcome, and reading before
// that write is final could cache the value it is about to replace.
func (m *Metasrv) reloadCache(ctx context.Context, t *leadTerm) error {
	if m.settle != nil {
		if err := m.settle(ctx); err != nil {
			return err
		}
	}
	return m.loadCache(ctx, t)
}

// becomeReady opens the term to callers. A step-down may have raced the load;
// only the running term turns ready.
func (m *Metasrv) becomeReady(t *leadTerm) {
	if m.current.Load() == t {
		t.phase.Store(int32(LeaderReady))
		m.stateChanged()
		m.logger.Info("leader ready", "term", t.id, "state", LeaderReady.String())
	}
}

// retry runs fn until it succeeds or the term ends, backing off between
// failures; it reports whether fn succeeded.
func (m *Metasrv) retry(ctx context.Context, term int64, what string, fn func() error) bool {
	pause := backoff.Policy{Base: 50 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		m.logger.Error("leader task failed; retrying", "task", what, "term", term, "attempt", attempt, "err", err)
		if backoff.Sleep(ctx, pause.Delay(attempt)) != nil {
			return false
		}
	}
}
