package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLimit(t *testing.T) {
	t.Parallel()
	o := Options{MinHeadroom: 64 << 20, HeadroomRatio: 0.3}
	require.EqualValues(t, 64<<20, o.Limit(0))
	require.EqualValues(t, 10<<20+64<<20, o.Limit(10<<20), "a small heap gets the minimum headroom")
	require.EqualValues(t, 1300<<20, o.Limit(1000<<20), "a large one 30% of itself")
	require.EqualValues(t, int64(math.MaxInt64), o.Limit(math.MaxUint64))
}

func TestGCPercent(t *testing.T) {
	t.Parallel()
	o := Options{GCPacing: 250 * time.Millisecond, MaxGCHeadroom: 32 << 20}
	require.Equal(t, 100, o.GCPercent(8<<20, 0), "idle: the runtime's default")
	require.Equal(t, 100, o.GCPercent(8<<20, 16<<20), "4 MiB in 250ms is less than the live heap")
	require.Equal(t, 200, o.GCPercent(8<<20, 64<<20), "16 MiB in 250ms on an 8 MiB heap")
	require.Equal(t, 400, o.GCPercent(8<<20, 1<<30), "capped at 32 MiB of headroom")
	require.Equal(t, 100, o.GCPercent(1<<30, 1<<30), "a large heap: the default")
	require.Equal(t, maxGCPercent, o.GCPercent(0, 1<<30), "a heap of nothing is capped, not divided by")
}

// The tests below change the process's memory limit: they do not run in
// parallel with each other.

func TestStartFollowsTheLiveHeapAndStopRestores(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	// A GOGC of the process's own, to see it restored.
	orig := debug.SetGCPercent(150)
	defer debug.SetGCPercent(orig)
	g, err := New(Options{Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	require.NoError(t, g.Start(t.Context()))
	set := g.Current()
	require.Positive(t, set)
	require.GreaterOrEqual(t, set, int64(DefaultMinHeadroom))
	require.Equal(t, set, debug.SetMemoryLimit(-1))
	// Nothing measured yet: the runtime's default.
	gc := g.CurrentGCPercent()
	require.Equal(t, 100, gc)
	require.Equal(t, gc, debug.SetGCPercent(gc), "the runtime runs with the GOGC the governor set")
	g.Stop()
	g.Stop()
	require.Equal(t, before, debug.SetMemoryLimit(-1), "Stop restores the limit found at Start")
	require.Equal(t, 150, debug.SetGCPercent(orig), "Stop restores the GOGC found at Start")
	require.Zero(t, g.Current())
	require.Zero(t, g.CurrentGCPercent())
}

func TestOperatorsSettingWins(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	orig := debug.SetGCPercent(150)
	defer debug.SetGCPercent(orig)
	for _, env := range []map[string]string{{"GOMEMLIMIT": "1GiB"}, {"GOGC": "off"}, {"GOGC": "100"}} {
		g, err := New(Options{Getenv: func(k string) string { return env[k] }})
		require.NoError(t, err)
		require.NoError(t, g.Start(t.Context()))
		require.Zero(t, g.Current())
		require.Zero(t, g.CurrentGCPercent())
		require.Equal(t, before, debug.SetMemoryLimit(-1))
		require.Equal(t, 150, debug.SetGCPercent(150), "GOGC left alone")
		g.Stop()
	}
}

func TestNewRefusesNegatives(t *testing.T) {
	t.Parallel()
	_, err := New(Options{MinHeadroom: -1})
	require.Error(t, err)
	_, err = New(Options{MaxGCHeadroom: -1})
	require.ErrorContains(t, err, "MaxGCHeadroom")
	_, err = New(Options{GCPacing: -time.Second})
	require.ErrorContains(t, err, "GCPacing")
}

// sink keeps the test's allocations from being optimised away.
var sink []byte

func TestGCPercentFollowsTheAllocationRate(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	// No tick during the test: the rate is measured when the test says.
	g, err := New(Options{Interval: time.Hour, Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	require.NoError(t, g.Start(t.Context()))
	defer g.Stop()
	require.Equal(t, 100, g.CurrentGCPercent())

	// 64 MiB allocated in far less than an hour's interval: the rate is
	// high, and this test binary's live heap small.
	for range 64 << 10 {
		sink = make([]byte, 1<<10)
	}
	g.measureRate()
	g.apply()
	busy := g.CurrentGCPercent()
	require.Greater(t, busy, 100)
	require.Equal(t, busy, debug.SetGCPercent(busy), "the runtime runs with the GOGC the governor set")

	// An hour with nothing allocated: back to the default.
	g.mu.Lock()
	g.at = g.at.Add(-time.Hour)
	g.mu.Unlock()
	g.measureRate()
	g.apply()
	require.Equal(t, 100, g.CurrentGCPercent())
	require.Equal(t, 100, debug.SetGCPercent(100))
}
