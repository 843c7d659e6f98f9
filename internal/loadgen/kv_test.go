package loadgen_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	require.Zero(t, loadgen.Median(nil))
	require.InDelta(t, 2.0, loadgen.Median([]float64{3, 1, 2}), 1e-9)
	require.InDelta(t, 2.5, loadgen.Median([]float64{4, 1, 3, 2}), 1e-9)
}

// TestMedianRatio pins the median of the rounds' ratios, each figure on its
// own, so one round the machine slowed for moves it less than a mean would.
func TestMedianRatio(t *testing.T) {
	t.Parallel()
	require.Nil(t, loadgen.MedianRatio(nil))
	one := loadgen.Ratio{OpsPerSec: 1.2, P99: 0.8}
	require.Equal(t, &one, loadgen.MedianRatio([]loadgen.Ratio{one}))
	// Odd: the middle value of each figure, which need not come from the
	// same round.
	require.Equal(t, &loadgen.Ratio{OpsPerSec: 1.0, P99: 0.9}, loadgen.MedianRatio([]loadgen.Ratio{
		{OpsPerSec: 0.4, P99: 0.9}, {OpsPerSec: 1.0, P99: 2.5}, {OpsPerSec: 1.1, P99: 0.7},
	}))
	// Even: the mean of the two middle values.
	got := loadgen.MedianRatio([]loadgen.Ratio{
		{OpsPerSec: 0.4, P99: 1.0}, {OpsPerSec: 1.0, P99: 3.0}, {OpsPerSec: 1.2, P99: 0.5}, {OpsPerSec: 9, P99: 2.0},
	})
	require.InDelta(t, 1.1, got.OpsPerSec, 1e-12)
	require.InDelta(t, 1.5, got.P99, 1e-12)
}
