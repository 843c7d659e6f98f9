package region

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// t0 is the term's start on the tests' clock.
var t0 = time.UnixMilli(1_800_000_000_000)

func startedDetector(t *testing.T, term int64) *FailureDetector {
	t.Helper()
	d, err := NewFailureDetector(FailureDetectorOptions{PhiAccrual: DefaultPhiAccrualOptions(), Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background(), metasrv.Term{ID: term}))
	t.Cleanup(d.Stop)
	return d
}

func ms(n int64) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func TestFailureDetectorIsTermScoped(t *testing.T) {
	t.Parallel()
	d, err := NewFailureDetector(FailureDetectorOptions{PhiAccrual: DefaultPhiAccrualOptions()})
	require.NoError(t, err)
	require.Equal(t, "region_failure_detector", d.Name())
	d.Heartbeat(1, 1, 1, time.Now())
	require.Zero(t, d.Len(), "no term: heartbeats are dropped")
	require.ErrorIs(t, d.Register(1, []DetectingRegion{{1, 1}}, time.Now()), ErrNotDetecting)
	d.Stop() // before Start

	require.Error(t, d.Start(context.Background(), metasrv.Term{ID: 0}))
	require.NoError(t, d.Start(context.Background(), metasrv.Term{ID: 3}))
	require.Equal(t, int64(3), d.Term())
	d.Heartbeat(3, 1, 1, time.Now())
	d.Heartbeat(2, 1, 2, time.Now())
	require.True(t, d.Contains(1, 1))
	require.False(t, d.Contains(1, 2), "a heartbeat of an earlier term is dropped")
	err = d.Register(2, []DetectingRegion{{1, 3}}, time.Now())
	require.ErrorIs(t, err, ErrNotDetecting)
	require.EqualError(t, err, "region: the failure detector does not run this term: cannot register 1 regions in term 2 (running: 3)")
	require.ErrorIs(t, d.Deregister(2, []DetectingRegion{{1, 1}}), ErrNotDetecting)
	require.True(t, d.Contains(1, 1))

	require.NoError(t, d.Start(context.Background(), metasrv.Term{ID: 4}))
	require.Zero(t, d.Len(), "a new term starts with no detector")
	d.Heartbeat(4, 1, 1, time.Now())
	d.Stop()
	require.Zero(t, d.Len())
	require.Zero(t, d.Term())
	d.Stop()
}

func TestFailureDetectorOptionsAreValidated(t *testing.T) {
	t.Parallel()
	_, err := NewFailureDetector(FailureDetectorOptions{})
	require.ErrorContains(t, err, "PhiAccrualOptions.Threshold is 0")
}

// supervisor.rs test_default_failure_detector_container and
// test_reset_region_failure_detector, with the registration rules of
// maybe_init_region_failure_detector.
func TestFailureDetectorRegisterResetDeregister(t *testing.T) {
	t.Parallel()
	d := startedDetector(t, 1)
	r := DetectingRegion{DatanodeID: 2, RegionID: RegionID(1, 1)}

	d.Heartbeat(1, r.DatanodeID, r.RegionID, ms(1_000))
	require.NoError(t, d.Register(1, []DetectingRegion{r}, ms(30_000)))
	require.Equal(t, int64(1_000), lastOf(t, d, r), "register leaves a watched pair alone")

	require.NoError(t, d.Reset(1, []DetectingRegion{r}, ms(30_000)))
	require.Equal(t, int64(30_000), lastOf(t, d, r))

	other := DetectingRegion{DatanodeID: 3, RegionID: RegionID(1, 1)}
	require.NoError(t, d.Reset(1, []DetectingRegion{other}, ms(30_000)))
	require.Equal(t, int64(30_000), lastOf(t, d, other), "reset watches a pair not watched yet")
	require.NoError(t, d.Register(1, []DetectingRegion{{4, 9}}, ms(31_000)))
	require.Equal(t, int64(31_000), lastOf(t, d, DetectingRegion{4, 9}))
	require.Equal(t, 3, d.Len())

	require.NoError(t, d.Deregister(1, []DetectingRegion{r, {DatanodeID: 9, RegionID: 9}}))
	require.False(t, d.Contains(r.DatanodeID, r.RegionID))
	require.Equal(t, 2, d.Len())
}

