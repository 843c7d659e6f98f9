package procedure

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// TestLeaderChangeResumesFromLastPersistedStep: manager A runs a 3-step
// procedure whose second step blocks; A steps down mid-step; manager B starts
// on the same store, resumes from the last persisted step and completes the
// procedure, every step taking effect exactly once.
func TestLeaderChangeResumesFromLastPersistedStep(t *testing.T) {
	t.Parallel()
	store := newStore()
	h := newHarness()
	entered := make(chan struct{})
	gateOpen := make(chan struct{})
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step != 1 {
			return nil
		}
		select {
		case <-gateOpen:
			return nil
		default:
		}
		close(entered)
		<-ctx.Done() // A is stopped while the step blocks: no side effect.
		return ctx.Err()
	}
	a := New(fastOptions(), testLogger(t))
	require.NoError(t, a.RegisterLoader(testType, h.loader))
	require.NoError(t, a.Start(t.Context(), store))
	id := submit(t, a, testArgs{Label: "p", Steps: 3})
	requireClosed(t, entered)
	a.Stop()

	info, err := newRecordStore(store, a.opts).get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, StateRunning, info.rec.State)
	require.Equal(t, uint64(1), info.rec.Step, "step 1 was persisted before A stopped")
	_, err = a.Submit(t.Context(), testType, args(t, testArgs{Steps: 1}))
	require.ErrorIs(t, err, ErrNotRunning)

	close(gateOpen)
	b := startManager(t, fastOptions(), store, h)
	done := wait(t, b, id)
	require.Equal(t, StateDone, done.State)
	require.Equal(t, uint64(3), done.Step)
	for step := range 3 {
		require.Equal(t, 1, h.effect("p", step), "step %d took effect exactly once", step)
	}
	require.Equal(t, 0, h.rollbacksOf("p"))
}

func TestLeaderChangeReplaysUnpersistedStep(t *testing.T) {
	t.Parallel()
	store := newStore()
	h := newHarness()
	entered := make(chan struct{})
	stopA := make(chan struct{})
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step == 1 && !gateClosed(stopA) {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	a := New(fastOptions(), testLogger(t))
	require.NoError(t, a.RegisterLoader(testType, h.loader))
	require.NoError(t, a.Start(t.Context(), store))
	// Steps are not persisted: B starts over from step 0.
	id := submit(t, a, testArgs{Label: "np", Steps: 3, NoPersist: true})
	requireClosed(t, entered)
	a.Stop()
	close(stopA)

	b := startManager(t, fastOptions(), store, h)
	require.Equal(t, StateDone, wait(t, b, id).State)
	require.Equal(t, 2, h.effect("np", 0), "the unpersisted step ran again on the new leader")
	require.Equal(t, 1, h.effect("np", 1))
	require.Equal(t, 1, h.effect("np", 2))
}

func TestLeaderChangeResumesRollback(t *testing.T) {
	t.Parallel()
	store := newStore()
	h := newHarness()
	entered := make(chan struct{})
	aStopped := make(chan struct{})
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step == 1 {
			return errors.New("invalid table schema")
		}
		return nil
	}
	h.rollback = func(ctx context.Context, label string, attempt int) error {
		if gateClosed(aStopped) {
			return nil
		}
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	a := New(fastOptions(), testLogger(t))
	require.NoError(t, a.RegisterLoader(testType, h.loader))
	require.NoError(t, a.Start(t.Context(), store))
	id := submit(t, a, testArgs{Label: "rb", Steps: 3})
	requireClosed(t, entered)
	a.Stop()
	close(aStopped)

	b := startManager(t, fastOptions(), store, h)
	info := wait(t, b, id)
	require.Equal(t, StateRolledBack, info.State)
	require.Contains(t, info.Error, "invalid table schema")
	require.Equal(t, 1, h.rollbacksOf("rb"))
}

func TestResumeInSubmissionOrder(t *testing.T) {
	t.Parallel()
	store := newStore()
	clock := newTestClock()
	h := newHarness()
	blockA := make(chan struct{})
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if !gateClosed(blockA) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	opts := fastOptions()
	opts.Now = clock.Now
	a := New(opts, testLogger(t))
	require.NoError(t, a.RegisterLoader(testType, h.loader))
	require.NoError(t, a.Start(t.Context(), store))
	lock := []LockKey{ExclusiveLock("table/7")}
	var labels []string
	for _, l := range []string{"first", "second", "third", "fourth"} {
		submit(t, a, testArgs{Label: l, Steps: 1, Locks: lock})
		labels = append(labels, l)
		clock.Advance(time.Second)
	}
	a.Stop()
	close(blockA)

	h2 := newHarness()
	b := startManager(t, opts, store, h2)
	list, _, err := b.List(t.Context(), ListFilter{})
	require.NoError(t, err)
	for _, p := range list {
		require.Equal(t, StateDone, wait(t, b, p.ID).State)
	}
	require.Equal(t, labels, h2.startOrder(), "conflicting procedures resume in submission order")
}

func TestUnloadableProceduresAreLeftAlone(t *testing.T) {
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
	id := submit(t, a, testArgs{Label: "u", Steps: 2})
	a.Stop()
	before := keysUnder(t, store, DefaultKeyPrefix)

	b := New(fastOptions(), testLogger(t)) // no loader for the type
	require.NoError(t, b.Start(t.Context(), store))
	defer b.Stop()
	require.Equal(t, 1, b.Stats().Unloadable)
	info, err := b.Get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, StateRunning, info.State)
	require.Equal(t, before, keysUnder(t, store, DefaultKeyPrefix))
}

