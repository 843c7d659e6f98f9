package metasrv

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/pgmetasrv/metasrv/pkg/election/pgelection"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/pgkv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/sequence"
)

// pgCluster is one PostgreSQL database shared by several metasrv nodes of a test.
type pgCluster struct {
	t    testing.TB
	dsn  string
	opts config.Options
	gate *gate
}

// pgNode is one metasrv node on PostgreSQL, assembled as the binary does.
// pkg/node (the composition root) imports this package, so these in-package
// tests, which reach the core's internals (signals), build the same stack by
// hand: the durable store, a Batcher fenced by the term, the election's
// Settle, the key prefix and limits (pkg/node's newKVStack, without metrics).
type pgNode struct {
	name    string
	pool    *pgxpool.Pool
	pg      *pgkv.Store
	elector *pgelection.Elector
	procs   *procedure.Manager
	m       *Metasrv
}

func newPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	opts := config.Default()
	opts.Backend = config.BackendPostgres
	opts.StoreAddrs = []string{dsn}
	opts.StoreKeyPrefix = "c1/"
	opts.Election.Lease = 2 * time.Second
	opts.Election.CampaignInterval = 50 * time.Millisecond
	opts.Election.CandidateLease = 4 * time.Second
	require.NoError(t, opts.Validate())

	cc, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	require.NoError(t, migrations.Up(context.Background(), db, "", opts.MetaTableName, discard()))
	return &pgCluster{t: t, dsn: dsn, opts: opts, gate: newGate()}
}

// nodeConfig adjusts one test node.
type nodeConfig struct {
	writeTimeout time.Duration
	signals      *testSignals
}

