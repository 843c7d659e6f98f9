package region

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The tests cite GreptimeDB v1.1.4 src/meta-srv/src/failure_detector.rs by
// line; its last ones are Akka's AccrualFailureDetectorSpec.

// fixedTS stands for current_time_millis() in GreptimeDB's tests.
const fixedTS int64 = 1_700_000_000_000

// akka is the detector of GreptimeDB's Akka ports: threshold 8, 100ms
// minimum standard deviation, the given pause.
func akka(threshold float64, pause time.Duration, samples int) *PhiAccrualDetector {
	return newPhiAccrual(PhiAccrualOptions{
		Threshold: threshold, MinStdDeviation: 100 * time.Millisecond,
		AcceptableHeartbeatPause: pause, FirstHeartbeatEstimate: time.Second,
	}, samples)
}

func defaultPhi(t *testing.T) *PhiAccrualDetector {
	t.Helper()
	d, err := NewPhiAccrualDetector(DefaultPhiAccrualOptions())
	require.NoError(t, err)
	return d
}

func beats(d *PhiAccrualDetector, ts ...int64) {
	for _, t := range ts {
		d.Heartbeat(t)
	}
}

// test_is_available, lines 256-274.
func TestPhiAccrualIsAvailable(t *testing.T) {
	t.Parallel()
	d := defaultPhi(t)
	require.True(t, d.Available(fixedTS), "before the first heartbeat")
	d.Heartbeat(fixedTS)
	pause := DefaultAcceptableHeartbeatPause.Milliseconds()
	require.True(t, d.Available(fixedTS))
	require.True(t, d.Available(fixedTS+pause/2))
	require.False(t, d.Available(fixedTS+pause*2))
}

// test_last_heartbeat, lines 276-287.
func TestPhiAccrualLastHeartbeat(t *testing.T) {
	t.Parallel()
	d := defaultPhi(t)
	_, ok := d.LastHeartbeat()
	require.False(t, ok)
	d.Heartbeat(fixedTS)
	ts, ok := d.LastHeartbeat()
	require.True(t, ok)
	require.Equal(t, fixedTS, ts)
}

// test_phi, lines 289-309.
func TestPhiAccrualPhi(t *testing.T) {
	t.Parallel()
	d := defaultPhi(t)
	require.Zero(t, d.Phi(fixedTS))
	d.Heartbeat(fixedTS)
	pause := DefaultAcceptableHeartbeatPause.Milliseconds()
	require.Zero(t, d.Phi(fixedTS))
	require.Less(t, d.Phi(fixedTS+pause/2), d.Threshold())
	require.GreaterOrEqual(t, d.Phi(fixedTS+pause*2), d.Threshold())
}

// test_use_good_enough_cumulative_distribution_function, lines 314-333.
func TestPhiCumulativeDistributionIsGoodEnough(t *testing.T) {
	t.Parallel()
	cdf := func(p float64) float64 { return 1 - math.Pow(10, -p) }
	for _, c := range []struct {
		diff      int64
		want, tol float64
	}{
		{0, 0.5, 0.001}, {6, 0.7257, 0.001}, {15, 0.9332, 0.001}, {20, 0.97725, 0.001},
		{25, 0.99379, 0.001}, {35, 0.99977, 0.001}, {40, 0.99997, 0.0001},
	} {
		require.InDelta(t, c.want, cdf(phi(c.diff, 0, 10)), c.tol, "time diff %d", c.diff)
	}
	for x := int64(0); x < 39; x++ {
		require.Less(t, phi(x, 0, 10), phi(x+1, 0, 10), "phi grows with the time since the last heartbeat")
	}
	require.InDelta(t, 0.7475, cdf(phi(22, 20, 3)), 0.001)
}

// test_handle_outliers_without_losing_precision_or_hitting_exceptions,
// lines 335-339.
func TestPhiHandlesOutliers(t *testing.T) {
	t.Parallel()
	require.InDelta(t, 38.0, phi(10, 0, 1), 1.0)
	require.Zero(t, phi(-25, 0, 1))
}

