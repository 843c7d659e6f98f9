package procedure

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

func TestSubmitRunsToDone(t *testing.T) {
	t.Parallel()
	h := newHarness()
	store := newStore()
	m := startManager(t, fastOptions(), store, h)
	id := submit(t, m, testArgs{Label: "a", Steps: 3})
	require.Len(t, string(id), 36, "ids are canonical UUIDs")

	info := wait(t, m, id)
	require.Equal(t, StateDone, info.State)
	require.Equal(t, uint64(3), info.Step)
	require.JSONEq(t, `{"label":"a"}`, string(info.Output))
	require.Empty(t, info.Error)
	for step := range 3 {
		require.Equal(t, 1, h.effect("a", step), "step %d", step)
	}

	got, err := m.Get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, info, got)
	require.Equal(t, []string{DefaultKeyPrefix + "meta/" + string(id)}, keysUnder(t, store, DefaultKeyPrefix),
		"a done procedure keeps only its record")
	require.Equal(t, uint64(1), m.Stats().Finished[StateDone])
}

func TestSubmitRefusesBadRequests(t *testing.T) {
	t.Parallel()
	store := newStore()
	m := startManager(t, fastOptions(), store, newHarness())

	_, err := m.Submit(t.Context(), "no_such_type", []byte(`{}`))
	require.ErrorIs(t, err, ErrUnknownType)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.ErrorContains(t, err, `"no_such_type"`)

	_, err = m.Submit(t.Context(), testType, []byte(`{"steps":0}`))
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.ErrorContains(t, err, "steps must be > 0")

	_, err = m.Submit(t.Context(), testType, []byte(`not json`))
	require.ErrorIs(t, err, ErrInvalidArgument)

	_, err = m.Submit(t.Context(), testType, args(t, testArgs{Steps: 1, Locks: []LockKey{{Name: ""}}}))
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.ErrorContains(t, err, "empty name")

	_, err = m.Get(t.Context(), "missing")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = m.Get(t.Context(), "a/b")
	require.ErrorIs(t, err, ErrInvalidArgument)

	require.Empty(t, keysUnder(t, store, DefaultKeyPrefix), "a refused submit writes nothing")
}

func TestRegisterLoader(t *testing.T) {
	t.Parallel()
	h := newHarness()
	m := New(fastOptions(), testLogger(t))
	require.NoError(t, m.RegisterLoader(testType, h.loader))
	require.ErrorContains(t, m.RegisterLoader(testType, h.loader), "already registered")
	require.ErrorIs(t, m.RegisterLoader("", h.loader), ErrInvalidArgument)
	require.NoError(t, m.Start(t.Context(), newStore()))
	defer m.Stop()
	require.ErrorIs(t, m.RegisterLoader("other", h.loader), ErrAlreadyRunning)
}

func TestRetriesThenRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step == 1 {
			return Retryable(errors.New("region server busy"))
		}
		return nil
	}
	m := startManager(t, Options{RetryDelay: time.Millisecond, MaxRetryTimes: 3}, newStore(), h)
	id := submit(t, m, testArgs{Label: "r", Steps: 3})
	info := wait(t, m, id)
	require.Equal(t, StateRolledBack, info.State)
	require.Equal(t, 4, h.attemptsOf("r", 1), "first try plus max_retry_times retries")
	require.Equal(t, 1, h.rollbacksOf("r"))
	require.Equal(t, 0, h.effect("r", 1))
	require.Equal(t, 0, h.effect("r", 2))
	require.Contains(t, info.Error, "region server busy")
	require.Contains(t, info.Error, "failed 4 times")
	require.Equal(t, uint64(1), info.Step, "the last persisted step")
}

func TestRetryableErrorThenSuccess(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step == 0 && attempt < 2 {
			return Retryable(errors.New("transient"))
		}
		return nil
	}
	m := startManager(t, fastOptions(), newStore(), h)
	info := wait(t, m, submit(t, m, testArgs{Label: "t", Steps: 2}))
	require.Equal(t, StateDone, info.State)
	require.Equal(t, 3, h.attemptsOf("t", 0))
	require.Equal(t, 0, h.rollbacksOf("t"))
}

func TestNonRetryableErrorRollsBackAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step == 2 {
			return errors.New("table already exists")
		}
		return nil
	}
	m := startManager(t, fastOptions(), newStore(), h)
	info := wait(t, m, submit(t, m, testArgs{Label: "n", Steps: 3}))
	require.Equal(t, StateRolledBack, info.State)
	require.Equal(t, 1, h.attemptsOf("n", 2))
	require.Equal(t, 1, h.rollbacksOf("n"))
	require.Contains(t, info.Error, "step 2: table already exists")
}

func TestPanickingStepRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		panic("boom")
	}
	m := startManager(t, fastOptions(), newStore(), h)
	info := wait(t, m, submit(t, m, testArgs{Label: "p", Steps: 1}))
	require.Equal(t, StateRolledBack, info.State)
	require.Contains(t, info.Error, "panicked: boom")
}

func TestFailingRollbackMarksFailed(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if step == 1 {
			return errors.New("bad input")
		}
		return nil
	}
	rollbackAttempts := 0
	h.rollback = func(ctx context.Context, label string, attempt int) error {
		rollbackAttempts++
		return Retryable(errors.New("datanode unreachable"))
	}
	store := newStore()
	m := startManager(t, fastOptions(), store, h)
	id := submit(t, m, testArgs{Label: "f", Steps: 3})
	info := wait(t, m, id)
	require.Equal(t, StateFailed, info.State)
	require.Equal(t, 4, rollbackAttempts)
	require.Contains(t, info.Error, "bad input")
	require.Contains(t, info.Error, "rollback failed after 4 attempts: datanode unreachable")
	// A failed procedure keeps its state for an operator.
	st, err := newRecordStore(store, m.opts).get(t.Context(), id)
	require.NoError(t, err)
	data, err := newRecordStore(store, m.opts).readData(t.Context(), st.rec)
	require.NoError(t, err)
	require.JSONEq(t, `{"label":"f","steps":3,"done":1}`, string(data))
	require.Equal(t, uint64(1), m.Stats().Finished[StateFailed])
}

func TestMaxRunningProcedures(t *testing.T) {
	t.Parallel()
	h := newHarness()
	gate := make(chan struct{})
	started := make(chan string, 4)
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		started <- label
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	store := newStore()
	m := startManager(t, Options{MaxRunningProcedures: 2}, store, h)
	a := submit(t, m, testArgs{Label: "a", Steps: 1})
	b := submit(t, m, testArgs{Label: "b", Steps: 1})
	<-started
	<-started

	_, err := m.Submit(t.Context(), testType, args(t, testArgs{Label: "c", Steps: 1}))
	require.ErrorIs(t, err, ErrTooManyProcedures)
	require.ErrorContains(t, err, "max_running_procedures is 2")
	require.Len(t, keysUnder(t, store, DefaultKeyPrefix+"meta/"), 2, "a refused submit persists nothing")
	require.Equal(t, 2, m.Stats().Active[StateRunning])

	close(gate)
	require.Equal(t, StateDone, wait(t, m, a).State)
	require.Equal(t, StateDone, wait(t, m, b).State)
	require.Equal(t, StateDone, wait(t, m, submit(t, m, testArgs{Label: "c", Steps: 1})).State)
}

func TestStartStopLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness()
	store := newStore()
	m := New(fastOptions(), testLogger(t))
	require.NoError(t, m.RegisterLoader(testType, h.loader))

	_, err := m.Submit(t.Context(), testType, args(t, testArgs{Steps: 1}))
	require.ErrorIs(t, err, ErrNotRunning, "stopped before the first Start")
	m.Stop() // stopping a stopped manager is a no-op

	require.NoError(t, m.Start(t.Context(), store))
	require.ErrorIs(t, m.Start(t.Context(), store), ErrAlreadyRunning)
	require.True(t, m.Stats().Running)
	m.Stop()
	m.Stop()
	require.False(t, m.Stats().Running)
	_, err = m.Submit(t.Context(), testType, args(t, testArgs{Steps: 1}))
	require.ErrorIs(t, err, ErrNotRunning)
	_, err = m.Get(t.Context(), "x")
	require.ErrorIs(t, err, ErrNotRunning)

	// A later term on the same manager.
	require.NoError(t, m.Start(t.Context(), store))
	require.Equal(t, StateDone, wait(t, m, submit(t, m, testArgs{Label: "x", Steps: 2})).State)
	m.Stop()
}

