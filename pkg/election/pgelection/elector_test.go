package pgelection

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/pkg/election"
)

func TestOneLeaderAmongThree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	var nodes []*node
	for _, name := range names("n", 3) {
		nodes = append(nodes, startNode(t, opts, pool, name))
	}
	leader := awaitLeader(t, nodes...)
	term := leader.Term()
	require.Positive(t, term)
	leader.awaitChange(t, election.LeaderChange{Kind: election.Elected, Term: term})

	// The term was recorded before Elected went out: every node reads it.
	for _, n := range nodes {
		l, err := n.Leader(ctx)
		require.NoError(t, err)
		require.Equal(t, leader.name+":3002", l.Addr, "%s disagrees on the leader", n.name)
		require.Equal(t, term, l.Term, "%s disagrees on the term", n.name)
		if n != leader {
			require.False(t, n.IsLeader())
			require.Zero(t, n.Term())
		}
	}
	l, err := nodes[0].Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, leader.name+":3002", l.Info.Addr)
	require.Equal(t, "test", l.Info.Version)
	require.False(t, l.ElectedAt.IsZero())

	cands, err := nodes[0].Candidates(ctx)
	require.NoError(t, err)
	require.Len(t, cands, 3)
	for i, c := range cands {
		require.Equal(t, nodes[i].name+":3002", c.Addr)
		require.Equal(t, "abcdef", c.GitCommit)
		require.Positive(t, c.TotalCPUMillicores)
	}

	// A stopped node withdraws its candidacy; a stopped leader resigns.
	leader.Stop()
	_, won := awaitElectedAfter(t, term, nodes...)
	require.Equal(t, term+1, won)
	cands, err = nodes[0].Candidates(ctx)
	if leader == nodes[0] {
		cands, err = nodes[1].Candidates(ctx)
	}
	require.NoError(t, err)
	require.Len(t, cands, 2)
}

func TestLeaderSessionTerminated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	var nodes []*node
	for _, name := range names("t", 3) {
		nodes = append(nodes, startNode(t, opts, pool, name))
	}
	old := awaitLeader(t, nodes...)
	term := old.Term()
	require.NoError(t, fencedWrite(ctx, pool, old, term))

	terminate(t, pool, old.name)
	old.awaitChange(t, election.LeaderChange{Kind: election.StepDown, Term: term})
	winner, won := awaitElectedAfter(t, term, nodes...)
	require.Greater(t, won, term)

	err := fencedWrite(ctx, pool, old, term)
	require.ErrorIs(t, err, election.ErrFenced)
	var fe *election.FencedError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, term, fe.Expected)

	require.True(t, winner.IsLeader(), "elected, so leading until its trust window ends")
	require.NoError(t, fencedWrite(ctx, pool, winner, won))
	for _, n := range nodes {
		events, _ := n.rec.snapshot()
		requireWellFormed(t, n.name, events)
	}
}

func TestFencedWriteSeesNewerTerm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	n := startNode(t, opts, pool, "f1")
	require.Equal(t, int64(1), n.testSignals.GainedLeadership.WaitOrTimeout())
	require.True(t, n.IsLeader())

	// Someone else moved the term on while n still trusts its lease: the
	// database wins, the write is refused and n steps down at once.
	_, err := pool.Exec(ctx, `UPDATE metakv_election SET term = term + 1 WHERE lock_id = $1`, opts.MetaElectionLockID)
	require.NoError(t, err)
	err = fencedWrite(ctx, pool, n, 1)
	var fe *election.FencedError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, election.FencedError{Expected: 1, Actual: 2}, *fe)
	require.False(t, n.IsLeader())
	require.Equal(t, int64(1), n.testSignals.LostLeadership.WaitOrTimeout())
	// n still held the lock: it reconnects and wins again, with a new term.
	require.Equal(t, int64(3), n.testSignals.TermBumped.WaitUntil(func(term int64) bool { return term > 1 }))
	require.Equal(t, int64(3), n.testSignals.GainedLeadership.WaitOrTimeout())
	n.awaitChange(t, election.LeaderChange{Kind: election.Elected, Term: 3})
	events, _ := n.rec.snapshot()
	require.Equal(t, []election.LeaderChange{{Kind: election.Elected, Term: 1}, {Kind: election.StepDown, Term: 1}, {Kind: election.Elected, Term: 3}}, events)
}

func TestTermBumpWaitsForFencedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	a := startNode(t, opts, pool, "w1")
	require.Equal(t, int64(1), a.testSignals.GainedLeadership.WaitOrTimeout())
	b := startNode(t, opts, pool, "w2")

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	require.NoError(t, a.Fence(1).Check(ctx, tx))

	terminate(t, pool, a.name)
	require.Equal(t, int64(1), a.testSignals.LostLeadership.WaitOrTimeout())
	// b wins the lock but its term bump queues behind the open fenced write:
	// a wait inside PostgreSQL, which only pg_stat_activity shows.
	require.Eventually(t, func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = 'metasrv-election-w2' AND wait_event_type = 'Lock')`).Scan(&waiting)
		return err == nil && waiting
	}, wait, 5*time.Millisecond, "w2's term bump never waited for the fenced write")
	b.testSignals.TermBumped.RequireEmpty()
	events, _ := b.rec.snapshot()
	require.Empty(t, events, "w2 elected while a write of term 1 was in flight")
	_, err = tx.Exec(ctx, `INSERT INTO fenced_writes (term, node) VALUES (1, 'w1')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, int64(2), b.testSignals.TermBumped.WaitOrTimeout())
	require.Equal(t, int64(2), b.testSignals.GainedLeadership.WaitOrTimeout())
	b.awaitChange(t, election.LeaderChange{Kind: election.Elected, Term: 2})
}

func TestGracefulResign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	// Leases and campaign intervals far longer than the wait below: a takeover
	// can only come from the resignation's NOTIFY, never from polling.
	opts.Election.Lease = 10 * time.Minute
	opts.Election.CampaignInterval = 5 * time.Minute
	first := startNode(t, opts, pool, "r1")
	require.Equal(t, int64(1), first.testSignals.GainedLeadership.WaitOrTimeout())
	others := []*node{startNode(t, opts, pool, "r2"), startNode(t, opts, pool, "r3")}
	// Both followers have lost their first attempt and now wait for a NOTIFY
	// (they LISTEN from connect on, so the resignation reaches them).
	for _, n := range others {
		n.testSignals.Campaigned.WaitOrTimeout()
	}

	require.NoError(t, first.Resign(ctx))
	require.False(t, first.IsLeader())
	require.Equal(t, int64(1), first.testSignals.LostLeadership.WaitOrTimeout())
	first.awaitChange(t, election.LeaderChange{Kind: election.StepDown, Term: 1})
	events, _ := first.rec.snapshot()
	require.Equal(t, []election.LeaderChange{{Kind: election.Elected, Term: 1}, {Kind: election.StepDown, Term: 1}}, events)
	winner, won := awaitElectedAfter(t, 1, others...)
	require.Equal(t, int64(2), won)
	l, err := first.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, winner.name+":3002", l.Addr)
	require.NoError(t, first.Resign(ctx), "resigning as a follower is a no-op")
}

