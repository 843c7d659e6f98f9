package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An operator's command gives one attempt half its deadline, so a large
// delete is not cut at the client's quick-failover default; short deadlines
// keep the client's default.
func TestCtlAttemptTimeout(t *testing.T) {
	t.Parallel()
	require.Equal(t, 5*time.Second, ctlAttemptTimeout(10*time.Second))
	require.Equal(t, time.Second, ctlAttemptTimeout(2*time.Second))
	require.Zero(t, ctlAttemptTimeout(time.Second))
}
