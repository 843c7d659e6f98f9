package ddl_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/ddl"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/selector"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRegions is the datanodes' region servers: it records every request
// and answers through hook when set.
type fakeRegions struct {
	mu   sync.Mutex
	reqs map[string][]*regionpb.RegionRequest // by address
	hook func(ctx context.Context, addr string, req *regionpb.RegionRequest) error
	// reply, when set, builds the answer to a request the hook let through.
	reply func(addr string, req *regionpb.RegionRequest) *regionpb.RegionResponse
}

func (f *fakeRegions) Handle(ctx context.Context, addr string, req *regionpb.RegionRequest) (*regionpb.RegionResponse, error) {
	f.mu.Lock()
	f.reqs[addr] = append(f.reqs[addr], req)
	hook, reply := f.hook, f.reply
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, addr, req); err != nil {
			return nil, err
		}
	}
	if reply != nil {
		return reply(addr, req), nil
	}
	return &regionpb.RegionResponse{}, nil
}

// regionIDs lists the regions of kind ("create", "drop") sent to addr.
func (f *fakeRegions) regionIDs(addr, kind string) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint64
	for _, r := range f.reqs[addr] {
		switch {
		case kind == "create" && r.GetCreate() != nil:
			out = append(out, r.GetCreate().GetRegionId())
		case kind == "drop" && r.GetDrop() != nil:
			out = append(out, r.GetDrop().GetRegionId())
		}
	}
	slices.Sort(out)
	return out
}

func (f *fakeRegions) setHook(h func(ctx context.Context, addr string, req *regionpb.RegionRequest) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

type fakeCaches struct {
	mu   sync.Mutex
	sent [][]instruction.CacheIdent
}

func (f *fakeCaches) InvalidateCaches(_ context.Context, _ int64, c []instruction.CacheIdent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, c)
	return nil
}

func (f *fakeCaches) all() [][]instruction.CacheIdent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

type testBundle struct {
	store, memory kv.Backend
	procs         *procedure.Manager
	keeper        *region.Keeper
	regions       *fakeRegions
	caches        *fakeCaches
	svc           *ddl.Service
}

const (
	dn1 = "dn1:4001"
	dn2 = "dn2:4001"
)

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{
		store: memkv.New(), memory: memkv.New(),
		procs:   procedure.New(procedure.Options{MaxRetryTimes: 2, RetryDelay: time.Millisecond}, slog.New(slog.DiscardHandler)),
		keeper:  region.NewKeeper(),
		regions: &fakeRegions{reqs: map[string][]*regionpb.RegionRequest{}},
		caches:  &fakeCaches{},
	}
	svc, err := ddl.New(ddl.Options{Procedures: b.procs, Selector: selector.NewRoundRobin(), Keeper: b.keeper, Regions: b.regions, Caches: b.caches})
	require.NoError(t, err)
	b.svc = svc
	b.alive(t, 1, dn1)
	b.alive(t, 2, dn2)
	b.startTerm(t, 1)
	t.Cleanup(b.stopTerm)
	return b
}

// alive makes datanode id a live one in the term's in-memory KV, as its
// heartbeat does.
func (b *testBundle) alive(t *testing.T, id uint64, addr string) {
	t.Helper()
	info := greptimekey.NodeInfo{
		Peer: greptimekey.Peer{ID: id, Addr: addr}, LastActivityTs: time.Now().UnixMilli(),
		Status:  greptimekey.NodeStatus{Role: greptimekey.RoleDatanode, Datanode: &greptimekey.DatanodeStatus{Workloads: []int32{0}}},
		Version: "v1.1.4", GitCommit: "test", StartTimeMs: 1,
	}
	v, err := info.Encode()
	require.NoError(t, err)
	_, err = b.memory.Put(t.Context(), kv.PutRequest{Key: greptimekey.NodeInfoKey(greptimekey.RoleDatanode, id), Value: v})
	require.NoError(t, err)
}

