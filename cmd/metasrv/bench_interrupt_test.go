package main

import (
	"bytes"
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
	_, err := runLoad(ctx, loadSpec{
		target: "metasrv", clients: 1, duration: time.Minute, opTimeout: time.Second, progress: io.Discard,
		newWorker: func(int) *benchWorker { return &benchWorker{} },
		op:        func(context.Context, *benchWorker) error { return nil },
	})
	require.Error(t, err)
	var stderr bytes.Buffer
	// As run prints it.
	printed := "metasrv: " + err.Error()
	stderr.WriteString(printed)
	require.NotContains(t, stderr.String(), "metasrv: metasrv:")
	require.Contains(t, printed, "interrupt signal received")
	require.Contains(t, printed, "interrupted")
}