func TestTermContextEndStopsProcedures(t *testing.T) {
	t.Parallel()
	h := newHarness()
	entered := make(chan struct{})
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	m := New(fastOptions(), testLogger(t))
	m.testSignals.Init(t)
	require.NoError(t, m.RegisterLoader(testType, h.loader))
	term, endTerm := context.WithCancel(t.Context())
	require.NoError(t, m.Start(term, newStore()))
	id := submit(t, m, testArgs{Label: "a", Steps: 2})
	<-entered
	endTerm()
	require.Equal(t, driveEnd{ID: id}, m.testSignals.DriveEnded.WaitOrTimeout(), "abandoned, left as stored")
	require.Empty(t, m.Stats().Active)
	m.Stop()
}

func TestStopReleasesLockWaiters(t *testing.T) {
	t.Parallel()
	h := newHarness()
	entered := make(chan struct{}, 1)
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	m := New(fastOptions(), testLogger(t))
	require.NoError(t, m.RegisterLoader(testType, h.loader))
	require.NoError(t, m.Start(t.Context(), newStore()))
	lock := []LockKey{ExclusiveLock("table/1")}
	submit(t, m, testArgs{Label: "holder", Steps: 1, Locks: lock})
	<-entered
	submit(t, m, testArgs{Label: "waiter", Steps: 1, Locks: lock})
	require.Equal(t, 1, m.Stats().WaitingForLocks)
	m.Stop() // goleak in TestMain checks that both goroutines ended
}

func TestPersistRetriesTransientStoreErrors(t *testing.T) {
	t.Parallel()
	h := newHarness()
	failures := 3
	store := &faultyStore{Backend: newStore()}
	store.txnErr = func(req kv.TxnRequest) error {
		// Fail the writes after the initial one (the step persists).
		if len(req.Compare) == 1 && len(req.Compare[0].Target) > 0 && failures > 0 {
			failures--
			return kv.ErrUnavailable
		}
		return nil
	}
	m := startManager(t, fastOptions(), store, h)
	info := wait(t, m, submit(t, m, testArgs{Label: "u", Steps: 3}))
	require.Equal(t, StateDone, info.State)
	for step := range 3 {
		require.Equal(t, 1, h.effect("u", step))
	}
}

func TestSubmitFailsWhenInitialWriteFails(t *testing.T) {
	t.Parallel()
	store := &faultyStore{Backend: newStore()}
	store.setWriteErr(kv.ErrUnavailable)
	m := startManager(t, fastOptions(), store, newHarness())
	_, err := m.Submit(t.Context(), testType, args(t, testArgs{Steps: 1}))
	require.ErrorIs(t, err, kv.ErrUnavailable)
	require.Empty(t, m.Stats().Active, "the slot is given back")
}

type codedErr struct{ code uint32 }

func (e codedErr) Error() string { return fmt.Sprintf("coded failure %d", e.code) }
func (e codedErr) Code() uint32  { return e.code }

// The code of the error that rolled a procedure back is kept beside its text,
// so a submitter can answer with it (GreptimeDB's status codes for DDL).
func TestRollbackKeepsErrorCode(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		if label == "coded" {
			return fmt.Errorf("prepare: %w", codedErr{code: 4000})
		}
		return nil
	}
	m := startManager(t, fastOptions(), newStore(), h)
	info := wait(t, m, submit(t, m, testArgs{Label: "coded", Steps: 2}))
	require.Equal(t, StateRolledBack, info.State)
	require.Equal(t, uint32(4000), info.ErrorCode)
	got, err := m.Get(t.Context(), info.ID)
	require.NoError(t, err)
	require.Equal(t, uint32(4000), got.ErrorCode, "the code is persisted, not only in memory")

	plain := wait(t, m, submit(t, m, testArgs{Label: "plain", Steps: 1}))
	require.Equal(t, StateDone, plain.State)
	require.Zero(t, plain.ErrorCode)
}