func (b *testBundle) startTerm(t *testing.T, id int64) {
	t.Helper()
	term := metasrv.Term{ID: id, Store: b.store, Memory: b.memory}
	require.NoError(t, b.keeper.Start(t.Context(), term))
	require.NoError(t, b.svc.Start(t.Context(), term))
	require.NoError(t, b.procs.StartTerm(context.Background(), id, b.store))
}

func (b *testBundle) stopTerm() {
	b.procs.Stop()
	b.svc.Stop()
	b.keeper.Stop()
}

func (b *testBundle) get(t *testing.T, key []byte) []byte {
	t.Helper()
	p, err := kv.Get(t.Context(), b.store, key)
	require.NoError(t, err)
	if p == nil {
		return nil
	}
	return p.Value
}

func code(t *testing.T, err error) statuscode.Code {
	t.Helper()
	c, ok := statuscode.Of(err)
	require.True(t, ok, "want a GreptimeDB status code, got %v", err)
	return c
}

func cpu(partitions int) greptimeddl.Table {
	return greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "cpu", Partitions: partitions}
}

func TestCreateDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.svc.Submit(t.Context(), greptimeddl.CreateDatabase("greptime", "metrics", false, map[string]string{"ttl": "7d", "memtable.type": "partition_tree"}))
	require.NoError(t, err)
	require.JSONEq(t, `{"ttl":"7days","extra_options":{"memtable.type":"partition_tree"}}`, string(b.get(t, greptimekey.SchemaNameKey("greptime", "metrics"))))

	_, _, err = b.svc.Submit(t.Context(), greptimeddl.CreateDatabase("greptime", "metrics", false, nil))
	require.Equal(t, statuscode.DatabaseAlreadyExists, code(t, err))
	require.ErrorContains(t, err, "Schema already exists, catalog:greptime, schema: metrics")
	_, _, err = b.svc.Submit(t.Context(), greptimeddl.CreateDatabase("greptime", "metrics", true, nil))
	require.NoError(t, err, "IF NOT EXISTS")

	_, _, err = b.svc.Submit(t.Context(), greptimeddl.CreateDatabase("greptime", "bad", false, map[string]string{"ttl": "soon"}))
	require.Equal(t, statuscode.InvalidArguments, code(t, err))
	require.Nil(t, b.get(t, greptimekey.SchemaNameKey("greptime", "bad")), "a refused request writes nothing")
}

func TestCreateTableWritesGreptimeMetadata(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, tables, err := b.svc.Submit(t.Context(), greptimeddl.CreateTable(cpu(2)))
	require.NoError(t, err)
	require.Equal(t, []uint32{1024}, tables, "the first id of the table_id sequence")

	r0, r1 := greptimekey.RegionID(1024, 0), greptimekey.RegionID(1024, 1)
	require.Equal(t, []uint64{r0}, b.regions.regionIDs(dn1, "create"))
	require.Equal(t, []uint64{r1}, b.regions.regionIDs(dn2, "create"))
	create := b.regions.reqs[dn1][0].GetCreate()
	require.Equal(t, "greptime/public", create.GetPath())
	require.Equal(t, "mito", create.GetEngine())
	require.Equal(t, `{"wal.provider":"raft_engine"}`, create.GetOptions()["wal_options"])
	require.Equal(t, []uint32{0}, create.GetPrimaryKey(), "host is the tag")
	require.Contains(t, create.GetPartition().GetExpression(), `"op":"Lt"`)

	require.JSONEq(t, `{"table_id":1024}`, string(b.get(t, greptimekey.TableNameKey("greptime", "public", "cpu"))))
	info, err := greptimekey.Decode[greptimekey.TableInfoValue](b.get(t, greptimekey.TableInfoKey(1024)))
	require.NoError(t, err)
	require.EqualValues(t, 1024, info.TableInfo.Ident.TableID)
	require.Zero(t, info.Version)
	route, err := greptimekey.Decode[greptimekey.TableRouteValue](b.get(t, greptimekey.TableRouteKey(1024)))
	require.NoError(t, err)
	require.Len(t, route.Physical.RegionRoutes, 2)
	require.Equal(t, greptimekey.Peer{ID: 1, Addr: dn1}, *route.Physical.RegionRoutes[0].LeaderPeer)
	require.Equal(t, greptimekey.Peer{ID: 2, Addr: dn2}, *route.Physical.RegionRoutes[1].LeaderPeer)
	require.JSONEq(t, `{"table_id":1024,"regions":[0],"follower_regions":[],"engine":"mito","region_storage_path":"greptime/public","region_options":{},`+
		`"region_wal_options":{"0":"{\"wal.provider\":\"raft_engine\"}","1":"{\"wal.provider\":\"raft_engine\"}"},"version":0}`,
		string(b.get(t, greptimekey.DatanodeTableKey(1, 1024))))
	require.Zero(t, b.keeper.Len(), "the created regions are released")
	require.Empty(t, b.caches.all(), "GreptimeDB's create table broadcasts nothing")

	_, _, err = b.svc.Submit(t.Context(), greptimeddl.CreateTable(cpu(2)))
	require.Equal(t, statuscode.TableAlreadyExists, code(t, err))
	require.ErrorContains(t, err, "Table already exists, table: greptime.public.cpu")
	again := cpu(2)
	again.IfNotExists = true
	_, tables, err = b.svc.Submit(t.Context(), greptimeddl.CreateTable(again))
	require.NoError(t, err)
	require.Equal(t, []uint32{1024}, tables, "IF NOT EXISTS answers the existing id")
	require.Len(t, b.regions.regionIDs(dn1, "create"), 1, "and creates nothing")
}

func TestDropTableReversesCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, tables, err := b.svc.Submit(t.Context(), greptimeddl.CreateTable(cpu(2)))
	require.NoError(t, err)
	_, _, err = b.svc.Submit(t.Context(), greptimeddl.DropTable("greptime", "public", "cpu", tables[0], false))
	require.NoError(t, err)
	require.Equal(t, []uint64{greptimekey.RegionID(1024, 0)}, b.regions.regionIDs(dn1, "drop"))
	require.Equal(t, []uint64{greptimekey.RegionID(1024, 1)}, b.regions.regionIDs(dn2, "drop"))
	resp, err := b.store.Range(t.Context(), kv.RangeRequest{Key: []byte("__"), RangeEnd: []byte("__\xff")})
	require.NoError(t, err)
	for _, p := range resp.Kvs {
		require.NotContains(t, string(p.Key), "1024", "no key of the table is left, tombstones included: %s", p.Key)
		require.NotContains(t, string(p.Key), "cpu")
	}
	require.Equal(t, [][]instruction.CacheIdent{{
		instruction.TableName{CatalogName: "greptime", SchemaName: "public", TableName: "cpu"}, instruction.TableID(1024),
	}}, b.caches.all())

	_, _, err = b.svc.Submit(t.Context(), greptimeddl.DropTable("greptime", "public", "cpu", 1024, false))
	require.Equal(t, statuscode.TableNotFound, code(t, err))
	_, _, err = b.svc.Submit(t.Context(), greptimeddl.DropTable("greptime", "public", "cpu", 1024, true))
	require.NoError(t, err, "IF EXISTS")
}

// A leader change while a datanode creates a region: the new term resumes
// the procedure with the table id the old one allocated, and ends with one
// table whose regions were created (again: a datanode's create is
// idempotent) on the same datanodes.
func TestCreateTableResumesOnTheNextTerm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	entered := make(chan struct{})
	b.regions.setHook(func(ctx context.Context, _ string, req *regionpb.RegionRequest) error {
		if req.GetCreate() == nil {
			return nil
		}
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done() // the term ends while the datanode is busy
		return ctx.Err()
	})
	type result struct {
		id  procedure.ID
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, _, err := b.svc.Submit(context.Background(), greptimeddl.CreateTable(cpu(2)))
		done <- result{id, err}
	}()
	<-entered
	b.stopTerm()
	first := <-done
	require.Error(t, first.err, "the caller of a deposed leader gets no answer")

	b.regions.setHook(nil)
	b.startTerm(t, 2)
	info, err := b.procs.Wait(t.Context(), first.id)
	require.NoError(t, err)
	require.Equal(t, procedure.StateDone, info.State, info.Error)
	require.JSONEq(t, `{"table_ids":[1024]}`, string(info.Output), "the id allocated in term 1")
	require.Contains(t, b.regions.regionIDs(dn1, "create"), greptimekey.RegionID(1024, 0))
	require.Contains(t, b.regions.regionIDs(dn2, "create"), greptimekey.RegionID(1024, 1))
	require.NotNil(t, b.get(t, greptimekey.TableRouteKey(1024)))
	require.Nil(t, b.get(t, greptimekey.TableInfoKey(1025)), "no second table")
}