func TestRestartedPostgres(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t, pgtest.ClusterOptions{})
	opts := testOptions(cluster.DSN())
	migrate(t, opts)
	pool := newPool(t, opts.StoreAddrs[0])
	var nodes []*node
	for _, name := range names("p", 3) {
		nodes = append(nodes, startNode(t, opts, pool, name))
	}
	before := awaitLeader(t, nodes...).Term()

	cluster.Restart(t)
	_, won := awaitElectedAfter(t, before, nodes...)
	require.Greater(t, won, before)
	leader := awaitLeader(t, nodes...)
	// The pool's connections died with the server: reading through it
	// works again once the pool has replaced them, which no signal tells.
	require.Eventually(t, func() bool {
		l, err := leader.Leader(context.Background())
		return err == nil && l.Addr == leader.name+":3002" && l.Term >= won
	}, wait, 10*time.Millisecond)
	for _, n := range nodes {
		events, _ := n.rec.snapshot()
		requireWellFormed(t, n.name, events)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	base := testOptions("postgres://u@127.0.0.1:1/db")
	info := func() election.NodeInfo { return election.NodeInfo{Addr: "a:1"} }
	pool := newPool(t, base.StoreAddrs[0])
	for name, mutate := range map[string]func(*Config){
		"campaign above lease": func(c *Config) { c.CampaignInterval = c.Lease },
		"no lease":             func(c *Config) { c.Lease, c.CampaignInterval = 0, 0 },
		"no candidate lease":   func(c *Config) { c.CandidateLease = 0 },
		"long table name":      func(c *Config) { c.Table = string(make([]byte, 50)) },
		"invalid schema":       func(c *Config) { c.Schema = "a-b" },
		"no addr":              func(c *Config) { c.NodeInfo = func() election.NodeInfo { return election.NodeInfo{} } },
		"no store":             func(c *Config) { c.Store.StoreAddrs = nil },
		"no pool":              func(c *Config) { c.Pool = nil },
	} {
		cfg := electionConfig(base)
		cfg.NodeInfo, cfg.Pool, cfg.Logger = info, pool, testLogger(t)
		mutate(&cfg)
		_, err := New(cfg)
		require.Error(t, err, name)
	}
}

// notASession forgets session state between statements, as a pooler in
// transaction mode does when it hands each statement another backend.
type notASession struct{ sessionConn }

func (c notASession) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if strings.Contains(sql, "metasrv.election_probe") {
		return c.sessionConn.QueryRow(ctx, `SELECT pg_backend_pid(), ''::text`)
	}
	return c.sessionConn.QueryRow(ctx, sql, args...)
}

func TestElectionRefusesAConnectionThatIsNotASession(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	opts := testOptions(dsn)
	migrate(t, opts)
	cfg := electionConfig(opts)
	cfg.NodeInfo = func() election.NodeInfo { return election.NodeInfo{Addr: "pooled:1"} }
	cfg.Pool = newPool(t, dsn)
	cfg.Logger = testLogger(t)
	cfg.wrapSession = func(c sessionConn) sessionConn { return notASession{c} }
	e, err := New(cfg)
	require.NoError(t, err)
	err = e.Start(context.Background())
	require.ErrorIs(t, err, ErrNotASession)
	e.Stop()
}

// Settle returns only once every fenced transaction open when it was called
// has ended, so a write of unknown outcome is final after it.
func TestSettleWaitsForFencedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, pool := newDatabase(t)
	a := startNode(t, opts, pool, "s1")
	require.Equal(t, int64(1), a.testSignals.GainedLeadership.WaitOrTimeout())

	require.NoError(t, a.Settle(ctx), "nothing in flight: Settle returns at once")

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	require.NoError(t, a.Fence(1).Check(ctx, tx))
	_, err = tx.Exec(ctx, `INSERT INTO fenced_writes (term, node) VALUES (1, 's1')`)
	require.NoError(t, err)

	settled := make(chan error, 1)
	go func() { settled <- a.Settle(ctx) }()
	// Settle's row lock waits inside PostgreSQL: only pg_stat_activity shows it.
	require.Eventually(t, func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%FOR NO KEY UPDATE%')`).Scan(&waiting)
		return err == nil && waiting
	}, wait, 5*time.Millisecond, "Settle never waited for the fenced write")
	select {
	case err := <-settled:
		t.Fatalf("Settle returned while a fenced write was open: %v", err)
	default:
	}
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-settled)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM fenced_writes`).Scan(&n))
	require.Equal(t, 1, n, "the write Settle waited for is visible after it")

	// A bounded Settle that cannot get the row reports why.
	tx2, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx2.Rollback(ctx)
	require.NoError(t, a.Fence(1).Check(ctx, tx2))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, a.Settle(short), context.DeadlineExceeded)
}
