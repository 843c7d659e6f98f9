package pgelection

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/pgtest"
	"github.com/pgmetasrv/metasrv/migrations"
	"github.com/pgmetasrv/metasrv/pkg/config"
	"github.com/pgmetasrv/metasrv/pkg/election"
)

// wait is the generous bound on every awaited condition: a slow, loaded
// machine must not fail a correct elector.
const wait = 60 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	pgtest.MainCheckLeaks(m)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testOptions are the election settings of the tests: short enough that
// failovers happen quickly, long enough for a loaded machine.
func testOptions(dsn string) config.Options {
	o := config.Default()
	o.Backend = config.BackendPostgres
	o.StoreAddrs = []string{dsn}
	o.MetaTableName = "metakv"
	o.MetaElectionLockID = 42
	o.Election.Lease = 2 * time.Second
	o.Election.CampaignInterval = 100 * time.Millisecond
	o.Election.CandidateLease = 3 * time.Second
	return o
}

// electionConfig is the part of Config a node takes from its options.
func electionConfig(o config.Options) Config {
	return Config{
		Store:            o.Store(),
		Schema:           o.MetaSchemaName,
		Table:            o.MetaTableName,
		LockID:           o.MetaElectionLockID,
		KeyPrefix:        o.StoreKeyPrefix,
		Lease:            o.Election.Lease,
		CampaignInterval: o.Election.CampaignInterval,
		CandidateLease:   o.Election.CandidateLease,
	}
}

// migrate applies the migrations to the database of opts.
func migrate(t testing.TB, opts config.Options) {
	t.Helper()
	cc, err := pgx.ParseConfig(opts.StoreAddrs[0])
	require.NoError(t, err)
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, migrations.Up(ctx, db, opts.MetaSchemaName, opts.MetaTableName, testLogger(t)))
}

// newPool is a direct pool to dsn, closed when the test ends.
func newPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// node is one elector under test, its stream recorded from before Start.
type node struct {
	name string
	*Elector
	rec *recorder
}

// recorder drains a leadership stream into a list, so tests can wait on
// conditions over everything a node saw without racing for messages. Every
// change (and the stream's end) wakes the waiters: nothing polls.
type recorder struct {
	mu      sync.Mutex
	events  []election.LeaderChange
	closed  bool
	changed chan struct{} // closed and replaced at every change
	done    chan struct{} // closed once the stream is drained
}

func record(ch <-chan election.LeaderChange) *recorder {
	r := &recorder{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for c := range ch {
			r.mu.Lock()
			r.events = append(r.events, c)
			r.notifyLocked()
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.closed = true
		r.notifyLocked()
		r.mu.Unlock()
	}()
	return r
}

func (r *recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) snapshot() ([]election.LeaderChange, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]election.LeaderChange(nil), r.events...), r.closed
}

// next is closed at the recorder's next change.
func (r *recorder) next() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// awaitStreams waits until cond holds, evaluating it at the start and after
// every change any of the nodes' streams records. cond may only depend on
// what the streams report (the events, and IsLeader, which changes only with
// an event or just before the trust window's StepDown).
func awaitStreams(t testing.TB, nodes []*node, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	cases := make([]reflect.SelectCase, len(nodes)+1)
	cases[len(nodes)] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline.C)}
	for {
		// Take the change channels before looking, so a change made while
		// cond runs is not missed.
		for i, n := range nodes {
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(n.rec.next())}
		}
		if cond() {
			return
		}
		if chosen, _, _ := reflect.Select(cases); chosen == len(nodes) {
			require.FailNow(t, "condition not reached within the wait", msgAndArgs...)
		}
	}
}

type nodeOption func(*Config)

// startNode starts an elector named name whose session connects with opts
// (possibly through a proxy) and whose pool is pool.
func startNode(t testing.TB, opts config.Options, pool *pgxpool.Pool, name string, options ...nodeOption) *node {
	t.Helper()
	n := newNode(t, opts, pool, name, options...)
	ctx, done := context.WithTimeout(context.Background(), wait)
	defer done()
	require.NoError(t, n.Start(ctx))
	return n
}

