package migration

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

const (
	openJSON = `{"OpenRegions":[{"region_ident":{"datanode_id":3,"table_id":1024,"region_number":0,"engine":"mito"},` +
		`"region_storage_path":"greptime/public","region_options":{},` +
		`"region_wal_options":{"0":"{\"wal.provider\":\"raft_engine\"}","1":"{\"wal.provider\":\"raft_engine\"}"},` +
		`"skip_wal_replay":true,"reason":"RegionMigration","requirements":{"object_storage":true}}]}`
	flushJSON     = `{"FlushRegions":{"region_ids":[4398046511104],"strategy":"Sync","error_strategy":"TryAll","reason":"RegionMigration"}}`
	downgradeJSON = `{"DowngradeRegions":[{"region_id":4398046511104,"flush_timeout":{"secs":10,"nanos":0}}]}`
	upgradeJSON   = `{"UpgradeRegions":[{"region_id":4398046511104,"last_entry_id":42,"metadata_last_entry_id":null,"replay_timeout":"10s","location_id":1}]}`
	closeJSON     = `{"CloseRegions":[{"datanode_id":1,"table_id":1024,"region_number":0,"engine":""}]}`
)

// requireMigrated checks the metadata a finished migration of region 0 from
// datanode 1 to datanode 3 leaves, and that it holds nothing any more.
func (b *bundle) requireMigrated(t *testing.T, dn2Before []byte) {
	t.Helper()
	route := b.route(t)
	require.EqualValues(t, 2, route.Version, "one write to downgrade, one to upgrade")
	r0, r1 := route.RegionRoutes[0], route.RegionRoutes[1]
	require.Equal(t, &greptimekey.Peer{ID: 3, Addr: dn3}, r0.LeaderPeer)
	require.Empty(t, r0.FollowerPeers, "the old leader is dropped from the route")
	require.Equal(t, greptimekey.LeaderStateNone, r0.LeaderState)
	require.Nil(t, r0.LeaderDownSince)
	require.Equal(t, &greptimekey.Peer{ID: 2, Addr: dn2}, r1.LeaderPeer)

	require.Nil(t, b.get(t, greptimekey.DatanodeTableKey(1, tableID)), "datanode 1 has no region of the table left")
	require.JSONEq(t, `{"table_id":1024,"regions":[0],"follower_regions":[],"engine":"mito","region_storage_path":"greptime/public",`+
		`"region_options":{},"region_wal_options":{"0":"{\"wal.provider\":\"raft_engine\"}","1":"{\"wal.provider\":\"raft_engine\"}"},"version":0}`,
		string(b.get(t, greptimekey.DatanodeTableKey(3, tableID))))
	require.Equal(t, dn2Before, b.get(t, greptimekey.DatanodeTableKey(2, tableID)), "datanode 2's share is untouched")
	require.Zero(t, b.keeper.Len(), "the keeper's holds are released")
	require.Empty(t, b.mgr.Running())
}

