package migration

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/internal/greptimeddl"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/kv/memkv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
)

// fakeClock moves only when a test advances it; After tells the test, on
// waits, how long each wait is.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	waits  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), waits: make(chan time.Duration, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	c.waits <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = kept
}

// sent is one instruction the fake mailbox got.
type sent struct {
	term     int64
	to       uint64
	subject  string
	kind     instruction.Kind
	json     string
	timeout  time.Duration
	instruct instruction.Instruction
}

// fakeMailbox answers as GreptimeDB's datanode does, unless hook says
// otherwise: handled true means hook's reply and error are the answer.
type fakeMailbox struct {
	mu            sync.Mutex
	sent          []sent
	invalidations [][]instruction.CacheIdent
	unreachable   map[uint64]bool
	hook          func(ctx context.Context, s sent) (instruction.Reply, error, bool)
}

func (f *fakeMailbox) setHook(h func(ctx context.Context, s sent) (instruction.Reply, error, bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func (f *fakeMailbox) setUnreachable(id uint64, v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreachable[id] = v
}

func (f *fakeMailbox) Send(ctx context.Context, term int64, to heartbeat.PusherID, subject string, instr instruction.Instruction, timeout time.Duration) (*metapb.MailboxMessage, error) {
	payload, err := instruction.Encode(instr)
	if err != nil {
		return nil, err
	}
	s := sent{term: term, to: to.ID, subject: subject, kind: instr.Kind(), json: string(payload), timeout: timeout, instruct: instr}
	f.mu.Lock()
	if f.unreachable[to.ID] {
		f.mu.Unlock()
		return nil, heartbeat.ErrPusherNotFound
	}
	f.sent = append(f.sent, s)
	hook := f.hook
	f.mu.Unlock()
	reply := datanodeReply(instr)
	if hook != nil {
		if r, err, handled := hook(ctx, s); handled {
			if err != nil {
				return nil, err
			}
			reply = r
		}
	}
	req, err := instruction.NewMessage(subject, "Metasrv@127.0.0.1:3002", "Datanode-1@dn", 1, instr)
	if err != nil {
		return nil, err
	}
	req.Id = uint64(len(f.all()))
	return instruction.ReplyMessage(req, reply, 2)
}

func (f *fakeMailbox) InvalidateCaches(_ context.Context, _ int64, caches []instruction.CacheIdent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalidations = append(f.invalidations, caches)
	return nil
}

func (f *fakeMailbox) all() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.sent...)
}

func (f *fakeMailbox) kinds() []instruction.Kind {
	var out []instruction.Kind
	for _, s := range f.all() {
		out = append(out, s.kind)
	}
	return out
}

func (f *fakeMailbox) invalidated() [][]instruction.CacheIdent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]instruction.CacheIdent(nil), f.invalidations...)
}

// datanodeReply is what a healthy datanode answers.
func datanodeReply(instr instruction.Instruction) instruction.Reply {
	switch v := instr.(type) {
	case instruction.OpenRegions:
		return instruction.OpenRegionsReply{Result: true}
	case instruction.CloseRegions:
		return instruction.CloseRegionsReply{Result: true}
	case instruction.FlushRegions:
		out := instruction.FlushRegionsReply{OverallSuccess: true}
		for _, id := range v.RegionIDs {
			out.Results = append(out.Results, instruction.FlushResult{RegionID: id})
		}
		return out
	case instruction.DowngradeRegions:
		out := instruction.DowngradeRegionsReply{}
		for _, d := range v {
			out.Replies = append(out.Replies, instruction.DowngradeRegionReply{RegionID: d.RegionID, LastEntryID: new(uint64(42)), Exists: true})
		}
		return out
	case instruction.UpgradeRegions:
		out := instruction.UpgradeRegionsReply{}
		for _, u := range v {
			out.Replies = append(out.Replies, instruction.UpgradeRegionReply{RegionID: u.RegionID, Ready: true, Exists: true})
		}
		return out
	}
	return nil
}

// hookStore calls afterTxn once a transaction on key has been applied, and
// beforeGet before a read of key; an error either returns is the call's.
type hookStore struct {
	kv.Backend
	key []byte

	mu        sync.Mutex
	afterTxn  func(ctx context.Context) error
	beforeGet func(ctx context.Context) error
}