// fencedStore refuses every write once fenced, as pgkv's fenced view does
// for a deposed leader.
func fencedStore() (*faultyStore, func()) {
	s := &faultyStore{Backend: newStore()}
	return s, func() { s.setWriteErr(&election.FencedError{Expected: 1, Actual: 2}) }
}

func TestFencedWriteStopsWithoutRollback(t *testing.T) {
	t.Parallel()
	store, fence := fencedStore()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step == 1 {
			fence() // a new leader was elected while the step ran
		}
		return nil
	}
	m := startManager(t, fastOptions(), store, h)
	id := submit(t, m, testArgs{Label: "f", Steps: 3})
	require.Equal(t, driveEnd{ID: id, Fenced: true}, m.testSignals.DriveEnded.WaitOrTimeout())
	require.EqualValues(t, 1, m.Stats().Fenced)
	require.Empty(t, m.Stats().Active)
	require.Equal(t, 0, h.rollbacksOf("f"))
	require.Equal(t, 0, h.effect("f", 2), "no step after the fenced write")
	info, err := m.Get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, StateRunning, info.State)
	require.Equal(t, uint64(1), info.Step, "the stored state is the last one written before fencing")

	_, err = m.Submit(t.Context(), testType, args(t, testArgs{Steps: 1}))
	require.ErrorIs(t, err, election.ErrFenced, "a deposed leader cannot acknowledge a procedure")
}

func TestFencedStepStopsWithoutRollback(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		// The procedure's own fenced metadata write failed.
		return Retryable(&election.FencedError{Expected: 3, Actual: 4})
	}
	m := startManager(t, fastOptions(), newStore(), h)
	id := submit(t, m, testArgs{Label: "fs", Steps: 2})
	require.Equal(t, driveEnd{ID: id, Fenced: true}, m.testSignals.DriveEnded.WaitOrTimeout())
	require.EqualValues(t, 1, m.Stats().Fenced)
	require.Equal(t, 1, h.attemptsOf("fs", 0), "a fencing error is never retried")
	require.Equal(t, 0, h.rollbacksOf("fs"))
}

func TestConflictingWriterStopsProcedure(t *testing.T) {
	t.Parallel()
	store := newStore()
	h := newHarness()
	var id ID
	ready := make(chan struct{}) // closed once id is set
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		<-ready
		if step == 1 {
			// Someone else rewrote the record (a second leader without fencing).
			key := []byte(DefaultKeyPrefix + "meta/" + string(id))
			e, err := kv.Get(ctx, store, key)
			if err != nil || e == nil {
				return errors.New("record missing")
			}
			rec, err := decodeRecord(key, e.Value)
			if err != nil {
				return err
			}
			rec.Step = 99
			raw, err := encodeRecord(rec)
			if err != nil {
				return err
			}
			_, err = store.Put(ctx, kv.PutRequest{Key: key, Value: raw})
			return err
		}
		return nil
	}
	m := startManager(t, fastOptions(), store, h)
	id = submit(t, m, testArgs{Label: "c", Steps: 3})
	close(ready)
	require.Equal(t, driveEnd{ID: id, Fenced: true}, m.testSignals.DriveEnded.WaitOrTimeout())
	require.EqualValues(t, 1, m.Stats().Fenced)
	info, err := m.Get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, uint64(99), info.Step, "the other writer's record is left as it wrote it")
	require.Equal(t, 0, h.rollbacksOf("c"))
}

// unreadableStore fails every read, as an unreachable database does.
type unreadableStore struct{ kv.Backend }

func (unreadableStore) Range(context.Context, kv.RangeRequest) (kv.RangeResponse, error) {
	return kv.RangeResponse{}, kv.ErrUnavailable
}

func TestStartFailsWhenStoreFails(t *testing.T) {
	t.Parallel()
	m := New(fastOptions(), testLogger(t))
	err := m.Start(t.Context(), unreadableStore{newStore()})
	require.ErrorIs(t, err, kv.ErrUnavailable)
	require.False(t, m.Stats().Running)
	m.Stop()
	require.NoError(t, m.Start(t.Context(), newStore()), "a failed Start can be retried")
	m.Stop()
}

func TestCorruptRecordIsCountedNotResumed(t *testing.T) {
	t.Parallel()
	store := newStore()
	_, err := store.Put(t.Context(), putReq(DefaultKeyPrefix+"meta/bad", `{"format":1,`))
	require.NoError(t, err)
	_, err = store.Put(t.Context(), putReq(DefaultKeyPrefix+"meta/future", `{"format":2,"id":"future","type":"t","state":"running"}`))
	require.NoError(t, err)
	m := startManager(t, fastOptions(), store, newHarness())
	require.Equal(t, 2, m.Stats().Unloadable)
	_, err = m.Get(t.Context(), "future")
	require.ErrorIs(t, err, ErrCorruptState)
	require.ErrorContains(t, err, "format 2")
}
