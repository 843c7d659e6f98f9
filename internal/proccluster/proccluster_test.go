package proccluster

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSlotLifecycle(t *testing.T) {
	t.Parallel()
	s := &Slot{Name: "sleeper"}
	require.False(t, s.Running())
	require.NoError(t, s.WaitExit(context.Background(), time.Second), "an empty slot has nothing to wait for")
	require.NoError(t, s.Start(exec.Command("sleep", "60")))
	require.Error(t, s.Start(exec.Command("sleep", "60")), "the slot is taken")
	require.True(t, s.Running())
	require.NoError(t, s.Pause())
	require.True(t, s.Paused())
	require.NoError(t, s.Resume())
	require.False(t, s.Paused())
	require.NoError(t, s.Kill())
	require.False(t, s.Running())
	require.NoError(t, s.Crashed(), "a kill through the slot is no crash")
	require.ErrorContains(t, s.Pause(), "sleeper is not running")

	// Restarted, the process exits by itself: a crash.
	require.NoError(t, s.Start(exec.Command("sh", "-c", "exit 3")))
	<-s.Exited()
	require.ErrorContains(t, s.Crashed(), "sleeper exited by itself")
	s.Stop() // empty again: a no-op

	// WaitExit kills a process that outstays the timeout.
	require.NoError(t, s.Start(exec.Command("sleep", "60")))
	require.ErrorContains(t, s.WaitExit(context.Background(), 50*time.Millisecond), "did not exit")
	require.False(t, s.Running())
}

func TestDSNVia(t *testing.T) {
	t.Parallel()
	got, err := DSNVia("postgres://u:p@db:5432/x?host=other&sslmode=disable", "127.0.0.1:7000")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@127.0.0.1:7000/x?sslmode=disable", got)
	got, err = DSNVia("host=db port=5432 dbname=x", "127.0.0.1:7000")
	require.NoError(t, err)
	require.Equal(t, "host=db port=5432 dbname=x host=127.0.0.1 port=7000", got)
}

func TestUpstream(t *testing.T) {
	t.Parallel()
	network, addr, err := Upstream("postgres://u@db:5433/x")
	require.NoError(t, err)
	require.Equal(t, "tcp", network)
	require.Equal(t, "db:5433", addr)
	network, addr, err = Upstream("host=/tmp/pg port=5439 dbname=x")
	require.NoError(t, err)
	require.Equal(t, "unix", network)
	require.Equal(t, "/tmp/pg/.s.PGSQL.5439", addr)
	_, _, err = Upstream("postgres://u@h1:5432,h2:5432/x")
	require.ErrorContains(t, err, "one PostgreSQL host")
}