func (h *hookStore) setAfterTxn(f func(ctx context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.afterTxn = f
}

func (h *hookStore) setBeforeGet(f func(ctx context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beforeGet = f
}

func (h *hookStore) hooks() (func(context.Context) error, func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.afterTxn, h.beforeGet
}

func (h *hookStore) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	resp, err := h.Backend.Txn(ctx, req)
	after, _ := h.hooks()
	if err == nil && after != nil && len(req.Compare) > 0 && bytes.Equal(req.Compare[0].Key, h.key) {
		if herr := after(ctx); herr != nil {
			return kv.TxnResponse{}, herr
		}
	}
	return resp, err
}

func (h *hookStore) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	_, before := h.hooks()
	if before != nil && len(req.RangeEnd) == 0 && bytes.Equal(req.Key, h.key) {
		if err := before(ctx); err != nil {
			return kv.RangeResponse{}, err
		}
	}
	return h.Backend.Range(ctx, req)
}

// The datanodes: 1 and 2 lead the table's two regions, 3 is the target.
const (
	tableID = uint32(1024)
	dn1     = "dn1:4001"
	dn2     = "dn2:4001"
	dn3     = "dn3:4001"
)

var (
	region0 = greptimekey.RegionID(tableID, 0)
	region1 = greptimekey.RegionID(tableID, 1)
)

type bundle struct {
	store   *hookStore
	memory  kv.Backend
	procs   *procedure.Manager
	keeper  *region.Keeper
	mailbox *fakeMailbox
	clock   *fakeClock
	// detector is handed the migrated region's failure detection.
	detector *region.FailureDetector
	mgr      *Manager
	term     int64
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return setupLogged(t, slog.DiscardHandler)
}

// setupLogged is setup with the manager logging to h.
func setupLogged(t *testing.T, h slog.Handler) *bundle {
	t.Helper()
	b := &bundle{
		store:   &hookStore{Backend: memkv.New(), key: greptimekey.TableRouteKey(tableID)},
		memory:  memkv.New(),
		procs:   procedure.New(procedure.Options{MaxRetryTimes: 2, RetryDelay: time.Millisecond}, slog.New(slog.DiscardHandler)),
		keeper:  region.NewKeeper(),
		mailbox: &fakeMailbox{unreachable: map[uint64]bool{}},
		clock:   newFakeClock(),
	}
	detector, err := region.NewFailureDetector(region.FailureDetectorOptions{PhiAccrual: region.DefaultPhiAccrualOptions(), Now: b.clock.Now})
	require.NoError(t, err)
	b.detector = detector
	mgr, err := New(Options{Logger: slog.New(h), Procedures: b.procs, Keeper: b.keeper, Mailbox: b.mailbox, Clock: b.clock, Detectors: detector})
	require.NoError(t, err)
	b.mgr = mgr
	b.seed(t)
	for id, addr := range map[uint64]string{1: dn1, 2: dn2, 3: dn3} {
		b.heartbeat(t, id, addr, b.clock.Now())
	}
	b.startTerm(t, 1)
	t.Cleanup(b.stopTerm)
	// As the supervisor registers the routes' leader regions.
	require.NoError(t, b.detector.Register(1, []region.DetectingRegion{{DatanodeID: 1, RegionID: region0}}, b.clock.Now()))
	return b
}

// seed writes table 1024 (greptime.public.cpu) as a create table does:
// region 0 led by datanode 1, region 1 by datanode 2.
func (b *bundle) seed(t *testing.T) {
	t.Helper()
	info, err := greptimekey.Decode[greptimekey.TableInfo]([]byte(greptimeddl.TableInfoJSON(greptimeddl.Table{Catalog: "greptime", Schema: "public", Name: "cpu", Partitions: 2})))
	require.NoError(t, err)
	info.Ident.TableID = tableID
	routes := []greptimekey.RegionRoute{
		{Region: greptimekey.Region{ID: region0, Attrs: map[string]string{}}, LeaderPeer: &greptimekey.Peer{ID: 1, Addr: dn1}},
		{Region: greptimekey.Region{ID: region1, Attrs: map[string]string{}}, LeaderPeer: &greptimekey.Peer{ID: 2, Addr: dn2}},
	}
	wal := map[uint32]string{0: `{"wal.provider":"raft_engine"}`, 1: `{"wal.provider":"raft_engine"}`}
	regionInfo := greptimekey.RegionInfo{Engine: "mito", RegionStoragePath: "greptime/public", RegionOptions: map[string]string{}, RegionWALOptions: wal}
	infoValue, err := greptimekey.NewTableInfoValue(info).Encode()
	require.NoError(t, err)
	routeValue, err := greptimekey.NewPhysicalTableRoute(routes).Encode()
	require.NoError(t, err)
	b.put(t, b.store, greptimekey.TableInfoKey(tableID), infoValue)
	b.put(t, b.store, greptimekey.TableRouteKey(tableID), routeValue)
	for dn, set := range greptimekey.RegionDistribution(routes) {
		v, err := greptimekey.NewDatanodeTableValue(tableID, set, regionInfo).Encode()
		require.NoError(t, err)
		b.put(t, b.store, greptimekey.DatanodeTableKey(dn, tableID), v)
	}
}

