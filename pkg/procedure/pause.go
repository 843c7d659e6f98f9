package procedure

import (
	"context"
	"fmt"
	"sync"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// pauseKey is the stored pause switch, GreptimeDB's __switches/pause_procedure
// (outside Options.KeyPrefix: it is the cluster's switch, shared with a
// GreptimeDB metasrv on the same table and with its admin API).
func pauseKey() []byte { return []byte(greptimekey.PauseProcedureKey) }

// pauseSwitch is the in-memory copy of the stored pause switch, which
// procedures wait on between steps.
type pauseSwitch struct {
	mu      sync.Mutex
	on      bool
	resumed chan struct{} // closed and replaced when the switch turns off
	signals *testSignals
}

func (p *pauseSwitch) init(signals *testSignals) {
	p.resumed = make(chan struct{})
	p.signals = signals
}

func (p *pauseSwitch) set(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on == on {
		return
	}
	p.on = on
	p.signals.PauseSwitched.Signal(on)
	if !on {
		close(p.resumed)
		p.resumed = make(chan struct{})
	}
}

func (p *pauseSwitch) paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on
}

// wait returns once the switch is off, or ctx's error; id is the procedure
// waiting.
func (p *pauseSwitch) wait(ctx context.Context, id ID) error {
	for {
		p.mu.Lock()
		on, ch := p.on, p.resumed
		p.mu.Unlock()
		if !on {
			return nil
		}
		p.signals.Held.Signal(id)
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *run) readPaused(ctx context.Context) (bool, error) {
	e, err := kv.Get(ctx, r.kv, pauseKey())
	if err != nil {
		return false, fmt.Errorf("procedure: read pause switch %q: %w", greptimekey.PauseProcedureKey, err)
	}
	return e != nil, nil
}

// Paused reads the pause switch from the store.
func (m *Manager) Paused(ctx context.Context) (bool, error) {
	r, err := m.current()
	if err != nil {
		return false, err
	}
	on, err := r.readPaused(ctx)
	if err != nil {
		return false, err
	}
	r.pause.set(on)
	return on, nil
}

// Pause turns the stored pause switch on. While paused, Submit returns
// ErrPaused and every procedure stops before its next step, retry or rollback
// attempt (the step in flight finishes and is persisted). Get, List and Wait
// keep working. The switch is stored, so it outlives leader changes.
func (m *Manager) Pause(ctx context.Context) error {
	r, err := m.current()
	if err != nil {
		return err
	}
	// GreptimeDB's switch: an empty value, present = paused.
	if _, err := r.kv.Put(ctx, kv.PutRequest{Key: pauseKey(), Value: []byte{}}); err != nil {
		return fmt.Errorf("procedure: pause (%q): %w", greptimekey.PauseProcedureKey, err)
	}
	r.pause.set(true)
	m.log.Info("procedure manager paused")
	return nil
}

// Resume turns the stored pause switch off; waiting procedures go on.
func (m *Manager) Resume(ctx context.Context) error {
	r, err := m.current()
	if err != nil {
		return err
	}
	if _, err := r.kv.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{pauseKey()}}); err != nil {
		return fmt.Errorf("procedure: resume (%q): %w", greptimekey.PauseProcedureKey, err)
	}
	r.pause.set(false)
	m.log.Info("procedure manager resumed")
	return nil
}