// node starts a metasrv node on the cluster's database with the production
// write path: group commit through a pgkv.Batcher fenced by the term, and the
// election's Settle.
func (c *pgCluster) node(name string, tune ...func(*nodeConfig)) *pgNode {
	t := c.t
	t.Helper()
	var nc nodeConfig
	for _, f := range tune {
		f(&nc)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, c.dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	pg, err := pgkv.New(pool, pgkv.Options{Table: c.opts.MetaTableName}, discard())
	require.NoError(t, err)
	batcher, err := pgkv.NewBatcher(pg, pgkv.BatchOptions{}, discard())
	require.NoError(t, err)
	require.NoError(t, batcher.Start(ctx))
	t.Cleanup(batcher.Stop)
	el, err := pgelection.New(pgelection.Config{
		Store: c.opts.Store(), Schema: c.opts.MetaSchemaName, Table: c.opts.MetaTableName, LockID: c.opts.MetaElectionLockID, KeyPrefix: c.opts.StoreKeyPrefix,
		Lease: c.opts.Election.Lease, CampaignInterval: c.opts.Election.CampaignInterval, CandidateLease: c.opts.Election.CandidateLease,
		NodeInfo: func() election.NodeInfo { return election.NodeInfo{Addr: name} },
		NodeName: name,
		Pool:     pool,
		Logger:   discard(),
	})
	require.NoError(t, err)
	procs := procedure.New(procedure.Options{RetryDelay: 10 * time.Millisecond, MaxRetryTimes: 3, MaxRunningProcedures: 1024}, discard())
	require.NoError(t, procs.RegisterLoader(gatedType, c.gate.loader))
	require.NoError(t, procs.RegisterLoader(noopType, noopLoader))
	m, err := New(Deps{
		Logger:       discard(),
		Store:        pg,
		Fenced:       func(term int64) kv.Backend { return batcher.WithFence(el.Fence(term)) },
		Settle:       el.Settle,
		WriteTimeout: nc.writeTimeout,
		KeyPrefix:    []byte(c.opts.StoreKeyPrefix),
		// Room for the per-case prefixes of the conformance test.
		Limits:    kv.Limits{MaxTxnOps: 128, MaxValueSize: 1 << 20, MaxKeySize: kv.DefaultMaxKeySize + 64},
		Elector:   el,
		Listeners: []Listener{ProcedureListener{Manager: procs}},
		Addr:      func() string { return name },
	})
	require.NoError(t, err)
	m.signals = nc.signals
	n := &pgNode{name: name, pool: pool, pg: pg, elector: el, procs: procs, m: m}
	require.NoError(t, m.Start(ctx))
	// Registered after the batcher's Stop, so it runs first.
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	return n
}

// killSession ends the node's election session from the server side, as a
// crashed or partitioned leader's would end.
func (c *pgCluster) killSession(n *pgNode) {
	c.t.Helper()
	var killed int
	err := n.pool.QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		 WHERE application_name = $1 AND datname = current_database()`,
		"metasrv-election-"+n.name).Scan(&killed)
	require.NoError(c.t, err)
	require.Equal(c.t, 1, killed, "election session of %s not found", n.name)
}

func waitLeader(t *testing.T, nodes ...*pgNode) *pgNode {
	t.Helper()
	var leader *pgNode
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n.m.State() == LeaderReady {
				leader = n
				return true
			}
		}
		return false
	}, 30*time.Second, 5*time.Millisecond, "no node became a ready leader")
	return leader
}

// waitNewLeader waits for a ready leader of a term after oldTerm.
func waitNewLeader(t *testing.T, oldTerm int64, nodes ...*pgNode) *pgNode {
	t.Helper()
	var leader *pgNode
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n.m.State() == LeaderReady && n.elector.Term() > oldTerm {
				leader = n
				return true
			}
		}
		return false
	}, 30*time.Second, 5*time.Millisecond, "no node became leader after term %d", oldTerm)
	return leader
}

// gate is shared by the gated procedures of a test: it counts each step's
// side effect and holds step 1 until opened.
type gate struct {
	mu      sync.Mutex
	effects map[string]int
	opened  chan struct{}
	once    sync.Once
	reached chan struct{} // receives when a step 1 starts waiting
}

func newGate() *gate {
	return &gate{effects: map[string]int{}, opened: make(chan struct{}), reached: make(chan struct{}, 16)}
}

func (g *gate) open() { g.once.Do(func() { close(g.opened) }) }

func (g *gate) effect(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.effects[name]++
}

func (g *gate) counts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.effects {
		out[k] = v
	}
	return out
}

const gatedType = "test_gated"

type gatedProc struct {
	g    *gate
	Name string `json:"name"`
	Step int    `json:"step"`
}

func (g *gate) loader(data []byte) (procedure.Procedure, error) {
	p := &gatedProc{g: g}
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("%w: %v", procedure.ErrInvalidArgument, err)
	}
	return p, nil
}

func (p *gatedProc) Type() string          { return gatedType }
func (p *gatedProc) Dump() ([]byte, error) { return json.Marshal(p) }
func (p *gatedProc) LockKeys() []procedure.LockKey {
	return []procedure.LockKey{procedure.ExclusiveLock(p.Name)}
}
func (p *gatedProc) Rollback(context.Context, *procedure.Context) error { return nil }

func (p *gatedProc) Execute(ctx context.Context, pc *procedure.Context) (procedure.Status, error) {
	switch p.Step {
	case 0:
		p.g.effect("step0")
		p.Step = 1
		return procedure.Executing(true), nil
	case 1:
		p.g.reached <- struct{}{}
		select {
		case <-p.g.opened:
		case <-ctx.Done():
			return procedure.Status{}, ctx.Err()
		}
		p.g.effect("step1")
		p.Step = 2
		return procedure.Executing(true), nil
	default:
		p.g.effect("step2")
		return procedure.Done([]byte("ok")), nil
	}
}

func TestProcedureSurvivesLeaderCrashAndCompletesOnce(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	a := c.node("a")
	require.Same(t, a, waitLeader(t, a))
	b := c.node("b")

	ctx := context.Background()
	args, _ := json.Marshal(gatedProc{Name: "table/1"})
	id, err := a.procs.Submit(ctx, gatedType, args)
	require.NoError(t, err)
	<-c.gate.reached // step 0 is persisted, step 1 is in progress on a

	oldTerm := a.elector.Term()
	c.killSession(a)
	leader := waitNewLeader(t, oldTerm, a, b)
	<-c.gate.reached // the new leader resumed the procedure at step 1
	c.gate.open()

	info, err := leader.procs.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, procedure.StateDone, info.State)
	require.Equal(t, map[string]int{"step0": 1, "step1": 1, "step2": 1}, c.gate.counts())
}

func TestDeposedLeaderCannotPersistProcedureState(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	a := c.node("a")
	require.Same(t, a, waitLeader(t, a))
	ctx := context.Background()
	oldTerm := a.elector.Term()
	stale := procedure.New(procedure.Options{RetryDelay: 10 * time.Millisecond}, discard())
	require.NoError(t, stale.RegisterLoader(gatedType, c.gate.loader))
	staleStore := kv.WithPrefix(a.pg.WithFence(a.elector.Fence(oldTerm)), []byte(c.opts.StoreKeyPrefix))
	require.NoError(t, stale.Start(ctx, staleStore))
	t.Cleanup(stale.Stop)

	// A procedure runs under the old term until its gate...
	args, _ := json.Marshal(gatedProc{Name: "table/2"})
	id, err := stale.Submit(ctx, gatedType, args)
	require.NoError(t, err)
	<-c.gate.reached

	// ...then the term changes under it.
	b := c.node("b")
	c.killSession(a)
	leader := waitNewLeader(t, oldTerm, a, b)
	<-c.gate.reached // the new leader resumed it too

	// The old term can persist nothing: a new submission and the running
	// procedure's next step are both fenced.
	_, err = stale.Submit(ctx, gatedType, args)
	require.ErrorIs(t, err, election.ErrFenced)
	c.gate.open()
	require.Eventually(t, func() bool { return stale.Stats().Fenced >= 1 }, 30*time.Second, 5*time.Millisecond)

	info, err := leader.procs.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, procedure.StateDone, info.State)
	require.Equal(t, 1, c.gate.counts()["step2"], "the procedure completed exactly once")
}

func TestLeaderCacheMatchesPostgresAfterLeaderChange(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	a := c.node("a")
	require.Same(t, a, waitLeader(t, a))
	b := c.node("b")
	ctx := context.Background()

	store, err := a.m.LeaderBackend(ctx)
	require.NoError(t, err)
	for i := 0; i < 300; i++ {
		key := []byte(fmt.Sprintf("key/%03d", i))
		_, err := store.Put(ctx, kv.PutRequest{Key: key, Value: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
		got, err := kv.Get(ctx, store, key)
		require.NoError(t, err)
		require.Equal(t, []byte(fmt.Sprint(i)), got.Value, "read after a committed write")
	}
	_, err = store.DeleteRange(ctx, kv.DeleteRangeRequest{Key: []byte("key/1"), RangeEnd: kv.PrefixEnd([]byte("key/1"))})
	require.NoError(t, err)
	_, err = store.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareAbsent([]byte("txn"))},
		Success: []kv.TxnOp{kv.OpPut([]byte("txn"), []byte("1")), kv.OpDelete([]byte("key/000"))},
	})
	require.NoError(t, err)

	oldTerm := a.elector.Term()
	c.killSession(a)
	leader := waitNewLeader(t, oldTerm, a, b)
	cached, err := leader.m.LeaderBackend(ctx)
	require.NoError(t, err)
	all := kv.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}
	fromCache, err := cached.Range(ctx, all)
	require.NoError(t, err)
	fromPG, err := leader.m.SerializableBackend().Range(ctx, all)
	require.NoError(t, err)
	require.Equal(t, fromPG.Kvs, fromCache.Kvs)
	require.Len(t, fromCache.Kvs, 300-100-1+1+4) // keys, minus key/1xx, minus key/000, plus txn, plus the catalog and three schemas
}

func TestSequenceIDsUniqueAcrossLeaders(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	a := c.node("a")
	require.Same(t, a, waitLeader(t, a))
	b := c.node("b")
	ctx := context.Background()

	const perLeader, workers = 5000, 3
	var mu sync.Mutex
	seen := map[uint64]bool{}
	allocate := func(n *pgNode) {
		store, err := n.m.LeaderBackend(ctx)
		require.NoError(t, err)
		seq, err := sequence.New(store, sequence.Options{Name: greptimekey.SeqTableID, Initial: sequence.MinUserTableID, Step: 100})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < perLeader; i += workers {
					id, err := seq.Next(ctx)
					if !assertNoErr(t, err) {
						return
					}
					mu.Lock()
					dup := seen[id]
					seen[id] = true
					mu.Unlock()
					if dup {
						t.Errorf("id %d handed out twice", id)
						return
					}
				}
			}(w)
		}
		wg.Wait()
	}
	allocate(a)
	oldTerm := a.elector.Term()
	require.NoError(t, a.elector.Resign(ctx))
	leader := waitNewLeader(t, oldTerm, b, a)
	allocate(leader)
	require.Equal(t, 2*perLeader, len(seen), "ids handed out")
}

func assertNoErr(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}
