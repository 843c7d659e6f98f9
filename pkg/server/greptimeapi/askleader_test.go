package greptimeapi

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// fakeElector records no leader for its first noLeader reads, then addr;
// while gate is set, a read waits for it.
type fakeElector struct {
	Elector
	noLeader int64
	addr     string
	reads    atomic.Int64
	gate     chan struct{}
}

func (e *fakeElector) Leader(ctx context.Context) (election.Leader, error) {
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return election.Leader{}, ctx.Err()
		}
	}
	if e.reads.Add(1) <= e.noLeader {
		return election.Leader{}, election.ErrNoLeader
	}
	return election.Leader{Addr: e.addr}, nil
}

type followerCore struct{ Core }

func (followerCore) HeaderInfo() metasrv.HeaderInfo { return metasrv.HeaderInfo{NodeAddr: "self:3002"} }

func TestAskLeaderWaitsForAnElection(t *testing.T) {
	t.Parallel()
	el := &fakeElector{noLeader: 3, addr: "new:3002"}
	s := &heartbeatService{core: followerCore{}, leaders: &leaderLookup{elector: el}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := s.leaderAddr(ctx)
	require.NoError(t, err)
	require.Equal(t, "new:3002", addr, "answered once elected, not refused at once")
	require.Equal(t, int64(4), el.reads.Load())
}

func TestAskLeaderGivesUpBeforeTheCallersDeadline(t *testing.T) {
	t.Parallel()
	el := &fakeElector{noLeader: 1 << 62}
	s := &heartbeatService{core: followerCore{}, leaders: &leaderLookup{elector: el}}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	_, err := s.leaderAddr(ctx)
	require.ErrorIs(t, err, election.ErrNoLeader)
	require.NoError(t, ctx.Err(), "answered while the caller still listens")
}

func TestConcurrentAsksShareOneElectionRead(t *testing.T) {
	t.Parallel()
	el := &fakeElector{addr: "leader:3002", gate: make(chan struct{})}
	l := &leaderLookup{elector: el}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			addr, err := l.get(context.Background())
			require.NoError(t, err)
			require.Equal(t, "leader:3002", addr)
		})
	}
	close(el.gate)
	wg.Wait()
	// One read answers every caller waiting on it; a straggler scheduled
	// after the answer went stale reads again. Without sharing: 50.
	require.Less(t, el.reads.Load(), int64(10))
}
