package loadgen

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An interrupted load says so once, without a second "metasrv:" prefix when
// the target is metasrv itself.
func TestInterruptedLoadMessage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("interrupt signal received"))
	_, err := Run(ctx, Spec[struct{}]{
		Target: "metasrv", Clients: 1, Duration: time.Minute, OpTimeout: time.Second, Progress: io.Discard,
		NewWorker: func(int) struct{} { return struct{}{} },
		Op:        func(context.Context, struct{}) error { return nil },
	})
	require.Error(t, err)
	// As the CLI prints it.
	printed := "metasrv: " + err.Error()
	require.NotContains(t, printed, "metasrv: metasrv:")
	require.Contains(t, printed, "interrupt signal received")
	require.Contains(t, printed, "interrupted")
}

func TestRunCountsOpsAndErrors(t *testing.T) {
	t.Parallel()
	n := 0
	res, err := Run(context.Background(), Spec[*int]{
		Target: "t", Clients: 1, Duration: 200 * time.Millisecond, OpTimeout: time.Second, Progress: io.Discard,
		NewWorker: func(int) *int { return &n },
		Op: func(context.Context, *int) error {
			n++
			time.Sleep(time.Millisecond)
			if n%2 == 0 {
				return errors.New("even")
			}
			return nil
		},
	})
	require.NoError(t, err)
	require.Positive(t, res.Ops)
	require.Positive(t, res.Errors)
	require.Equal(t, "even", res.FirstError)
	require.LessOrEqual(t, res.P50, res.Max)
}

func TestLatencyStats(t *testing.T) {
	t.Parallel()
	med, p99, mx := LatencyStats([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	require.Equal(t, 2.0, med)
	require.Equal(t, 3.0, p99)
	require.Equal(t, 3.0, mx)
	med, p99, mx = LatencyStats(nil)
	require.Zero(t, med+p99+mx)
}