// test_return_realistic_phi_values, lines 341-358, then the same points
// worked out by hand: y = (x - 1000) / 100, e = exp(-y (1.5976 + 0.070566
// y²)), phi = -log10(e / (1 + e)) above the mean, -log10(1 - 1/(1 + e))
// at or below it.
func TestPhiRealisticValues(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		diff           int64
		rounded, exact float64
	}{
		{0, 0.0, 0}, {500, 0.1, 2.1768922219645073e-08}, {1000, 0.3, math.Log10(2)},
		{1200, 1.6, 1.6428278854871123}, {1400, 4.7, 4.736694582705181},
		{1600, 10.8, 10.782600858295707}, {1700, 15.3, 15.368525622645256},
	} {
		p := phi(c.diff, 1000, 100)
		require.InDelta(t, c.rounded, p, 0.1, "time diff %d", c.diff)
		require.InDelta(t, c.exact, p, 1e-9, "time diff %d", c.diff)
	}
	require.Less(t, phi(1100, 1000, 500), phi(1100, 1000, 100), "a larger deviation lowers phi")
}

// test_return_phi_of_0_on_startup_when_no_heartbeats, lines 360-371.
func TestPhiIsZeroWithoutHeartbeats(t *testing.T) {
	t.Parallel()
	d := akka(8, 0, historySize)
	require.Zero(t, d.Phi(fixedTS))
	require.Zero(t, d.Phi(fixedTS+1))
}

// test_return_phi_based_on_guess_when_only_one_heartbeat, lines 373-386.
// Worked: the first heartbeat seeds 750 and 1250 (1000 ± 1000/4), so mean
// 1000 and standard deviation sqrt((750² + 1250²)/2 - 1000²) = 250.
func TestPhiGuessesFromTheFirstHeartbeat(t *testing.T) {
	t.Parallel()
	d := akka(8, 0, historySize)
	d.Heartbeat(0)
	require.InDelta(t, 1000.0, d.history.mean(), 1e-9)
	require.InDelta(t, 250.0, d.history.stdDeviation(), 1e-9)
	// GreptimeDB's asserts: phi(1000) - 0.3 < 0.2, phi(2000) - 4.5 < 0.3, phi(3000) > 15.
	require.Less(t, math.Abs(d.Phi(1000))-0.3, 0.2)
	require.Less(t, math.Abs(d.Phi(2000))-4.5, 0.3)
	require.Greater(t, d.Phi(3000), 15.0)
	// At y = 0, e = 1: phi = log10(2). At y = 4 and y = 8, by the formula.
	require.InDelta(t, math.Log10(2), d.Phi(1000), 1e-12)
	require.InDelta(t, 4.736694582705181, d.Phi(2000), 1e-9)
	require.InDelta(t, 21.241600212221336, d.Phi(3000), 1e-9)
}

// test_return_phi_using_first_interval_after_second_heartbeat, lines 388-401.
func TestPhiUsesTheFirstInterval(t *testing.T) {
	t.Parallel()
	d := akka(8, 0, historySize)
	d.Heartbeat(0)
	require.Positive(t, d.Phi(100))
	d.Heartbeat(200)
	require.Positive(t, d.Phi(300))
}

// test_is_available_after_a_series_of_successful_heartbeats, lines 403-418.
func TestPhiAvailableAfterHeartbeats(t *testing.T) {
	t.Parallel()
	d := akka(8, 0, historySize)
	beats(d, 0, 1000, 1100)
	require.True(t, d.Available(1200))
}

// test_is_not_available_if_heartbeat_are_missed, lines 420-434.
func TestPhiNotAvailableWhenHeartbeatsAreMissed(t *testing.T) {
	t.Parallel()
	d := akka(3, 0, historySize)
	beats(d, 0, 1000, 1100)
	require.True(t, d.Available(1200))
	require.False(t, d.Available(8200))
}

// test_is_available_if_it_starts_heartbeat_again_after_being_marked_dead_due_to_detection_of_failure,
// lines 436-473: 1000 regular intervals, a five-minute pause, then a short
// pause that makes it unavailable again.
func TestPhiAvailableAgainAfterBeingMarkedDead(t *testing.T) {
	t.Parallel()
	d := akka(8, 3*time.Second, historySize)
	var now int64
	for range 1000 {
		d.Heartbeat(now)
		now += 1000
	}
	now += 5 * 60 * 1000
	require.False(t, d.Available(now), "after the long pause")
	now += 100
	d.Heartbeat(now)
	now += 900
	require.True(t, d.Available(now))
	now += 100
	d.Heartbeat(now)
	now += 7000
	require.False(t, d.Available(now), "after the seven-second pause")
	now += 100
	d.Heartbeat(now)
	now += 900
	require.True(t, d.Available(now))
	now += 100
	d.Heartbeat(now)
	now += 900
	require.True(t, d.Available(now))
}

