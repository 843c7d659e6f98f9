package migration

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// The outcomes metasrv_region_migrations_total counts, one per final
// procedure state.
const (
	OutcomeSucceeded  = "succeeded"
	OutcomeRolledBack = "rolled_back"
	OutcomeFailed     = "failed"
)

// outcomeOf is the outcome of a migration that ended in state s.
func outcomeOf(s procedure.State) string {
	switch s {
	case procedure.StateDone:
		return OutcomeSucceeded
	case procedure.StateRolledBack:
		return OutcomeRolledBack
	default:
		return OutcomeFailed
	}
}

// StepBuckets are the bounds, in seconds, of
// metasrv_region_migration_step_seconds: GreptimeDB's for its stage elapsed
// histogram (10ms to 10,000s, a factor of ten apart), so that dashboards
// built for one read the other.
var StepBuckets = prometheus.ExponentialBuckets(0.01, 10, 7)

// reasons are every Reason, the label values resolved up front.
var reasons = []Reason{ReasonUnknown, ReasonManual, ReasonAutoRebalance, ReasonFailover}

// metrics are the migration counters and step timings, resolved once per
// label value so that the end of a migration or of a step pays no lookup.
type metrics struct {
	endsVec *prometheus.CounterVec
	ends    map[Reason]map[string]prometheus.Counter
	stepVec *prometheus.HistogramVec
	steps   map[string]prometheus.Observer
}

func newMetrics() *metrics {
	m := &metrics{
		endsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metasrv_region_migrations_total",
			Help: "Region migrations this node saw end, by trigger reason and outcome (succeeded; rolled_back: the source leads again; failed: the rollback failed too, the procedure needs an operator).",
		}, []string{"reason", "outcome"}),
		ends: map[Reason]map[string]prometheus.Counter{},
		stepVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "metasrv_region_migration_step_seconds",
			Help:    "Time of each region migration step that completed on this node (a step resumed by a new leader counts from its resumption), by step.",
			Buckets: StepBuckets,
		}, []string{"step"}),
		steps: map[string]prometheus.Observer{},
	}
	for _, r := range reasons {
		m.ends[r] = map[string]prometheus.Counter{}
		for _, o := range []string{OutcomeSucceeded, OutcomeRolledBack, OutcomeFailed} {
			m.ends[r][o] = m.endsVec.WithLabelValues(string(r), o)
		}
	}
	for _, s := range steps {
		m.steps[s] = m.stepVec.WithLabelValues(s)
	}
	return m
}

// ended counts one migration's end; a reason an older record may carry
// that is no Reason any more counts as Unknown.
func (m *metrics) ended(r Reason, outcome string) {
	byOutcome, ok := m.ends[r]
	if !ok {
		byOutcome = m.ends[ReasonUnknown]
	}
	byOutcome[outcome].Inc()
}

// stepDone records the time a completed step took; every step the
// procedure runs is in steps.
func (m *metrics) stepDone(step string, seconds float64) {
	if o, ok := m.steps[step]; ok {
		o.Observe(seconds)
	}
}

// RegisterMetrics exports metasrv_region_migrations_total and
// metasrv_region_migration_step_seconds on reg.
func (m *Manager) RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(reg.Register(m.metrics.endsVec), reg.Register(m.metrics.stepVec))
}

// ending is a migration whose end the term's watcher awaits, with what its
// end is logged with.
type ending struct {
	id   procedure.ID
	data migrationData
}

// ends is the part of a term that awaits the end of each migration it
// drives: the procedure manager alone knows a migration's final state once
// it is stored (a rollback that fails, or a Done that cannot be stored,
// ends otherwise than the last step said), and awaiting that stored state
// counts every end once in the cluster, whichever leader ran its last step.
type ends struct {
	stop context.CancelFunc
	done chan struct{}
	// wake tells the watcher that pending has grown.
	wake chan struct{}
	// pending is guarded by Manager.mu.
	pending []ending
}

// startEnds starts term ts's watcher; ctx ends with the term.
func (m *Manager) startEnds(ctx context.Context, ts *termState) {
	ctx, cancel := context.WithCancel(ctx)
	ts.ends = &ends{stop: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go func() {
		defer close(ts.ends.done)
		m.watchEnds(ctx, ts.ends)
	}()
}

// stopAndWait ends the watcher and its waits, and waits for them.
func (e *ends) stopAndWait() {
	e.stop()
	<-e.done
}

// awaitLocked has the term's watcher await the end of procedure id, the
// migration p; Manager.mu is held.
func (m *Manager) awaitLocked(p *migration, id procedure.ID) {
	if m.term == nil {
		return
	}
	e := m.term.ends
	e.pending = append(e.pending, ending{id: id, data: p.info})
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) watchEnds(ctx context.Context, e *ends) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		}
		m.mu.Lock()
		pending := e.pending
		e.pending = nil
		m.mu.Unlock()
		for _, end := range pending {
			wg.Go(func() { m.awaitEnd(ctx, end) })
		}
	}
}

// awaitEnd counts and logs the end of one migration. When the term ends
// first, the migration goes on under the next leader, which counts it.
func (m *Manager) awaitEnd(ctx context.Context, e ending) {
	info, err := m.opts.Procedures.Wait(ctx, e.id)
	if err != nil || !info.State.Final() {
		return
	}
	outcome := outcomeOf(info.State)
	m.metrics.ended(e.data.Reason, outcome)
	log := m.log.With("procedure_id", e.id, "region_id", regionName(e.data.RegionID),
		"table_id", greptimekey.RegionTableID(e.data.RegionID), "from", e.data.From.ID, "to", e.data.To.ID,
		"reason", string(e.data.Reason), "outcome", outcome, "duration", info.UpdatedAt.Sub(info.SubmittedAt).String())
	switch info.State {
	case procedure.StateDone:
		log.Info("region migration ended")
	case procedure.StateRolledBack:
		log.Warn("region migration ended", "err", info.Error)
	default:
		log.Error("region migration ended", "err", info.Error)
	}
}