func TestMigrateMovesTheRegion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dn2Before := b.get(t, greptimekey.DatanodeTableKey(2, tableID))
	var mu sync.Mutex
	leasesAt := map[instruction.Kind]map[uint64]string{}
	var running []Info
	b.mailbox.setHook(func(_ context.Context, s sent) (instruction.Reply, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		leasesAt[s.kind] = b.leases()
		if s.kind == instruction.KindUpgradeRegions {
			running = b.mgr.Running()
		}
		return nil, nil, false
	})
	id := b.migrate(t)
	info := b.wait(t, id)
	require.Equal(t, procedure.StateDone, info.State, info.Error)
	require.JSONEq(t, `{"region_id":4398046511104,"from_peer":1,"to_peer":3,"leader_downgraded":true}`, string(info.Output))

	msgs := b.mailbox.all()
	want := []struct {
		to      uint64
		subject string
		json    string
	}{
		{3, "Open candidate regions: [4398046511104(1024, 0)]", openJSON},
		{1, "Flush regions: [4398046511104(1024, 0)]", flushJSON},
		{1, "Downgrade leader regions: [4398046511104(1024, 0)]", downgradeJSON},
		{3, "Upgrade candidate regions: [4398046511104(1024, 0)]", upgradeJSON},
		{1, "Close downgraded regions: [4398046511104(1024, 0)]", closeJSON},
	}
	require.Len(t, msgs, len(want))
	for i, w := range want {
		require.Equal(t, w.to, msgs[i].to, w.subject)
		require.Equal(t, w.subject, msgs[i].subject)
		require.JSONEq(t, w.json, msgs[i].json, w.subject)
		require.Equal(t, 10*time.Second, msgs[i].timeout, "%s: the task's 10s, or the 10s region lease", w.subject)
		require.EqualValues(t, 1, msgs[i].term)
	}
	b.requireMigrated(t, dn2Before)
	require.Equal(t, [][]instruction.CacheIdent{{instruction.TableID(tableID)}}, b.mailbox.invalidated())
	require.False(t, b.detector.Contains(1, region0), "the old leader's failure detector is forgotten")
	require.True(t, b.detector.Contains(3, region0), "the new leader's is watched")

	// Exactly one datanode may write at each step.
	require.Equal(t, map[instruction.Kind]map[uint64]string{
		instruction.KindOpenRegions:      {1: "Leader", 3: "Follower"},
		instruction.KindFlushRegions:     {1: "Leader", 3: "Follower"},
		instruction.KindDowngradeRegions: {1: "DowngradingLeader", 3: "Follower"},
		instruction.KindUpgradeRegions:   {1: "DowngradingLeader", 3: "Follower"},
		instruction.KindCloseRegions:     {1: "DowngradingLeader", 3: "Leader"},
	}, leasesAt)
	require.Len(t, running, 1)
	require.Equal(t, id, running[0].ProcedureID)
	require.Equal(t, stepUpgradeCandidate, running[0].Step)
	require.Equal(t, greptimekey.Peer{ID: 3, Addr: dn3}, running[0].To)
	require.Equal(t, ReasonManual, running[0].Reason)
}

// The old leader is not connected: the flush is skipped, the downgrade
// cannot be sent, and the candidate is upgraded only once the old leader's
// region lease is over.
func TestUnreachableLeaderWaitsOutItsLease(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		lastHeartbeat time.Duration // before the migration
		wait          time.Duration
	}{
		{"heartbeat just now", 0, 10 * time.Second},
		{"heartbeat 4s ago", 4 * time.Second, 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.heartbeat(t, 1, dn1, b.clock.Now().Add(-tc.lastHeartbeat))
			b.mailbox.setUnreachable(1, true)
			id := b.migrate(t)
			require.Equal(t, tc.wait, await(t, b, id, b.clock.waits))
			require.Equal(t, []instruction.Kind{instruction.KindOpenRegions}, b.mailbox.kinds(), "no upgrade while the old lease may run")
			require.Equal(t, greptimekey.LeaderStateDowngrading, b.route(t).RegionRoutes[0].LeaderState)
			require.Equal(t, map[uint64]string{1: "DowngradingLeader", 3: "Follower"}, b.leases())

			b.clock.Advance(tc.wait)
			info := b.wait(t, id)
			require.Equal(t, procedure.StateDone, info.State, info.Error)
			require.JSONEq(t, `{"region_id":4398046511104,"from_peer":1,"to_peer":3}`, string(info.Output))
			msgs := b.mailbox.all()
			require.Equal(t, []instruction.Kind{instruction.KindOpenRegions, instruction.KindUpgradeRegions}, b.mailbox.kinds(), "the close of the unreachable leader is not sent")
			require.JSONEq(t, `{"UpgradeRegions":[{"region_id":4398046511104,"last_entry_id":null,"metadata_last_entry_id":null,"replay_timeout":"10s","location_id":1}]}`, msgs[1].json)
			require.EqualValues(t, 3, b.route(t).RegionRoutes[0].LeaderPeer.ID)
		})
	}
}

