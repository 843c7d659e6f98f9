package failover

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/selector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeMigrations records the tasks submitted and answers with err.
type fakeMigrations struct {
	mu        sync.Mutex
	submitted []migration.Task
	running   []migration.Info
	err       error
}

func (f *fakeMigrations) Submit(_ context.Context, t migration.Task) (procedure.ID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitted = append(f.submitted, t)
	return "p", f.err
}

func (f *fakeMigrations) Running() []migration.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

func (f *fakeMigrations) tasks() []migration.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]migration.Task(nil), f.submitted...)
}

// clock is the detectors' time, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	store, memory kv.Backend
	detector      *region.FailureDetector
	migrations    *fakeMigrations
	clock         *clock
	sup           *Supervisor
	ticks         chan struct{}
	term          metasrv.Term
}

func setup(t *testing.T, initDelay time.Duration) *testBundle {
	t.Helper()
	b := &testBundle{store: memkv.New(), memory: memkv.New(), migrations: &fakeMigrations{},
		clock: &clock{now: time.Unix(1_000_000, 0)}, ticks: make(chan struct{}, 1)}
	var err error
	b.detector, err = region.NewFailureDetector(region.FailureDetectorOptions{PhiAccrual: region.DefaultPhiAccrualOptions(), Now: b.clock.Now})
	require.NoError(t, err)
	b.sup, err = New(Options{Logger: slog.New(slog.DiscardHandler), Detector: b.detector, Migrations: b.migrations, Selector: selector.NewRoundRobin(),
		TickInterval: time.Millisecond, InitializationDelay: initDelay, Now: b.clock.Now})
	require.NoError(t, err)
	b.sup.ticked = func() {
		select {
		case b.ticks <- struct{}{}:
		default:
		}
	}
	for id := uint64(1); id <= 3; id++ {
		b.alive(t, id)
	}
	b.term = metasrv.Term{ID: 1, Store: b.store, Memory: b.memory}
	require.NoError(t, b.detector.Start(t.Context(), b.term))
	t.Cleanup(b.detector.Stop)
	return b
}

func (b *testBundle) start(t *testing.T) {
	t.Helper()
	require.NoError(t, b.sup.Start(context.Background(), b.term))
	t.Cleanup(b.sup.Stop)
}

// alive writes datanode id's node info with the real current time (the
// selector judges liveness by the wall clock).
func (b *testBundle) alive(t *testing.T, id uint64) {
	t.Helper()
	v, err := greptimekey.NodeInfo{Peer: greptimekey.Peer{ID: id, Addr: "dn"}, LastActivityTs: time.Now().UnixMilli(),
		Status:  greptimekey.NodeStatus{Role: greptimekey.RoleDatanode, Datanode: &greptimekey.DatanodeStatus{Workloads: []int32{0}}},
		Version: "v1.1.4", GitCommit: "x", StartTimeMs: 1}.Encode()
	require.NoError(t, err)
	_, err = b.memory.Put(t.Context(), kv.PutRequest{Key: greptimekey.NodeInfoKey(greptimekey.RoleDatanode, id), Value: v})
	require.NoError(t, err)
}

// waitTicks waits for n ticks of the supervisor after this call.
func (b *testBundle) waitTicks(t *testing.T, n int) {
	t.Helper()
	<-b.ticks // one that may have begun before
	for range n {
		<-b.ticks
	}
}

// heartbeats feeds the datanodes' regions, beats times, 3s apart; the clock
// ends 3s after the last beat.
func (b *testBundle) heartbeats(regions map[uint64][]uint64, beats int) {
	for range beats {
		for dn, rs := range regions {
			b.detector.Heartbeats(b.term.ID, dn, rs, b.clock.Now())
		}
		b.clock.advance(3 * time.Second)
	}
}

// A datanode whose heartbeats stop: once phi crosses the threshold, each of
// its regions is failed over to another datanode, reason Failover.
func TestFailedDatanodesRegionsMove(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Hour)
	regions := []uint64{greptimekey.RegionID(1024, 0), greptimekey.RegionID(1024, 1)}
	b.heartbeats(map[uint64][]uint64{1: regions, 2: {greptimekey.RegionID(1025, 0)}}, 5)
	b.start(t)
	b.waitTicks(t, 2)
	require.Empty(t, b.migrations.tasks(), "3s after the last heartbeat nothing has failed")

	// Datanode 2 goes on beating; datanode 1 is silent for 20s more.
	for range 7 {
		b.clock.advance(3 * time.Second)
		b.detector.Heartbeats(b.term.ID, 2, []uint64{greptimekey.RegionID(1025, 0)}, b.clock.Now())
	}
	b.waitTicks(t, 2)
	tasks := b.migrations.tasks()
	require.NotEmpty(t, tasks)
	moved := map[uint64]bool{}
	for _, task := range tasks {
		require.NotEqual(t, uint64(1), task.To, "never to the failed datanode")
		require.Equal(t, migration.ReasonFailover, task.Reason)
		if task.From == 1 {
			moved[task.RegionID] = true
		}
	}
	require.Equal(t, map[uint64]bool{regions[0]: true, regions[1]: true}, moved)
}

func TestNoFailoverInMaintenanceOrWhileMigrating(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Hour)
	r := greptimekey.RegionID(1024, 0)
	b.heartbeats(map[uint64][]uint64{1: {r}}, 5)
	b.clock.advance(30 * time.Second)
	_, err := b.store.Put(t.Context(), kv.PutRequest{Key: []byte(greptimekey.MaintenanceKey)})
	require.NoError(t, err)
	b.migrations.running = []migration.Info{{RegionID: greptimekey.RegionID(9, 9)}}
	b.start(t)
	b.waitTicks(t, 3)
	require.Empty(t, b.migrations.tasks(), "maintenance mode holds failover back")

	b.migrations.mu.Lock()
	b.migrations.running = []migration.Info{{RegionID: r}}
	b.migrations.mu.Unlock()
	_, err = b.store.DeleteRange(t.Context(), kv.DeleteRangeRequest{Key: []byte(greptimekey.MaintenanceKey)})
	require.NoError(t, err)
	b.waitTicks(t, 3)
	require.Empty(t, b.migrations.tasks(), "a region being migrated is left alone")
}

// A failover refused because the region's leader moved removes the
// detector: it is not tried again.
func TestLeaderChangedForgetsTheDetector(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Hour)
	r := greptimekey.RegionID(1024, 0)
	b.heartbeats(map[uint64][]uint64{1: {r}}, 5)
	b.clock.advance(30 * time.Second)
	b.migrations.err = migration.ErrLeaderChanged
	b.start(t)
	b.waitTicks(t, 3)
	require.Len(t, b.migrations.tasks(), 1)
	require.False(t, b.detector.Contains(1, r))
}

// After the initialization delay every route's leader region gets a
// detector, so a datanode that died before the term began is noticed too.
func TestInitializationRegistersTheRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, 0)
	leader := greptimekey.Peer{ID: 3, Addr: "dn3"}
	route, err := greptimekey.NewPhysicalTableRoute([]greptimekey.RegionRoute{{Region: greptimekey.Region{ID: greptimekey.RegionID(1030, 0)}, LeaderPeer: &leader}}).Encode()
	require.NoError(t, err)
	_, err = b.store.Put(t.Context(), kv.PutRequest{Key: greptimekey.TableRouteKey(1030), Value: route})
	require.NoError(t, err)
	b.start(t)
	b.waitTicks(t, 2)
	require.True(t, b.detector.Contains(3, greptimekey.RegionID(1030, 0)))
}
