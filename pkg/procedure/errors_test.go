package procedure

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

func TestRetryable(t *testing.T) {
	t.Parallel()
	require.NoError(t, Retryable(nil))
	base := errors.New("busy")
	err := fmt.Errorf("create region: %w", Retryable(base))
	require.True(t, IsRetryable(err))
	require.ErrorIs(t, err, base)
	require.False(t, IsRetryable(base))
	require.True(t, isFenced(fmt.Errorf("persist: %w", &election.FencedError{Expected: 1, Actual: 2})))
	require.True(t, isFenced(ErrConflict))
	require.False(t, isFenced(base))
}

func TestStartRefusesImpossibleOptions(t *testing.T) {
	t.Parallel()
	m := New(Options{MaxTxnOps: 1}, testLogger(t))
	require.ErrorContains(t, m.Start(t.Context(), newStore()), "max_txn_ops must be at least 2")
	m = New(Options{MaxMetadataValueSize: 100}, testLogger(t))
	require.ErrorContains(t, m.Start(t.Context(), newStore()), "max_metadata_value_size must be at least 1KiB")
}

func TestLongErrorsAreTruncated(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.step = func(_ context.Context, label string, step, attempt int) error {
		return errors.New(strings.Repeat("x", 10_000))
	}
	m := startManager(t, smallOptions(), limitedStore(), h)
	info := wait(t, m, submit(t, m, testArgs{Label: "long", Steps: 1}))
	require.Equal(t, StateRolledBack, info.State)
	require.Less(t, len(info.Error), 4200)
	require.True(t, strings.HasSuffix(info.Error, "(truncated)"))
}