// A datanode refusing a region rolls the create back: the regions already
// made are dropped and no metadata is written.
func TestCreateTableRollsBackItsRegions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.regions.setHook(func(_ context.Context, addr string, req *regionpb.RegionRequest) error {
		if req.GetCreate() != nil && addr == dn2 {
			return statuscode.Errorf(statuscode.InvalidArguments, "Invalid region options")
		}
		return nil
	})
	_, _, err := b.svc.Submit(t.Context(), greptimeddl.CreateTable(cpu(2)))
	require.Equal(t, statuscode.InvalidArguments, code(t, err))
	require.Equal(t, []uint64{greptimekey.RegionID(1024, 0)}, b.regions.regionIDs(dn1, "drop"), "the region made on dn1 is dropped")
	require.Nil(t, b.get(t, greptimekey.TableNameKey("greptime", "public", "cpu")))
	require.Nil(t, b.get(t, greptimekey.TableRouteKey(1024)))
	require.Zero(t, b.keeper.Len())
}

func TestCreateTableWithoutDatanodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, err := b.memory.Range(t.Context(), kv.RangeRequest{Key: []byte("__meta_cluster_node_info"), RangeEnd: []byte("__meta_cluster_node_info\xff")})
	require.NoError(t, err)
	for _, p := range resp.Kvs {
		_, err := b.memory.DeleteRange(t.Context(), kv.DeleteRangeRequest{Key: p.Key})
		require.NoError(t, err)
	}
	_, _, err = b.svc.Submit(t.Context(), greptimeddl.CreateTable(cpu(1)))
	require.Equal(t, statuscode.RuntimeResourcesExhausted, code(t, err))
	require.ErrorContains(t, err, "Failed to request datanode, required: 1, but only 0 available")
}

func TestDropDatabaseDropsItsTables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.svc.Submit(t.Context(), greptimeddl.CreateDatabase("greptime", "metrics", false, nil))
	require.NoError(t, err)
	for i := range 3 {
		tbl := greptimeddl.Table{Catalog: "greptime", Schema: "metrics", Name: fmt.Sprintf("t%d", i), Partitions: 2}
		_, _, err := b.svc.Submit(t.Context(), greptimeddl.CreateTable(tbl))
		require.NoError(t, err)
	}
	_, _, err = b.svc.Submit(t.Context(), greptimeddl.DropDatabase("greptime", "metrics", false))
	require.NoError(t, err)
	require.Nil(t, b.get(t, greptimekey.SchemaNameKey("greptime", "metrics")))
	for id := uint32(1024); id < 1027; id++ {
		require.Nil(t, b.get(t, greptimekey.TableInfoKey(id)))
		require.Nil(t, b.get(t, greptimekey.TableRouteKey(id)))
	}
	require.Len(t, b.regions.regionIDs(dn1, "drop"), 3)
	require.Len(t, b.regions.regionIDs(dn2, "drop"), 3)
	sent := b.caches.all()
	require.Equal(t, []instruction.CacheIdent{instruction.SchemaName{CatalogName: "greptime", SchemaName: "metrics"}}, sent[len(sent)-1])

	_, _, err = b.svc.Submit(t.Context(), greptimeddl.DropDatabase("greptime", "metrics", false))
	require.Equal(t, statuscode.InvalidArguments, code(t, err))
	require.ErrorContains(t, err, "Schema nod found, schema: metrics")
	_, _, err = b.svc.Submit(t.Context(), greptimeddl.DropDatabase("greptime", "metrics", true))
	require.NoError(t, err)
}