// heartbeat leaves datanode id's lease in the in-memory KV, as its
// heartbeat at at does.
func (b *bundle) heartbeat(t *testing.T, id uint64, addr string, at time.Time) {
	t.Helper()
	v, err := greptimekey.LeaseValue{TimestampMillis: at.UnixMilli(), NodeAddr: addr,
		Workloads: greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: []int32{0}}}.Encode()
	require.NoError(t, err)
	b.put(t, b.memory, greptimekey.DatanodeLeaseKey(id), v)
}

func (b *bundle) put(t *testing.T, store kv.Backend, key, value []byte) {
	t.Helper()
	_, err := store.Put(t.Context(), kv.PutRequest{Key: key, Value: value})
	require.NoError(t, err)
}

func (b *bundle) get(t *testing.T, key []byte) []byte {
	t.Helper()
	p, err := kv.Get(t.Context(), b.store.Backend, key)
	require.NoError(t, err)
	if p == nil {
		return nil
	}
	return p.Value
}

func (b *bundle) route(t *testing.T) greptimekey.PhysicalTableRoute {
	t.Helper()
	v, err := greptimekey.Decode[greptimekey.TableRouteValue](b.get(t, greptimekey.TableRouteKey(tableID)))
	require.NoError(t, err)
	require.NotNil(t, v.Physical)
	return *v.Physical
}

func (b *bundle) startTerm(t *testing.T, id int64) {
	t.Helper()
	b.term = id
	term := metasrv.Term{ID: id, Store: b.store, Memory: b.memory}
	require.NoError(t, b.detector.Start(t.Context(), term))
	require.NoError(t, b.keeper.Start(t.Context(), term))
	require.NoError(t, b.mgr.Start(t.Context(), term))
	require.NoError(t, b.procs.StartTerm(context.Background(), id, b.store))
}

func (b *bundle) stopTerm() {
	b.procs.Stop()
	b.mgr.Stop()
	b.keeper.Stop()
	b.detector.Stop()
}

// migrate submits region 0's move from datanode 1 to datanode 3.
func (b *bundle) migrate(t *testing.T) procedure.ID {
	t.Helper()
	id, err := b.mgr.Submit(t.Context(), Task{RegionID: region0, From: 1, To: 3, Reason: ReasonManual})
	require.NoError(t, err)
	return id
}

// ended is closed when procedure id ends, so a test waiting for a step
// fails rather than hangs when the procedure never gets there.
func (b *bundle) ended(t *testing.T, id procedure.ID) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if info, err := b.procs.Wait(ctx, id); err == nil && info.State.Final() {
			close(ch)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

// await receives from ch, failing the test if procedure id ends first.
func await[T any](t *testing.T, b *bundle, id procedure.ID, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-b.ended(t, id):
		select {
		case v := <-ch:
			return v
		default:
		}
		t.Fatalf("procedure %s ended before the step the test waits for", id)
		var zero T
		return zero
	}
}

func (b *bundle) wait(t *testing.T, id procedure.ID) procedure.Info {
	t.Helper()
	info, err := b.procs.Wait(t.Context(), id)
	require.NoError(t, err)
	return info
}

// leases is the lease decision for region 0 on datanodes 1 and 3, as
// their heartbeats would get it now; it runs on procedure goroutines, so
// it reports errors in its answer rather than failing the test.
func (b *bundle) leases() map[uint64]string {
	out := map[uint64]string{}
	d, err := region.NewLeaseDecider(region.LeaseDeciderOptions{Keeper: b.keeper, Routes: region.StoreRoutes})
	if err != nil {
		out[0] = err.Error()
		return out
	}
	for _, dn := range []uint64{1, 3} {
		req := &metapb.HeartbeatRequest{Header: &metapb.RequestHeader{}, Peer: &metapb.Peer{Id: dn},
			RegionStats: []*metapb.RegionStat{{RegionId: region0, Role: metapb.RegionRole_Leader}}}
		lease, err := d.Lease(context.Background(), b.keeper.Term(), b.store.Backend, dn, req)
		if err != nil {
			out[dn] = err.Error()
			continue
		}
		out[dn] = "closeable"
		for _, g := range lease.GetRegions() {
			out[dn] = g.GetRole().String()
		}
	}
	return out
}