func lastOf(t *testing.T, d *FailureDetector, r DetectingRegion) int64 {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	fd, ok := d.detectors[r]
	require.True(t, ok)
	ts, ok := fd.LastHeartbeat()
	require.True(t, ok)
	return ts
}

// A datanode that stops heartbeating fails with its regions, and only them,
// once phi reaches the threshold; with GreptimeDB's defaults and 3s
// heartbeats that is 13523ms after the last one (TestPhiDefaultDetectionTimes).
func TestFailureDetectorFailed(t *testing.T) {
	t.Parallel()
	d := startedDetector(t, 7)
	var last int64
	for i := range int64(historySize + 1) {
		last = i * 3000
		d.Heartbeats(7, 1, []uint64{11, 12}, ms(last))
		d.Heartbeats(7, 2, []uint64{21}, ms(last))
	}
	d.Heartbeats(7, 2, []uint64{21}, ms(last+3000))
	require.Empty(t, d.Failed(ms(last+13_522)))

	failed := d.Failed(ms(last + 13_523))
	require.Len(t, failed, 2)
	require.Equal(t, []DetectingRegion{{1, 11}, {1, 12}}, []DetectingRegion{
		{failed[0].DatanodeID, failed[0].RegionID}, {failed[1].DatanodeID, failed[1].RegionID},
	}, "by datanode, then region")
	require.GreaterOrEqual(t, failed[0].Phi, DefaultPhiThreshold)
	require.True(t, d.Contains(1, 11), "failed pairs stay watched until the supervisor acts")

	phis := d.Phi(ms(last + 13_523))
	require.Len(t, phis, 2)
	require.GreaterOrEqual(t, phis[1], DefaultPhiThreshold)
	require.Less(t, phis[2], DefaultPhiThreshold)
}

// Phi per datanode is the highest of its regions: a region registered long
// ago without a heartbeat since outweighs one heartbeating.
func TestFailureDetectorPhiIsTheMaxOfTheDatanodesRegions(t *testing.T) {
	t.Parallel()
	d := startedDetector(t, 1)
	require.NoError(t, d.Register(1, []DetectingRegion{{1, 1}}, ms(0)))
	d.Heartbeat(1, 1, 2, ms(0))
	d.Heartbeat(1, 1, 2, ms(11_000))
	at := ms(12_000)
	d.mu.Lock()
	want := d.detectors[DetectingRegion{1, 1}].Phi(12_000)
	d.mu.Unlock()
	require.Greater(t, want, 0.0)
	require.Equal(t, map[uint64]float64{1: want}, d.Phi(at))
}

// gauges gathers reg's gauges by name, then by their datanode_id label
// ("" without one).
func gauges(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		byLabel := map[string]float64{}
		for _, m := range mf.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				label = l.GetValue()
			}
			byLabel[label] = m.GetGauge().GetValue()
		}
		out[mf.GetName()] = byLabel
	}
	return out
}

func TestFailureDetectorMetrics(t *testing.T) {
	t.Parallel()
	d := startedDetector(t, 1)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, d.RegisterMetrics(reg))
	require.Equal(t, map[string]map[string]float64{
		"metasrv_region_failure_detectors": {"": 0},
	}, gauges(t, reg))

	// The scrape reads the detector's clock, t0: a heartbeat at t0 gives 0,
	// one registered 20s before t0 is far past the threshold.
	d.Heartbeats(1, 5, []uint64{1, 2}, t0)
	require.NoError(t, d.Register(1, []DetectingRegion{{6, 1}}, ms(-20_000)))
	got := gauges(t, reg)
	require.Equal(t, map[string]float64{"": 3}, got["metasrv_region_failure_detectors"])
	phis := got["metasrv_region_failure_detector_phi"]
	require.Len(t, phis, 2)
	require.Equal(t, 0.0, phis["5"])
	require.False(t, math.Signbit(phis["5"]), "0, not -0")
	require.True(t, math.IsInf(phis["6"], 1))

	d.Stop()
	require.Equal(t, map[string]map[string]float64{
		"metasrv_region_failure_detectors": {"": 0},
	}, gauges(t, reg), "a datanode leaves the output with its detectors")
}
