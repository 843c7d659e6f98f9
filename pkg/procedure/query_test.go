package procedure

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestListNewestFirstWithFilterAndPages(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	opts := fastOptions()
	opts.Now = clock.Now
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if label == "bad" {
			return errIntentional
		}
		return nil
	}
	m := startManager(t, opts, newStore(), h)
	var ids []ID
	for _, l := range []string{"a", "b", "bad", "c", "d"} {
		id := submit(t, m, testArgs{Label: l, Steps: 1})
		wait(t, m, id)
		ids = append(ids, id)
		clock.Advance(time.Second)
	}

	all, next, err := m.List(t.Context(), ListFilter{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Equal(t, []ID{ids[4], ids[3], ids[2], ids[1], ids[0]}, idsOf(all))

	var paged []ID
	token := ""
	for {
		page, next, err := m.List(t.Context(), ListFilter{Limit: 2, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		paged = append(paged, idsOf(page)...)
		if next == "" {
			break
		}
		token = next
	}
	require.Equal(t, idsOf(all), paged)

	rolled, _, err := m.List(t.Context(), ListFilter{States: []State{StateRolledBack}})
	require.NoError(t, err)
	require.Equal(t, []ID{ids[2]}, idsOf(rolled))
	none, _, err := m.List(t.Context(), ListFilter{Type: "other"})
	require.NoError(t, err)
	require.Empty(t, none)

	_, _, err = m.List(t.Context(), ListFilter{PageToken: "garbage"})
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, _, err = m.List(t.Context(), ListFilter{States: []State{"sleeping"}})
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func idsOf(infos []Info) []ID {
	out := make([]ID, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.ID)
	}
	return out
}

func TestWaitTimesOutWithLastInfo(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		<-ctx.Done()
		return ctx.Err()
	}
	m := startManager(t, fastOptions(), newStore(), h)
	id := submit(t, m, testArgs{Label: "slow", Steps: 2})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	info, err := m.Wait(ctx, id)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, id, info.ID)
	require.Equal(t, StateRunning, info.State)
}

// A procedure this manager does not drive (left by a previous leader, not
// resumable here) is polled in the store until another writer finishes it.
func TestWaitPollsProceduresNotDrivenHere(t *testing.T) {
	t.Parallel()
	store := newStore()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		<-ctx.Done()
		return ctx.Err()
	}
	a := New(fastOptions(), testLogger(t))
	require.NoError(t, a.RegisterLoader(testType, h.loader))
	require.NoError(t, a.Start(t.Context(), store))
	id := submit(t, a, testArgs{Label: "w", Steps: 1})
	a.Stop()

	b := New(Options{WaitPollInterval: time.Millisecond}, testLogger(t)) // cannot load the type
	require.NoError(t, b.Start(t.Context(), store))
	defer b.Stop()
	result := make(chan Info, 1)
	go func() {
		info, _ := b.Wait(t.Context(), id)
		result <- info
	}()
	// Finish it behind b's back, as a node able to run it would.
	rs := newRecordStore(store, b.opts)
	st, err := rs.get(t.Context(), id)
	require.NoError(t, err)
	next := *st.rec
	next.State, next.Step = StateDone, 1
	_, err = rs.write(t.Context(), st, &next, dropData, nil)
	require.NoError(t, err)
	select {
	case info := <-result:
		require.Equal(t, StateDone, info.State)
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not notice the procedure finished")
	}
}