// A leader silent for longer than a region lease holds no lease any more:
// there is nothing to wait for.
func TestLongSilentLeaderIsNotWaitedFor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.heartbeat(t, 1, dn1, b.clock.Now().Add(-30*time.Second))
	b.mailbox.setUnreachable(1, true)
	info := b.wait(t, b.migrate(t))
	require.Equal(t, procedure.StateDone, info.State, info.Error)
	require.Empty(t, b.clock.waits, "no wait at all")
}

func TestCandidateFailsToOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	routeBefore := b.get(t, greptimekey.TableRouteKey(tableID))
	b.mailbox.setHook(func(_ context.Context, s sent) (instruction.Reply, error, bool) {
		if s.kind == instruction.KindOpenRegions {
			return instruction.OpenRegionsReply{Result: false, Error: new("disk full")}, nil, true
		}
		return nil, nil, false
	})
	info := b.wait(t, b.migrate(t))
	require.Equal(t, procedure.StateRolledBack, info.State)
	require.Contains(t, info.Error, "Region 4398046511104(1024, 0) is not opened by datanode 3, error: disk full")
	require.EqualValues(t, statuscode.IllegalState, info.ErrorCode, "GreptimeDB's RetryLater")
	require.Equal(t, slices.Repeat([]instruction.Kind{instruction.KindOpenRegions}, 3), b.mailbox.kinds(), "retried max_retry_times, then rolled back")
	require.Equal(t, routeBefore, b.get(t, greptimekey.TableRouteKey(tableID)), "the route is unchanged")
	require.Zero(t, b.keeper.Len())
	require.Empty(t, b.mgr.Running())
}

func TestUnreachableCandidateAbortsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mailbox.setUnreachable(3, true)
	info := b.wait(t, b.migrate(t))
	require.Equal(t, procedure.StateRolledBack, info.State)
	require.Contains(t, info.Error, heartbeat.ErrPusherNotFound.Error())
	require.Empty(t, b.mailbox.kinds())
	require.EqualValues(t, 0, b.route(t).Version)
}

// The candidate cannot be upgraded: its region is closed, then the old
// leader leads again, with a plain lease.
func TestUpgradeFailureRestoresTheLeader(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mailbox.setHook(func(_ context.Context, s sent) (instruction.Reply, error, bool) {
		if s.kind == instruction.KindUpgradeRegions {
			return instruction.UpgradeRegionsReply{Replies: []instruction.UpgradeRegionReply{{RegionID: instruction.RegionID(region0), Exists: false}}}, nil, true
		}
		return nil, nil, false
	})
	info := b.wait(t, b.migrate(t))
	require.Equal(t, procedure.StateRolledBack, info.State)
	require.Contains(t, info.Error, "Candidate region 4398046511104(1024, 0) doesn't exist on datanode 3")
	msgs := b.mailbox.all()
	last := msgs[len(msgs)-1]
	require.Equal(t, "Close candidate regions: [4398046511104(1024, 0)]", last.subject)
	require.EqualValues(t, 3, last.to)
	route := b.route(t)
	require.EqualValues(t, 2, route.Version, "downgraded, then restored")
	require.Equal(t, &greptimekey.Peer{ID: 1, Addr: dn1}, route.RegionRoutes[0].LeaderPeer)
	require.Equal(t, greptimekey.LeaderStateNone, route.RegionRoutes[0].LeaderState)
	require.Nil(t, route.RegionRoutes[0].LeaderDownSince)
	require.NotNil(t, b.get(t, greptimekey.DatanodeTableKey(1, tableID)))
	require.Nil(t, b.get(t, greptimekey.DatanodeTableKey(3, tableID)))
	require.Equal(t, map[uint64]string{1: "Leader", 3: "closeable"}, b.leases())
	require.Len(t, b.mailbox.invalidated(), 1)
	require.True(t, b.detector.Contains(1, region0), "the old leader's failure detector is watched again")
	require.False(t, b.detector.Contains(3, region0))
}