// test_accept_some_configured_missing_heartbeats, lines 475-491.
func TestPhiAcceptsConfiguredMissingHeartbeats(t *testing.T) {
	t.Parallel()
	d := akka(8, 3*time.Second, historySize)
	beats(d, 0, 1000, 2000, 3000)
	require.True(t, d.Available(7000))
	d.Heartbeat(8000)
	require.True(t, d.Available(9000))
}

// test_fail_after_configured_acceptable_missing_heartbeats, lines 493-511.
func TestPhiFailsAfterTheAcceptablePause(t *testing.T) {
	t.Parallel()
	d := akka(8, 3*time.Second, historySize)
	beats(d, 0, 1000, 2000, 3000, 4000, 5000)
	require.True(t, d.Available(5500))
	d.Heartbeat(6000)
	require.False(t, d.Available(11000))
}

// test_use_max_sample_size_heartbeats, lines 513-535.
func TestPhiUsesAtMostTheSampleSize(t *testing.T) {
	t.Parallel()
	d := akka(8, 0, 3)
	beats(d, 0, 100, 200, 300)
	phi1 := d.Phi(400)
	beats(d, 1000, 1500, 2000, 2500)
	require.Equal(t, phi1, d.Phi(3000), "the 100ms intervals are gone: the 500ms ones scale alike")
}

// test_heartbeat_history_calculate_correct_mean_and_variance, lines 537-545.
func TestHistoryMeanAndVariance(t *testing.T) {
	t.Parallel()
	h := heartbeatHistory{max: 20}
	for _, i := range []int64{100, 200, 125, 340, 130} {
		h.add(i)
	}
	require.InDelta(t, 179.0, h.mean(), 0.00001)
	require.InDelta(t, 7584.0, h.variance(), 0.00001)
}

// test_heartbeat_history_have_0_variance_for_one_sample, lines 547-552.
func TestHistoryOneSampleHasNoVariance(t *testing.T) {
	t.Parallel()
	h := heartbeatHistory{max: 600}
	h.add(1000)
	require.InDelta(t, 0.0, h.variance(), 0.00001)
}

// test_heartbeat_history_be_capped_by_the_specified_max_sample_size,
// lines 554-568.
func TestHistoryIsCapped(t *testing.T) {
	t.Parallel()
	h := heartbeatHistory{max: 3}
	beatsOf := func(is ...int64) {
		for _, i := range is {
			h.add(i)
		}
	}
	beatsOf(100, 110, 90)
	require.InDelta(t, 100.0, h.mean(), 0.00001)
	require.InDelta(t, 66.6666667, h.variance(), 0.00001)
	beatsOf(140)
	require.InDelta(t, 113.333333, h.mean(), 0.00001)
	require.InDelta(t, 422.222222, h.variance(), 0.00001)
	beatsOf(80)
	require.InDelta(t, 103.333333, h.mean(), 0.00001)
	require.InDelta(t, 688.88888889, h.variance(), 0.00001)
	require.Len(t, h.intervals, 3)
}

// With GreptimeDB's defaults, how long after its last heartbeat a node
// fails, worked from the formula (phi = 8 where the pause-shifted normal
// tail reaches 1e-8): 12307ms for a node seen once (mean 1000, deviation
// 250, shifted by 10s), 13523ms for one with a full history of 3s
// heartbeats (mean 3000, deviation 0 raised to 100ms).
func TestPhiDefaultDetectionTimes(t *testing.T) {
	t.Parallel()
	d := defaultPhi(t)
	d.Heartbeat(0)
	require.Less(t, d.Phi(12306), DefaultPhiThreshold)
	require.GreaterOrEqual(t, d.Phi(12307), DefaultPhiThreshold)

	d = defaultPhi(t)
	var last int64
	for i := range int64(historySize + 1) {
		last = i * 3000
		d.Heartbeat(last)
	}
	require.InDelta(t, 3000.0, d.history.mean(), 1e-9, "the seeds are gone")
	require.Less(t, d.Phi(last+13522), DefaultPhiThreshold)
	require.GreaterOrEqual(t, d.Phi(last+13523), DefaultPhiThreshold)
}

