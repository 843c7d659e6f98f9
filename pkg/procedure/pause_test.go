package procedure

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func TestPauseRefusesSubmitAndHoldsSteps(t *testing.T) {
	t.Parallel()
	h := newHarness()
	gate := make(chan struct{})
	entered := make(chan struct{})
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if label == "a" && step == 0 {
			close(entered)
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	store := newStore()
	m := startManager(t, fastOptions(), store, h)
	ctx := t.Context()
	id := submit(t, m, testArgs{Label: "a", Steps: 3})
	requireClosed(t, entered)

	require.NoError(t, m.Pause(ctx))
	paused, err := m.Paused(ctx)
	require.NoError(t, err)
	require.True(t, paused)
	// GreptimeDB's switch: __switches/pause_procedure with an empty value.
	sw, err := kv.Get(ctx, store, []byte("__switches/pause_procedure"))
	require.NoError(t, err)
	require.NotNil(t, sw)
	require.Empty(t, sw.Value)
	require.True(t, m.testSignals.PauseSwitched.WaitOrTimeout())
	require.True(t, m.Stats().Paused)
	_, err = m.Submit(ctx, testType, args(t, testArgs{Label: "b", Steps: 1}))
	require.ErrorIs(t, err, ErrPaused)

	// The step in flight finishes and is persisted; the next one waits.
	close(gate)
	require.Equal(t, stepRun{ID: id, Step: 0}, m.testSignals.StepExecuted.WaitOrTimeout())
	require.Equal(t, persisted{ID: id, State: StateRunning, Step: 1}, m.testSignals.Persisted.WaitOrTimeout())
	require.Equal(t, id, m.testSignals.Held.WaitOrTimeout())
	require.Equal(t, 0, h.effect("a", 1))
	m.testSignals.StepExecuted.RequireEmpty()
	info, err := m.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, StateRunning, info.State)

	require.NoError(t, m.Resume(ctx))
	require.Equal(t, StateDone, wait(t, m, id).State)
	paused, err = m.Paused(ctx)
	require.NoError(t, err)
	require.False(t, paused)
	sw, err = kv.Get(ctx, store, []byte("__switches/pause_procedure"))
	require.NoError(t, err)
	require.Nil(t, sw, "resume deletes the switch")
	require.Equal(t, StateDone, wait(t, m, submit(t, m, testArgs{Label: "b", Steps: 1})).State)
}

func TestPauseSurvivesLeaderChange(t *testing.T) {
	t.Parallel()
	store := newStore()
	a := New(fastOptions(), testLogger(t))
	require.NoError(t, a.RegisterLoader(testType, newHarness().loader))
	require.NoError(t, a.Start(t.Context(), store))
	require.NoError(t, a.Pause(t.Context()))
	a.Stop()
	_, err := a.Paused(t.Context())
	require.ErrorIs(t, err, ErrNotRunning)

	b := startManager(t, fastOptions(), store, newHarness())
	require.True(t, b.Stats().Paused)
	_, err = b.Submit(t.Context(), testType, args(t, testArgs{Steps: 1}))
	require.ErrorIs(t, err, ErrPaused)
	require.NoError(t, b.Resume(t.Context()))
	require.Equal(t, StateDone, wait(t, b, submit(t, b, testArgs{Label: "x", Steps: 1})).State)
}

func TestPauseSwitchWrittenByAnotherClientIsFollowed(t *testing.T) {
	t.Parallel()
	store := newStore()
	m := startManager(t, Options{PausePollInterval: time.Millisecond}, store, newHarness())
	// An operator writes the switch straight into the store.
	_, err := store.Put(t.Context(), putReq("__switches/pause_procedure", ""))
	require.NoError(t, err)
	require.True(t, m.testSignals.PauseSwitched.WaitOrTimeout())
	require.True(t, m.Stats().Paused)
}