// nth runs f on the nth call only.
func nth(n int32, f func(ctx context.Context) error) func(ctx context.Context) error {
	var calls atomic.Int32
	return func(ctx context.Context) error {
		if calls.Add(1) != n {
			return nil
		}
		return f(ctx)
	}
}

// A leader change in the middle of each step: the step's work is done (the
// datanode got the message, the route write committed) but its answer is
// lost with the term. The next term resumes at that step and finishes.
func TestResumesOnTheNextTerm(t *testing.T) {
	t.Parallel()
	kinds := map[string]instruction.Kind{
		stepOpenCandidate: instruction.KindOpenRegions, stepFlushLeader: instruction.KindFlushRegions,
		stepDowngradeLeader: instruction.KindDowngradeRegions, stepUpgradeCandidate: instruction.KindUpgradeRegions,
		stepCloseDowngraded: instruction.KindCloseRegions,
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			dn2Before := b.get(t, greptimekey.DatanodeTableKey(2, tableID))
			entered := make(chan struct{})
			block := func(ctx context.Context) error {
				close(entered)
				<-ctx.Done()
				return ctx.Err()
			}
			switch step {
			case stepStart:
				b.store.setBeforeGet(nth(2, block)) // the first read is Submit's
			case stepDowngradeMetadata:
				b.store.setAfterTxn(nth(1, block))
			case stepUpgradeMetadata:
				b.store.setAfterTxn(nth(2, block))
			default:
				blockOnce := nth(1, block)
				b.mailbox.setHook(func(ctx context.Context, s sent) (instruction.Reply, error, bool) {
					if s.kind != kinds[step] {
						return nil, nil, false
					}
					return nil, blockOnce(ctx), s.term == 1
				})
			}
			id := b.migrate(t)
			await(t, b, id, entered)
			b.stopTerm()
			b.startTerm(t, 2)
			info := b.wait(t, id)
			require.Equal(t, procedure.StateDone, info.State, info.Error)
			b.requireMigrated(t, dn2Before)

			sentKinds := b.mailbox.kinds()
			for s, k := range kinds {
				n := 1
				if s == step {
					n = 2 // sent again by the new term
				}
				require.Equal(t, n, countOf(sentKinds, k), "%s messages", k)
			}
			for _, m := range b.mailbox.all() {
				if reached(step, stepDowngradeLeader) && m.kind == instruction.KindUpgradeRegions {
					require.JSONEq(t, upgradeJSON, m.json, "the last entry id persisted with the downgrade reaches the upgrade")
				}
			}
		})
	}
}

func countOf(kinds []instruction.Kind, k instruction.Kind) int {
	n := 0
	for _, x := range kinds {
		if x == k {
			n++
		}
	}
	return n
}

func TestAlreadyMigrated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dn2Before := b.get(t, greptimekey.DatanodeTableKey(2, tableID))
	info := b.wait(t, b.migrate(t))
	require.Equal(t, procedure.StateDone, info.State, info.Error)

	_, err := b.mgr.Submit(t.Context(), Task{RegionID: region0, From: 1, To: 3})
	require.ErrorIs(t, err, ErrRegionMigrated)
	code, _ := statuscode.Of(err)
	require.Equal(t, statuscode.Unexpected, code)
	require.ErrorContains(t, err, "The region migration procedure is completed for region: 4398046511104(1024, 0), target_peer: 3")
	b.requireMigrated(t, dn2Before)
}

// The region reaches the target between the submission and the first step
// (another migration did it): the procedure ends at once, sending nothing.
func TestMigratedBeforeTheFirstStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store.setBeforeGet(nth(2, func(ctx context.Context) error {
		routes := b.routeValue()
		routes[0].LeaderPeer = &greptimekey.Peer{ID: 3, Addr: dn3}
		v, err := greptimekey.NewPhysicalTableRoute(routes).Encode()
		if err != nil {
			return err
		}
		_, err = b.store.Backend.Put(ctx, kv.PutRequest{Key: greptimekey.TableRouteKey(tableID), Value: v})
		return err
	}))
	info := b.wait(t, b.migrate(t))
	require.Equal(t, procedure.StateDone, info.State, info.Error)
	var out output
	require.NoError(t, json.Unmarshal(info.Output, &out))
	require.True(t, out.AlreadyMigrated)
	require.Empty(t, b.mailbox.kinds())
	require.Zero(t, b.keeper.Len())
}

