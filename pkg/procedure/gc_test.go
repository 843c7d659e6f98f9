package procedure

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGCRemovesOldFinishedProcedures(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	store := limitedStore()
	opts := smallOptions()
	opts.Now = clock.Now
	opts.FinishedRetention = time.Hour
	h := newHarness()
	block := make(chan struct{})
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		switch label {
		case "fail":
			return errIntentional
		case "running":
			select {
			case <-block:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	h.rollback = func(ctx context.Context, label string, attempt int) error {
		if label == "fail" {
			return errIntentional
		}
		return nil
	}
	m := startManager(t, opts, store, h)
	done := submit(t, m, testArgs{Label: "done", Steps: 2})
	failed := submit(t, m, testArgs{Label: "fail", Steps: 2, Blob: blob(3000)}) // keeps segmented data
	wait(t, m, done)
	require.Equal(t, StateFailed, wait(t, m, failed).State)
	require.NotEmpty(t, keysUnder(t, store, DefaultKeyPrefix+"data/"+string(failed)), "a failed procedure keeps its data")
	running := submit(t, m, testArgs{Label: "running", Steps: 1})

	clock.Advance(30 * time.Minute)
	recent := submit(t, m, testArgs{Label: "recent", Steps: 1})
	wait(t, m, recent)

	n, err := m.CollectGarbage(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "nothing is older than the retention yet")

	clock.Advance(31 * time.Minute)
	n, err = m.CollectGarbage(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for _, id := range []ID{done, failed} {
		_, err := m.Get(t.Context(), id)
		require.ErrorIs(t, err, ErrNotFound)
	}
	for _, id := range []ID{recent, running} {
		_, err := m.Get(t.Context(), id)
		require.NoError(t, err)
	}
	require.Empty(t, keysUnder(t, store, DefaultKeyPrefix+"data/"+string(failed)))
	close(block)
	wait(t, m, running)
}

func TestGCRunsPeriodically(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	opts := fastOptions()
	opts.Now = clock.Now
	opts.GCInterval = time.Millisecond
	m := startManager(t, opts, newStore(), newHarness())
	id := submit(t, m, testArgs{Label: "x", Steps: 1})
	wait(t, m, id)
	clock.Advance(2 * DefaultFinishedRetention)
	require.Equal(t, 1, m.testSignals.Collected.WaitOrTimeout())
	_, err := m.Get(t.Context(), id)
	require.ErrorIs(t, err, ErrNotFound)
}
