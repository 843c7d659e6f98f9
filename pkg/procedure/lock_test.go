package procedure

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func granted(r *lockRequest) bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

func TestLockTableFIFO(t *testing.T) {
	t.Parallel()
	lt := newLockTable()
	s1 := lt.enqueue([]LockKey{SharedLock("t")})
	x := lt.enqueue([]LockKey{ExclusiveLock("t")})
	s2 := lt.enqueue([]LockKey{SharedLock("t")})
	require.True(t, granted(s1))
	require.False(t, granted(x), "exclusive waits for the shared holder")
	require.False(t, granted(s2), "a shared request does not overtake a waiting exclusive one")

	lt.release(s1)
	require.True(t, granted(x))
	require.False(t, granted(s2))
	lt.release(x)
	require.True(t, granted(s2))
	lt.release(s2)
	require.Empty(t, lt.held)
	require.Equal(t, 0, lt.waiting())
}

func TestLockTableSharedHoldersRunTogether(t *testing.T) {
	t.Parallel()
	lt := newLockTable()
	a := lt.enqueue([]LockKey{SharedLock("catalog/greptime"), ExclusiveLock("table/1")})
	b := lt.enqueue([]LockKey{SharedLock("catalog/greptime"), ExclusiveLock("table/2")})
	c := lt.enqueue([]LockKey{ExclusiveLock("catalog/greptime")})
	require.True(t, granted(a))
	require.True(t, granted(b))
	require.False(t, granted(c))
	lt.release(a)
	require.False(t, granted(c))
	lt.release(b)
	require.True(t, granted(c))
	lt.release(c)
}

func TestLockTableWithdrawnWaiterUnblocksOthers(t *testing.T) {
	t.Parallel()
	lt := newLockTable()
	s1 := lt.enqueue([]LockKey{SharedLock("t")})
	x := lt.enqueue([]LockKey{ExclusiveLock("t")})
	s2 := lt.enqueue([]LockKey{SharedLock("t")})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, lt.wait(ctx, x), context.Canceled)
	require.True(t, granted(s2), "once the exclusive waiter leaves, the shared one joins the holder")
	lt.release(s1)
	lt.release(s2)
	require.Empty(t, lt.held)
}

func TestLockTableMultiKeyNoDeadlock(t *testing.T) {
	t.Parallel()
	lt := newLockTable()
	keys := [][]LockKey{
		{ExclusiveLock("a"), ExclusiveLock("b")},
		{ExclusiveLock("b"), ExclusiveLock("c")},
		{ExclusiveLock("a"), ExclusiveLock("c")},
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		holding = map[string]bool{}
	)
	for i := range 30 {
		wg.Go(func() {
			ks, err := normalizeLockKeys(keys[i%len(keys)])
			if err != nil {
				panic(err)
			}
			r := lt.enqueue(ks)
			if err := lt.wait(t.Context(), r); err != nil {
				panic(err)
			}
			mu.Lock()
			for _, k := range ks {
				if holding[k.Name] {
					panic("two exclusive holders of " + k.Name)
				}
				holding[k.Name] = true
			}
			mu.Unlock()
			time.Sleep(time.Microsecond)
			mu.Lock()
			for _, k := range ks {
				holding[k.Name] = false
			}
			mu.Unlock()
			lt.release(r)
		})
	}
	wg.Wait()
	require.Empty(t, lt.held)
}

func TestNormalizeLockKeys(t *testing.T) {
	t.Parallel()
	got, err := normalizeLockKeys([]LockKey{SharedLock("b"), SharedLock("a"), ExclusiveLock("b"), SharedLock("a")})
	require.NoError(t, err)
	require.Equal(t, []LockKey{SharedLock("a"), ExclusiveLock("b")}, got)
}

// TestLockConflictsSerialiseProcedures runs procedures on one table key:
// exclusive holders run alone, shared ones together, and waiters start in
// submission order (a later shared procedure does not overtake an earlier
// exclusive one).
func TestLockConflictsSerialiseProcedures(t *testing.T) {
	t.Parallel()
	h := newHarness()
	gates := map[string]chan struct{}{}
	entered := map[string]chan struct{}{}
	for _, l := range []string{"x1", "s1", "s2", "x2", "s3"} {
		gates[l] = make(chan struct{})
		entered[l] = make(chan struct{})
	}
	h.step = func(ctx context.Context, label string, step, attempt int) error {
		close(entered[label])
		select {
		case <-gates[label]:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m := startManager(t, fastOptions(), newStore(), h)
	shared := []LockKey{SharedLock("catalog/greptime"), SharedLock("table/42")}
	exclusive := []LockKey{SharedLock("catalog/greptime"), ExclusiveLock("table/42")}
	ids := map[string]ID{}
	ids["x1"] = submit(t, m, testArgs{Label: "x1", Steps: 1, Locks: exclusive})
	requireClosed(t, entered["x1"])
	for _, l := range []string{"s1", "s2"} {
		ids[l] = submit(t, m, testArgs{Label: l, Steps: 1, Locks: shared})
	}
	ids["x2"] = submit(t, m, testArgs{Label: "x2", Steps: 1, Locks: exclusive})
	ids["s3"] = submit(t, m, testArgs{Label: "s3", Steps: 1, Locks: shared})
	require.Equal(t, 4, m.Stats().WaitingForLocks, "everyone waits for the exclusive holder")

	close(gates["x1"])
	// s1 and s2 hold the shared lock together.
	requireClosed(t, entered["s1"])
	requireClosed(t, entered["s2"])
	require.Equal(t, 2, m.Stats().WaitingForLocks, "x2 waits for the readers, s3 waits behind x2")

	close(gates["s1"])
	close(gates["s2"])
	requireClosed(t, entered["x2"])
	require.Equal(t, 1, m.Stats().WaitingForLocks, "s3 waits for x2")
	close(gates["x2"])
	requireClosed(t, entered["s3"])
	close(gates["s3"])
	for _, id := range ids {
		require.Equal(t, StateDone, wait(t, m, id).State)
	}
	order := h.startOrder()
	require.Len(t, order, 5)
	require.Equal(t, "x1", order[0])
	require.ElementsMatch(t, []string{"s1", "s2"}, order[1:3], "the readers run together, in either order")
	require.Equal(t, []string{"x2", "s3"}, order[3:])
}