func (b *bundle) routeValue() []greptimekey.RegionRoute {
	p, err := kv.Get(context.Background(), b.store.Backend, greptimekey.TableRouteKey(tableID))
	if err != nil || p == nil {
		return nil
	}
	v, err := greptimekey.Decode[greptimekey.TableRouteValue](p.Value)
	if err != nil {
		return nil
	}
	return v.Physical.RegionRoutes
}

func TestSubmitRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name     string
		task     Task
		sentinel error
		code     statuscode.Code
		msg      string
	}{
		{"same peers", Task{RegionID: region0, From: 1, To: 1}, nil, statuscode.InvalidArguments, "Invalid arguments: The `from_peer_id` can't equal `to_peer_id`"},
		{"no such table", Task{RegionID: greptimekey.RegionID(2048, 0), From: 1, To: 3}, nil, statuscode.TableNotFound, "Failed to find table route for 2048"},
		{"no such region", Task{RegionID: greptimekey.RegionID(tableID, 7), From: 1, To: 3}, nil, statuscode.RegionNotFound, "Failed to find table route for 4398046511111(1024, 7)"},
		{"leader changed", Task{RegionID: region0, From: 2, To: 3}, ErrLeaderChanged, statuscode.InvalidArguments,
			"Region's leader peer changed: Region's leader peer(1) is not the `from_peer`(2), region: 4398046511104(1024, 0)"},
		{"target not alive", Task{RegionID: region0, From: 1, To: 4}, ErrPeerUnavailable, statuscode.Unexpected, "The target peer is unavailable temporally: 4"},
	} {
		_, err := b.mgr.Submit(t.Context(), tc.task)
		require.Error(t, err, tc.name)
		if tc.sentinel != nil {
			require.ErrorIs(t, err, tc.sentinel, tc.name)
		}
		code, ok := statuscode.Of(err)
		require.True(t, ok, tc.name)
		require.Equal(t, tc.code, code, tc.name)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
	require.Empty(t, b.mgr.Running(), "a refused task leaves nothing behind")
}

func TestSecondMigrationOfARegionIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	entered, release := make(chan struct{}), make(chan struct{})
	b.mailbox.setHook(func(ctx context.Context, s sent) (instruction.Reply, error, bool) {
		if s.kind == instruction.KindOpenRegions {
			close(entered)
			<-release
		}
		return nil, nil, false
	})
	id := b.migrate(t)
	await(t, b, id, entered)
	_, err := b.mgr.Submit(t.Context(), Task{RegionID: region0, From: 1, To: 2})
	require.ErrorIs(t, err, ErrMigrationRunning)
	require.ErrorContains(t, err, "Another migration procedure is running for region: 4398046511104(1024, 0)")
	close(release)
	require.Equal(t, procedure.StateDone, b.wait(t, id).State)
}

// Describe reads back what a migration persists; anything else is refused.
func TestDescribe(t *testing.T) {
	t.Parallel()
	p := &migration{data: migrationData{State: stepDowngradeLeader, RegionID: region0, From: greptimekey.Peer{ID: 1, Addr: dn1},
		To: greptimekey.Peer{ID: 3, Addr: dn3}, TimeoutMillis: 60_000, Reason: ReasonFailover}}
	raw, err := p.Dump()
	require.NoError(t, err)
	info, err := Describe(raw)
	require.NoError(t, err)
	require.Equal(t, Info{RegionID: region0, From: p.data.From, To: p.data.To, Reason: ReasonFailover, Timeout: time.Minute, Step: stepDowngradeLeader}, info)
	for _, bad := range []string{``, `{}`, `{"state":"migration_start"}`, `[1]`} {
		_, err := Describe([]byte(bad))
		require.Error(t, err, bad)
	}
}
