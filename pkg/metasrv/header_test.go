package metasrv

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
)

// revocable is an election whose trust can be withdrawn without a StepDown:
// a leader frozen past its lease, resumed before its elector noticed.
type revocable struct {
	*election.Single
	distrust atomic.Bool
}

func (r *revocable) TrustedTerm() int64 {
	if r.distrust.Load() {
		return 0
	}
	return r.Single.TrustedTerm()
}

func TestHeaderAndLeaderHealthFollowTheTrustWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const addr = "127.0.0.1:3002"
	el := &revocable{Single: election.NewSingle(func() election.NodeInfo { return election.NodeInfo{Addr: addr} }, discard())}
	m, err := New(Deps{
		Logger:  discard(),
		Store:   memkv.New(),
		Limits:  kv.Limits{MaxTxnOps: 8, MaxValueSize: 1024},
		Elector: el,
		Addr:    func() string { return addr },
	})
	require.NoError(t, err)
	m.signals = newTestSignals(t)
	require.NoError(t, m.Start(ctx))
	t.Cleanup(func() { require.NoError(t, m.Stop(ctx)) })
	waitTransition(t, m, LeaderReady)

	h := m.HeaderInfo()
	require.Equal(t, addr, h.LeaderAddr)
	require.Equal(t, el.Term(), h.Term)
	require.NotZero(t, h.Term)
	require.True(t, m.ServingLeader())

	// The trust window lapses; the node still records LeaderReady and the
	// elector still reports its term, but nothing answered now may claim it.
	el.distrust.Store(true)
	require.Equal(t, LeaderReady, m.State())
	require.NotZero(t, el.Term())
	h = m.HeaderInfo()
	require.Zero(t, h.Term, "a header answered outside the trust window carries no term")
	require.Empty(t, h.LeaderAddr, "nor names this node as the leader")
	require.Equal(t, addr, h.NodeAddr)
	require.False(t, m.ServingLeader())

	el.distrust.Store(false)
	require.Equal(t, el.Term(), m.HeaderInfo().Term)
	require.True(t, m.ServingLeader())
}
