package migration

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// endLogs hands the test every "region migration ended" record, with the
// attributes the logger carried.
type endLogs struct {
	ch    chan map[string]any
	attrs []slog.Attr
}

func newEndLogs() *endLogs { return &endLogs{ch: make(chan map[string]any, 8)} }

func (h *endLogs) Enabled(context.Context, slog.Level) bool { return true }

func (h *endLogs) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "region migration ended" {
		return nil
	}
	out := map[string]any{"level": r.Level.String()}
	for _, a := range h.attrs {
		out[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		out[a.Key] = a.Value.Any()
		return true
	})
	h.ch <- out
	return nil
}

func (h *endLogs) WithAttrs(as []slog.Attr) slog.Handler {
	return &endLogs{ch: h.ch, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *endLogs) WithGroup(string) slog.Handler { return h }

// metricsOf registers b's metrics on a registry of their own.
func metricsOf(t *testing.T, b *bundle) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, b.mgr.RegisterMetrics(reg))
	return reg
}

// endCounts is metasrv_region_migrations_total's non-zero series, as
// "reason/outcome".
func endCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range family(t, reg, "metasrv_region_migrations_total").GetMetric() {
		if v := m.GetCounter().GetValue(); v != 0 {
			out[label(m, "reason")+"/"+label(m, "outcome")] = v
		}
	}
	return out
}

// stepCounts is metasrv_region_migration_step_seconds' sample count by
// step, zero counts left out.
func stepCounts(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, m := range family(t, reg, "metasrv_region_migration_step_seconds").GetMetric() {
		if n := m.GetHistogram().GetSampleCount(); n != 0 {
			out[label(m, "step")] = n
		}
	}
	return out
}

func family(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// requireNoMoreEnds stops b's term (which waits for its watcher) and checks
// that no other end was logged.
func requireNoMoreEnds(t *testing.T, b *bundle, logs *endLogs) {
	t.Helper()
	b.stopTerm()
	require.Empty(t, logs.ch, "each end is logged once")
}

func TestMetricsSeries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := metricsOf(t, b)
	require.Len(t, family(t, reg, "metasrv_region_migrations_total").GetMetric(), 4*3, "every reason and outcome from the start")
	h := family(t, reg, "metasrv_region_migration_step_seconds")
	require.Len(t, h.GetMetric(), len(steps), "every step from the start")
	var bounds []float64
	for _, bk := range h.GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, bk.GetUpperBound())
	}
	require.InDeltaSlice(t, []float64{0.01, 0.1, 1, 10, 100, 1000, 10000}, bounds, 1e-9, "GreptimeDB's stage buckets")
}

func TestMetricsOfASucceededMigration(t *testing.T) {
	t.Parallel()
	logs := newEndLogs()
	b := setupLogged(t, logs)
	reg := metricsOf(t, b)
	id := b.migrate(t)
	require.Equal(t, procedure.StateDone, b.wait(t, id).State)
	end := <-logs.ch
	require.Equal(t, map[string]float64{"Manual/succeeded": 1}, endCounts(t, reg))
	want := map[string]uint64{}
	for _, s := range steps {
		want[s] = 1
	}
	require.Equal(t, want, stepCounts(t, reg), "each step timed once")

	require.Equal(t, "INFO", end["level"])
	require.Equal(t, "region_migration", end["component"])
	require.Equal(t, id, end["procedure_id"])
	require.Equal(t, "4398046511104(1024, 0)", end["region_id"])
	require.EqualValues(t, tableID, end["table_id"])
	require.EqualValues(t, 1, end["from"])
	require.EqualValues(t, 3, end["to"])
	require.Equal(t, "Manual", end["reason"])
	require.Equal(t, OutcomeSucceeded, end["outcome"])
	require.NotEmpty(t, end["duration"])
	requireNoMoreEnds(t, b, logs)
}

func TestMetricsOfARolledBackMigration(t *testing.T) {
	t.Parallel()
	logs := newEndLogs()
	b := setupLogged(t, logs)
	reg := metricsOf(t, b)
	b.mailbox.setHook(func(_ context.Context, s sent) (instruction.Reply, error, bool) {
		if s.kind == instruction.KindOpenRegions {
			return instruction.OpenRegionsReply{Result: false, Error: new("disk full")}, nil, true
		}
		return nil, nil, false
	})
	id, err := b.mgr.Submit(t.Context(), Task{RegionID: region0, From: 1, To: 3, Reason: ReasonFailover})
	require.NoError(t, err)
	require.Equal(t, procedure.StateRolledBack, b.wait(t, id).State)
	end := <-logs.ch
	require.Equal(t, map[string]float64{"Failover/rolled_back": 1}, endCounts(t, reg))
	require.Equal(t, map[string]uint64{stepStart: 1}, stepCounts(t, reg), "a failed step is not timed")
	require.Equal(t, "WARN", end["level"])
	require.Equal(t, OutcomeRolledBack, end["outcome"])
	require.Contains(t, end["err"], "is not opened by datanode 3, error: disk full")
	requireNoMoreEnds(t, b, logs)
}

// The upgrade fails and so does every close of the candidate the rollback
// sends: the procedure fails, which only the procedure manager's stored
// state says.
func TestMetricsOfAFailedMigration(t *testing.T) {
	t.Parallel()
	logs := newEndLogs()
	b := setupLogged(t, logs)
	reg := metricsOf(t, b)
	b.mailbox.setHook(func(_ context.Context, s sent) (instruction.Reply, error, bool) {
		switch s.kind {
		case instruction.KindUpgradeRegions:
			return instruction.UpgradeRegionsReply{Replies: []instruction.UpgradeRegionReply{{RegionID: instruction.RegionID(region0)}}}, nil, true
		case instruction.KindCloseRegions:
			return instruction.CloseRegionsReply{Result: false, Error: new("stuck")}, nil, true
		}
		return nil, nil, false
	})
	require.Equal(t, procedure.StateFailed, b.wait(t, b.migrate(t)).State)
	end := <-logs.ch
	require.Equal(t, map[string]float64{"Manual/failed": 1}, endCounts(t, reg))
	require.Equal(t, "ERROR", end["level"])
	require.Equal(t, OutcomeFailed, end["outcome"])
	require.Contains(t, end["err"], "rollback failed")
	requireNoMoreEnds(t, b, logs)
}

// A migration interrupted by a leader change ends under the next term:
// counted and logged once, by it.
func TestMetricsOfAResumedMigration(t *testing.T) {
	t.Parallel()
	logs := newEndLogs()
	b := setupLogged(t, logs)
	reg := metricsOf(t, b)
	entered := make(chan struct{})
	block := nth(1, func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	b.mailbox.setHook(func(ctx context.Context, s sent) (instruction.Reply, error, bool) {
		if s.kind != instruction.KindFlushRegions {
			return nil, nil, false
		}
		return nil, block(ctx), s.term == 1
	})
	id := b.migrate(t)
	await(t, b, id, entered)
	b.stopTerm()
	require.Empty(t, logs.ch, "the first term saw no end")
	require.Empty(t, endCounts(t, reg))
	b.startTerm(t, 2)
	require.Equal(t, procedure.StateDone, b.wait(t, id).State)
	end := <-logs.ch
	require.Equal(t, OutcomeSucceeded, end["outcome"])
	require.Equal(t, map[string]float64{"Manual/succeeded": 1}, endCounts(t, reg))
	requireNoMoreEnds(t, b, logs)
}
