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

// stuckListener's Stop blocks until release is closed: leader work slower to
// stop than the shutdown's deadline.
type stuckListener struct {
	started chan struct{}
	release chan struct{}
}

func (s *stuckListener) Name() string { return "stuck" }

func (s *stuckListener) Start(context.Context, Term) error {
	close(s.started)
	return nil
}

func (s *stuckListener) Stop() { <-s.release }

// countingElector counts the leader look-ups the hint watcher makes.
type countingElector struct {
	*election.Single
	lookups atomic.Int64
}

func (c *countingElector) Leader(ctx context.Context) (election.Leader, error) {
	c.lookups.Add(1)
	return c.Single.Leader(ctx)
}

// A Stop that runs out of time still stops the leader-hint watcher (it
// would otherwise query the election every second for ever), and a second
// Stop finishes the job: every goroutine Start started has ended when it
// returns nil (the package's TestMain fails the run on any leftover).
func TestStopPastDeadlineStopsEverythingOnRetry(t *testing.T) {
	t.Parallel()
	const addr = "127.0.0.1:3002"
	el := &countingElector{Single: election.NewSingle(func() election.NodeInfo { return election.NodeInfo{Addr: addr} }, discard())}
	l := &stuckListener{started: make(chan struct{}), release: make(chan struct{})}
	m, err := New(Deps{
		Logger:    discard(),
		Store:     memkv.New(),
		Limits:    kv.Limits{MaxTxnOps: 8, MaxValueSize: 1024},
		Elector:   el,
		Addr:      func() string { return addr },
		Listeners: []Listener{l},
	})
	require.NoError(t, err)
	require.NoError(t, m.Start(context.Background()))
	<-l.started

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, m.Stop(expired), context.Canceled, "the listener is still stopping")
	select {
	case <-m.hintDone:
	default:
		t.Fatal("the leader-hint watcher still runs after Stop returned")
	}
	lookups := el.lookups.Load()

	close(l.release)
	require.NoError(t, m.Stop(context.Background()), "a second Stop waits for what the first left running")
	select {
	case <-m.watcherDone:
	default:
		t.Fatal("the leadership watcher still runs after Stop returned nil")
	}
	require.Equal(t, lookups, el.lookups.Load(), "no leader look-up after the first Stop")
	require.NoError(t, m.Stop(context.Background()), "a third call is a no-op")
}