func newNode(t testing.TB, opts config.Options, pool *pgxpool.Pool, name string, options ...nodeOption) *node {
	t.Helper()
	src := election.NewNodeInfoSource(name+":3002", "test", "abcdef", time.Now())
	cfg := electionConfig(opts)
	cfg.NodeInfo = src.Snapshot
	cfg.NodeName = name
	cfg.Pool = pool
	cfg.Logger = testLogger(t).With("test", t.Name())
	for _, o := range options {
		o(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	changes, cancel := e.Subscribe()
	e.testSignals.Init(t)
	n := &node{name: name, Elector: e, rec: record(changes)}
	t.Cleanup(func() {
		e.Stop()
		cancel()
	})
	return n
}

// awaitChange waits until the node's stream holds want.
func (n *node) awaitChange(t testing.TB, want election.LeaderChange) {
	t.Helper()
	awaitStreams(t, []*node{n}, func() bool {
		events, _ := n.rec.snapshot()
		return slices.Contains(events, want)
	}, "%s: never saw %v", n.name, want)
}

// awaitStreamClosed waits until the node's stream ended and was drained.
func (n *node) awaitStreamClosed(t testing.TB) {
	t.Helper()
	select {
	case <-n.rec.done:
	case <-time.After(wait):
		t.Fatalf("%s: stream not closed", n.name)
	}
}

// awaitElectedAfter waits until some node is elected for a term above term
// and returns it with its term.
func awaitElectedAfter(t testing.TB, term int64, nodes ...*node) (*node, int64) {
	t.Helper()
	var winner *node
	var won int64
	awaitStreams(t, nodes, func() bool {
		for _, n := range nodes {
			events, _ := n.rec.snapshot()
			for _, c := range events {
				if c.Kind == election.Elected && c.Term > term {
					winner, won = n, c.Term
					return true
				}
			}
		}
		return false
	}, "nobody elected after term %d", term)
	return winner, won
}

// requireWellFormed checks one node's stream: Elected and StepDown
// alternate, each StepDown ends the term just elected, terms only grow.
func requireWellFormed(t testing.TB, name string, events []election.LeaderChange) {
	t.Helper()
	var last int64
	for i, c := range events {
		if i%2 == 0 {
			require.Equal(t, election.Elected, c.Kind, "%s: change %d of %v", name, i, events)
			require.Greater(t, c.Term, last, "%s: change %d of %v", name, i, events)
			last = c.Term
		} else {
			require.Equal(t, election.LeaderChange{Kind: election.StepDown, Term: last}, c, "%s: change %d of %v", name, i, events)
		}
	}
}

// awaitLeader waits until exactly one node believes it leads and returns it.
func awaitLeader(t testing.TB, nodes ...*node) *node {
	t.Helper()
	var leader *node
	awaitStreams(t, nodes, func() bool {
		leader = nil
		count := 0
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				count++
			}
		}
		return count == 1
	}, "no single leader")
	return leader
}

// terminate ends the election session of node name from outside.
func terminate(t testing.TB, pool *pgxpool.Pool, name string) {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"metasrv-election-"+name).Scan(&n)
	require.NoError(t, err)
	require.Equal(t, 1, n, "election sessions of %s", name)
}

// fencedWrite runs a leader-only write of term through n's fence.
func fencedWrite(ctx context.Context, pool *pgxpool.Pool, n *node, term int64) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := n.Fence(term).Check(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO fenced_writes (term, node) VALUES ($1, $2)`, term, n.name)
		return err
	})
}

func createWritesTable(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `CREATE TABLE fenced_writes (term bigint, node text)`)
	require.NoError(t, err)
}

// newDatabase is a migrated database of its own for one test.
func newDatabase(t testing.TB) (config.Options, *pgxpool.Pool) {
	t.Helper()
	opts := testOptions(pgtest.NewDatabase(t))
	migrate(t, opts)
	pool := newPool(t, opts.StoreAddrs[0])
	createWritesTable(t, pool)
	return opts, pool
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}
