package failover

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/migration"
)

// failovers is metasrv_region_failovers_total by outcome.
func failovers(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "metasrv_region_failovers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// failing sets up datanode 1 leading two regions and silent for 30s, and
// the supervisor's metrics on a registry of their own.
func failing(t *testing.T) (*testBundle, *prometheus.Registry) {
	t.Helper()
	b := setup(t, time.Hour)
	reg := prometheus.NewRegistry()
	require.NoError(t, b.sup.RegisterMetrics(reg))
	b.heartbeats(map[uint64][]uint64{1: {greptimekey.RegionID(1024, 0), greptimekey.RegionID(1024, 1)}}, 5)
	b.clock.advance(30 * time.Second)
	return b, reg
}

func TestFailoversCountedBySubmission(t *testing.T) {
	t.Parallel()
	b, reg := failing(t)
	require.Equal(t, map[string]float64{OutcomeSubmitted: 0, OutcomeRefused: 0, OutcomeNoTarget: 0}, failovers(t, reg), "every outcome from the start")
	b.start(t)
	b.waitTicks(t, 2)
	b.sup.Stop()
	n := float64(len(b.migrations.tasks()))
	require.Positive(t, n)
	require.Equal(t, map[string]float64{OutcomeSubmitted: n, OutcomeRefused: 0, OutcomeNoTarget: 0}, failovers(t, reg), "one per region submitted")
}

func TestFailoversCountedWhenRefused(t *testing.T) {
	t.Parallel()
	b, reg := failing(t)
	b.migrations.err = migration.ErrMigrationRunning
	b.start(t)
	b.waitTicks(t, 2)
	b.sup.Stop()
	n := float64(len(b.migrations.tasks()))
	require.Positive(t, n)
	require.Equal(t, map[string]float64{OutcomeSubmitted: 0, OutcomeRefused: n, OutcomeNoTarget: 0}, failovers(t, reg))
}

// Datanode 1's regions have nowhere to go: the only other datanodes left
// no node info.
func TestFailoversCountedWithoutTarget(t *testing.T) {
	t.Parallel()
	b, reg := failing(t)
	for _, id := range []uint64{2, 3} {
		_, err := b.memory.DeleteRange(t.Context(), kv.DeleteRangeRequest{Key: greptimekey.NodeInfoKey(greptimekey.RoleDatanode, id)})
		require.NoError(t, err)
	}
	b.start(t)
	b.waitTicks(t, 2)
	b.sup.Stop()
	require.Empty(t, b.migrations.tasks())
	got := failovers(t, reg)
	require.Zero(t, got[OutcomeSubmitted])
	require.Zero(t, got[OutcomeRefused])
	require.GreaterOrEqual(t, got[OutcomeNoTarget], 4.0, "both regions, on each of at least two ticks")
	require.Zero(t, int(got[OutcomeNoTarget])%2, "both regions each time")
}