// A heartbeat older than the last is ignored (line 106), and one after the
// node was judged failed updates the last heartbeat without teaching the
// history the gap (line 110).
func TestPhiIgnoresStaleHeartbeatsAndFailedGaps(t *testing.T) {
	t.Parallel()
	d := akka(8, 0, historySize)
	beats(d, 0, 1000)
	n := len(d.history.intervals)
	d.Heartbeat(900)
	ts, _ := d.LastHeartbeat()
	require.Equal(t, int64(1000), ts)
	require.Len(t, d.history.intervals, n)
	d.Heartbeat(60_000)
	ts, _ = d.LastHeartbeat()
	require.Equal(t, int64(60_000), ts)
	require.Len(t, d.history.intervals, n, "the gap of a failed node is not learnt")
}

// Rounding can take the variance of nearly equal large intervals below
// zero; its root is NaN, and the minimum deviation must stand in for it as
// Rust's f64::max makes it do, or phi would be NaN and never reach the
// threshold.
func TestPhiNaNDeviationFallsBackToTheMinimum(t *testing.T) {
	t.Parallel()
	d := akka(8, 0, historySize)
	d.Heartbeat(0)
	d.history = heartbeatHistory{max: historySize}
	for range historySize - 1 {
		d.history.add(3_599_000)
	}
	d.history.add(3_599_001)
	require.Negative(t, d.history.variance(), "the case this test is about")
	p := d.Phi(3_600_000)
	require.False(t, math.IsNaN(p))
	require.Equal(t, phi(3_600_000, d.history.mean(), 100), p)
	require.False(t, d.Available(3_599_000+10_000))
}

// GreptimeDB holds the threshold as an f32 and compares phi with it.
func TestPhiThresholdIsAFloat32(t *testing.T) {
	t.Parallel()
	o := DefaultPhiAccrualOptions()
	o.Threshold = 8.1
	d, err := NewPhiAccrualDetector(o)
	require.NoError(t, err)
	require.Equal(t, float64(float32(8.1)), d.Threshold())
	require.NotEqual(t, 8.1, d.Threshold())
}

func TestPhiAccrualOptionsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultPhiAccrualOptions().Validate())
	zeroPause := DefaultPhiAccrualOptions()
	zeroPause.AcceptableHeartbeatPause = 0
	require.NoError(t, zeroPause.Validate())
	for _, c := range []struct {
		mutate func(*PhiAccrualOptions)
		want   string
	}{
		{func(o *PhiAccrualOptions) { o.Threshold = 0 }, "Threshold is 0: expected a number greater than 0"},
		{func(o *PhiAccrualOptions) { o.Threshold = math.NaN() }, "Threshold is NaN"},
		{func(o *PhiAccrualOptions) { o.Threshold = math.Inf(1) }, "Threshold is +Inf"},
		{func(o *PhiAccrualOptions) { o.MinStdDeviation = 0 }, "MinStdDeviation is 0s: expected whole milliseconds from 1ms to 1h0m0s"},
		{func(o *PhiAccrualOptions) { o.MinStdDeviation = 1500 * time.Microsecond }, "MinStdDeviation is 1.5ms"},
		{func(o *PhiAccrualOptions) { o.AcceptableHeartbeatPause = -time.Second }, "AcceptableHeartbeatPause is -1s: expected whole milliseconds from 0s to 1h0m0s"},
		{func(o *PhiAccrualOptions) { o.AcceptableHeartbeatPause = 2 * time.Hour }, "AcceptableHeartbeatPause is 2h0m0s"},
		{func(o *PhiAccrualOptions) { o.FirstHeartbeatEstimate = 0 }, "FirstHeartbeatEstimate is 0s"},
	} {
		o := DefaultPhiAccrualOptions()
		c.mutate(&o)
		_, err := NewPhiAccrualDetector(o)
		require.ErrorContains(t, err, c.want)
	}
}
