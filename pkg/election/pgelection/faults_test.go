package pgelection

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/pkg/election"
)

// gate blocks the statements of a wrapped session while closed, ignoring
// their deadlines, as a frozen process would.
type gate struct {
	mu      sync.Mutex
	closed  bool
	open    chan struct{}
	blocked chan struct{} // closed when a statement first blocks
	once    sync.Once
}

func newGate() *gate {
	return &gate{open: make(chan struct{}), blocked: make(chan struct{})}
}

func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.open)
	}
}

func (g *gate) pass() {
	g.mu.Lock()
	closed, open := g.closed, g.open
	g.mu.Unlock()
	if closed {
		g.once.Do(func() { close(g.blocked) })
		<-open
	}
}

type gatedSession struct {
	sessionConn
	g *gate
}

func (s gatedSession) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	s.g.pass()
	return s.sessionConn.QueryRow(ctx, sql, args...)
}

func TestBlockedLeaderIsReplaced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	g := newGate()
	t.Cleanup(g.release)
	old := startNode(t, opts, pool, "b1", func(c *Config) {
		c.wrapSession = func(s sessionConn) sessionConn { return gatedSession{s, g} }
	})
	require.Equal(t, int64(1), old.testSignals.GainedLeadership.WaitOrTimeout())
	other := startNode(t, opts, pool, "b2")

	// The leader's next renewal hangs; its session goes idle.
	g.shut()
	select {
	case <-g.blocked:
	case <-time.After(wait):
		t.Fatal("the leader never renewed")
	}
	require.Equal(t, int64(1), old.testSignals.LostLeadership.WaitOrTimeout())
	require.False(t, old.IsLeader())
	// PostgreSQL ends the idle session, frees the lock, and b2 takes over.
	require.Equal(t, int64(2), other.testSignals.GainedLeadership.WaitOrTimeout())
	require.False(t, old.IsLeader(), "two leaders")

	// The stuck leader resumes: its write of term 1 is fenced, and it stays
	// a follower.
	require.ErrorIs(t, fencedWrite(ctx, pool, old, 1), election.ErrFenced)
	g.release()
	require.ErrorIs(t, fencedWrite(ctx, pool, old, 1), election.ErrFenced)
	require.True(t, other.IsLeader())
	require.NoError(t, fencedWrite(ctx, pool, other, 2))
	events, _ := old.rec.snapshot()
	require.Equal(t, []election.LeaderChange{{Kind: election.Elected, Term: 1}, {Kind: election.StepDown, Term: 1}}, events)
}

func TestPartitionedLeaderStepsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)

	u, err := url.Parse(opts.StoreAddrs[0])
	require.NoError(t, err)
	proxy := newBlackhole(t, u.Host)
	u.Host = proxy.addr()
	viaProxy := opts
	viaProxy.StoreAddrs = []string{u.String()}

	old := startNode(t, viaProxy, pool, "x1")
	require.Equal(t, int64(1), old.testSignals.GainedLeadership.WaitOrTimeout())
	others := []*node{startNode(t, opts, pool, "x2"), startNode(t, opts, pool, "x3")}

	proxy.partition()
	winner, won := awaitElectedAfter(t, 1, others...)
	require.Equal(t, int64(2), won)
	// The old leader stopped trusting itself before the lock could pass on.
	require.False(t, old.IsLeader(), "two leaders after the partition")
	require.Equal(t, int64(1), old.testSignals.LostLeadership.WaitOrTimeout())
	old.awaitChange(t, election.LeaderChange{Kind: election.StepDown, Term: 1})
	require.ErrorIs(t, fencedWrite(ctx, pool, old, 1), election.ErrFenced)
	require.NoError(t, fencedWrite(ctx, pool, winner, 2))
}

// TestStreamUnderChurn: the package's TestMain checks that the electors'
// goroutines end (pgtest.MainCheckLeaks).
func TestStreamUnderChurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := testOptions(pgtest.NewDatabase(t))
	opts.Election.CampaignInterval = 20 * time.Millisecond
	migrate(t, opts)
	pool := newPool(t, opts.StoreAddrs[0])

	var nodes []*node
	for _, name := range names("c", 3) {
		n := newNode(t, opts, pool, name)
		require.NoError(t, n.Start(ctx))
		nodes = append(nodes, n)
	}

	const rounds = 30
	var lastTerm int64
	for range rounds {
		leader := awaitLeader(t, nodes...)
		term := leader.Term()
		require.Greater(t, term, lastTerm)
		lastTerm = term
		require.NoError(t, leader.Resign(ctx))
	}
	awaitLeader(t, nodes...)
	for _, n := range nodes {
		n.Stop()
	}

	// Every term was won by exactly one node and every node's stream is
	// complete, ordered and closed.
	won := map[int64]string{}
	for _, n := range nodes {
		n.awaitStreamClosed(t)
		events, closed := n.rec.snapshot()
		require.True(t, closed)
		requireWellFormed(t, n.name, events)
		require.Zero(t, len(events)%2, "%s: a term without StepDown: %v", n.name, events)
		for _, c := range events {
			if c.Kind == election.Elected {
				require.NotContains(t, won, c.Term, "term %d won twice", c.Term)
				won[c.Term] = n.name
			}
		}
		require.EqualValues(t, len(events), n.Changes())
	}
	for term := int64(1); term <= lastTerm+1; term++ {
		require.Contains(t, won, term, "term %d: no Elected received", term)
	}
}
