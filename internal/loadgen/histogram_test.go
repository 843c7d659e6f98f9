package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1 << 20, 1<<40 + 12345, 1<<63 - 1, 1<<64 - 1} {
		b := bucketOf(v)
		require.Less(t, b, histBuckets, "value %d", v)
		require.GreaterOrEqual(t, upperOf(b), v, "value %d", v)
		if b > 0 {
			require.Less(t, upperOf(b-1), v, "value %d is in the bucket below", v)
		}
	}
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var a, b Histogram
	var all []time.Duration
	for i := range 100000 {
		// Log-normal-ish latencies from microseconds to a second.
		d := time.Duration(float64(time.Microsecond) * (1 + r.ExpFloat64()*r.ExpFloat64()*500))
		if i%1000 == 0 {
			d = time.Duration(r.Int64N(int64(time.Second)))
		}
		all = append(all, d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	require.Equal(t, uint64(len(all)), a.n)
	require.Equal(t, all[len(all)-1], a.max)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[max(0, int(q*float64(len(all)))-1)]
		got := a.Quantile(q)
		require.InEpsilon(t, float64(exact), float64(got), 0.01, "q=%v exact=%v got=%v", q, exact, got)
		require.GreaterOrEqual(t, got, exact, "q=%v", q)
	}
	var empty Histogram
	require.Zero(t, empty.Quantile(0.99))
}
