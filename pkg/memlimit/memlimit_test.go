package memlimit

import (
	"math"
	"runtime/debug"
	"testing"

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

// The tests below change the process's memory limit: they do not run in
// parallel with each other.

func TestStartFollowsTheLiveHeapAndStopRestores(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	g, err := New(Options{Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	require.NoError(t, g.Start(t.Context()))
	set := g.Current()
	require.Positive(t, set)
	require.GreaterOrEqual(t, set, int64(DefaultMinHeadroom))
	require.Equal(t, set, debug.SetMemoryLimit(-1))
	g.Stop()
	g.Stop()
	require.Equal(t, before, debug.SetMemoryLimit(-1), "Stop restores the limit found at Start")
	require.Zero(t, g.Current())
}

func TestOperatorsSettingWins(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	for _, env := range []map[string]string{{"GOMEMLIMIT": "1GiB"}, {"GOGC": "off"}, {"GOGC": "100"}} {
		g, err := New(Options{Getenv: func(k string) string { return env[k] }})
		require.NoError(t, err)
		require.NoError(t, g.Start(t.Context()))
		require.Zero(t, g.Current())
		require.Equal(t, before, debug.SetMemoryLimit(-1))
		g.Stop()
	}
}

func TestNewRefusesNegatives(t *testing.T) {
	t.Parallel()
	_, err := New(Options{MinHeadroom: -1})
	require.Error(t, err)
}
