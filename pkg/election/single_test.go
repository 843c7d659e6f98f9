package election

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSingle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := NewNodeInfoSource("127.0.0.1:3002", "v0.1.0", "abc123", time.Now())
	s := NewSingle(src.Snapshot, slog.New(slog.NewTextHandler(io.Discard, nil)))

	ch, cancel := s.Subscribe()
	defer cancel()
	_, err := s.Leader(ctx)
	require.ErrorIs(t, err, ErrNoLeader)
	require.False(t, s.IsLeader())

	require.NoError(t, s.Start(ctx))
	require.NoError(t, s.Start(ctx))
	require.Equal(t, LeaderChange{Elected, 1}, receive(t, ch))
	require.True(t, s.IsLeader())
	leader, err := s.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:3002", leader.Addr)
	require.Equal(t, int64(1), leader.Term)

	cands, err := s.Candidates(ctx)
	require.NoError(t, err)
	require.Len(t, cands, 1)
	require.Equal(t, "v0.1.0", cands[0].Version)

	require.NoError(t, s.Resign(ctx))
	require.Equal(t, LeaderChange{StepDown, 1}, receive(t, ch))
	require.Equal(t, LeaderChange{Elected, 2}, receive(t, ch))
	require.Equal(t, int64(2), s.Term())

	s.Stop()
	s.Stop()
	require.Equal(t, LeaderChange{StepDown, 2}, receive(t, ch))
	requireClosed(t, ch)
	require.False(t, s.IsLeader())
	require.NoError(t, s.Resign(ctx))
}

func TestNodeInfoSource(t *testing.T) {
	t.Parallel()
	start := time.UnixMilli(1_700_000_000_000)
	src := NewNodeInfoSource("a:1", "v1", "c", start)
	info := src.Snapshot()
	require.Equal(t, "a:1", info.Addr)
	require.Equal(t, start.UnixMilli(), info.StartTimeMs)
	require.Positive(t, info.TotalCPUMillicores)
	require.Positive(t, info.MemoryUsageBytes)
	require.GreaterOrEqual(t, info.CPUUsageMillicores, int64(0))
}

func TestSingleRefusesStartAfterStop(t *testing.T) {
	t.Parallel()
	s := NewSingle(func() NodeInfo { return NodeInfo{Addr: "a"} }, slog.New(slog.DiscardHandler))
	s.Stop()
	require.EqualError(t, s.Start(context.Background()), "election: Start after Stop")
	require.Zero(t, s.TrustedTerm())
}
