package procedure

import (
	"context"
	"time"
)

// background collects finished procedures and follows the stored pause
// switch until the run ends.
func (r *run) background(ctx context.Context) {
	defer r.wg.Done()
	gc := time.NewTicker(r.m.opts.GCInterval)
	defer gc.Stop()
	poll := time.NewTicker(r.m.opts.PausePollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gc.C:
			n, err := r.collect(ctx)
			if err != nil && ctx.Err() == nil {
				r.m.log.Warn("collecting finished procedures failed", "removed", n, "err", err)
			}
			if n > 0 {
				r.m.testSignals.Collected.Signal(n)
			}
		case <-poll.C:
			on, err := r.readPaused(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.m.log.Warn("reading the pause switch failed", "err", err)
				}
				continue
			}
			r.pause.set(on)
		}
	}
}

// CollectGarbage removes every procedure that finished more than
// FinishedRetention ago (by Options.Now), record and data, and returns how
// many it removed. It also runs every GCInterval while the manager runs.
func (m *Manager) CollectGarbage(ctx context.Context) (int, error) {
	r, err := m.current()
	if err != nil {
		return 0, err
	}
	return r.collect(ctx)
}

func (r *run) collect(ctx context.Context) (int, error) {
	cutoff := r.m.opts.Now().Add(-r.m.opts.FinishedRetention)
	var old []*stored
	err := r.store.scan(ctx, func(st *stored, err error) error {
		if err == nil && st.rec.State.Final() && st.rec.UpdatedAt.Before(cutoff) {
			old = append(old, st)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, st := range old {
		ok, err := r.store.remove(ctx, st)
		if err != nil {
			return removed, err
		}
		if ok {
			removed++
		}
	}
	if removed > 0 {
		r.m.log.Info("removed finished procedures", "removed", removed, "retention", r.m.opts.FinishedRetention)
	}
	return removed, nil
}
