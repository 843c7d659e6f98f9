package greptimefake_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
)

func TestLeaseApplied(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	n, c := startRegionNode(t, srv, greptimefake.Config{})
	for _, req := range []*regionpb.RegionRequest{createReq(r1), createReq(r2), openReq(r3), createReq(r4)} {
		_, err := call(t, c, req)
		require.NoError(t, err)
	}
	require.Nil(t, n.LastLease())

	grant := func(roles map[uint64]metapb.RegionRole, closeable ...uint64) {
		srv.setLease(func(req *metapb.HeartbeatRequest) *metapb.RegionLease {
			l := &metapb.RegionLease{DurationSinceEpoch: req.GetDurationSinceEpoch(), LeaseSeconds: 3600, CloseableRegionIds: closeable}
			for id, role := range roles {
				l.Regions = append(l.Regions, &metapb.GrantedRegion{RegionId: id, Role: role})
			}
			return l
		})
	}
	grant(map[uint64]metapb.RegionRole{
		r1: metapb.RegionRole_Follower, r2: metapb.RegionRole_DowngradingLeader, r3: metapb.RegionRole_Leader,
		uint64(instruction.NewRegionID(2048, 1)): metapb.RegionRole_Leader, // not held: ignored
	}, r4, uint64(instruction.NewRegionID(2048, 2)))
	beat := freshBeat(t, n, srv, 100)
	require.Len(t, beat.GetRegionStats(), 4)
	lease := recv(t, n.Leases(), "lease")
	require.Equal(t, beat.GetDurationSinceEpoch(), lease.GetDurationSinceEpoch())
	require.Same(t, lease, n.LastLease())
	require.Equal(t, map[uint64]greptimefake.RegionRole{
		r1: greptimefake.RegionFollower, r2: greptimefake.RegionDowngradingLeader, r3: greptimefake.RegionLeader,
	}, n.Regions(), "granted roles applied, the closeable region closed")

	// A follower is not downgraded, staging is not entered by a lease, and a
	// downgrading leader is made leader again.
	grant(map[uint64]metapb.RegionRole{
		r1: metapb.RegionRole_DowngradingLeader, r2: metapb.RegionRole_Leader, r3: metapb.RegionRole_StagingLeader,
	})
	freshBeat(t, n, srv, 101)
	recv(t, n.Leases(), "second lease")
	require.Equal(t, map[uint64]greptimefake.RegionRole{
		r1: greptimefake.RegionFollower, r2: greptimefake.RegionLeader, r3: greptimefake.RegionLeader,
	}, n.Regions())
}

// A lease runs from the request's duration_since_epoch for lease_seconds;
// a region whose lease ran out is a follower until a lease renews it.
func TestLeaseCountdown(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	n, c := startRegionNode(t, srv, greptimefake.Config{})
	_, err := call(t, c, createReq(r1))
	require.NoError(t, err)

	lease := func(seconds uint64) {
		srv.setLease(func(req *metapb.HeartbeatRequest) *metapb.RegionLease {
			return &metapb.RegionLease{DurationSinceEpoch: req.GetDurationSinceEpoch(), LeaseSeconds: seconds,
				Regions: []*metapb.GrantedRegion{{RegionId: r1, Role: metapb.RegionRole_Leader}}}
		})
	}
	lease(0) // ends when the beat was sent: over by the time it is applied
	freshBeat(t, n, srv, 200)
	recv(t, n.Leases(), "lease")
	require.Equal(t, greptimefake.RegionFollower, n.Regions()[r1])

	lease(3600)
	freshBeat(t, n, srv, 201)
	recv(t, n.Leases(), "renewing lease")
	require.Equal(t, greptimefake.RegionLeader, n.Regions()[r1])
}

// With no lease at all, a region turns follower four heartbeat intervals
// after the keeper started, and reports so.
func TestUnrenewedRegionTurnsFollower(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, fastConfig())
	n, c := startRegionNode(t, srv, greptimefake.Config{})
	_, err := call(t, c, createReq(r1))
	require.NoError(t, err)
	for {
		req := recv(t, srv.requests, "beat")
		if st := req.GetRegionStats(); len(st) == 1 && st[0].GetRole() == metapb.RegionRole_Follower {
			break
		}
	}
	require.Equal(t, greptimefake.RegionFollower, n.Regions()[r1])
}

const (
	metasrvFrom = "Metasrv@127.0.0.1:3002"
	datanodeTo  = "Datanode-3@127.0.0.1:4001"
)

// message is the mailbox message metasrv sends for ins.
func message(t *testing.T, id uint64, subject string, ins instruction.Instruction) *metapb.MailboxMessage {
	t.Helper()
	msg, err := instruction.NewMessage(subject, metasrvFrom, datanodeTo, time.Now().UnixMilli(), ins)
	require.NoError(t, err)
	msg.Header.TracingContext["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	msg.Id = id
	return msg
}

// push has the fake metasrv push msg to n: it goes out after the answer to
// the node's next request, which a nudge (a mailbox reply nobody reads)
// provides at once.
func push(t *testing.T, n *greptimefake.Node, srv *fakeMeta, msg *metapb.MailboxMessage) {
	t.Helper()
	srv.pushes <- &metapb.HeartbeatResponse{Header: &metapb.ResponseHeader{ProtocolVersion: 1}, MailboxMessage: msg}
	require.NoError(t, n.SendMailboxReply(&metapb.MailboxMessage{Subject: "nudge"}))
}

// replyTo waits for the request carrying the reply to msg, skipping beats
// and nudges, and checks its shape: GreptimeDB's reply heartbeat.
func replyTo(t *testing.T, n *greptimefake.Node, srv *fakeMeta, msg *metapb.MailboxMessage) *metapb.MailboxMessage {
	t.Helper()
	for {
		req := recv(t, srv.requests, "reply")
		got := req.GetMailboxMessage()
		if got == nil || got.GetSubject() == "nudge" {
			continue
		}
		require.Equal(t, msg.GetId(), got.GetId(), "the reply to another message: %v", got)
		require.Equal(t, msg.GetSubject(), got.GetSubject())
		require.Equal(t, msg.GetTo(), got.GetFrom())
		require.Equal(t, msg.GetFrom(), got.GetTo())
		require.Nil(t, got.GetHeader(), "replies carry no tracing context")
		require.InDelta(t, time.Now().UnixMilli(), got.GetTimestampMillis(), float64(waitTimeout.Milliseconds()))
		require.Empty(t, req.GetRegionStats())
		require.Zero(t, req.GetDurationSinceEpoch())
		require.True(t, proto.Equal(wantHeader(metapb.Role_DATANODE, 3), req.GetHeader()))
		require.Equal(t, n.PeerAddr(), req.GetPeer().GetAddr())
		require.NotZero(t, req.GetNodeEpoch())
		require.NotNil(t, req.GetInfo())
		require.NotEmpty(t, req.GetExtensions()[greptimefake.GcStatKey])
		return got
	}
}

// executed waits for the event of msg.
func executed(t *testing.T, n *greptimefake.Node, msg *metapb.MailboxMessage) greptimefake.InstructionEvent {
	t.Helper()
	ev := recv(t, n.Instructions(), "instruction event")
	require.True(t, proto.Equal(msg, ev.Message), "the event of another message: %v", ev.Message)
	return ev
}

func ident(id uint64) instruction.RegionIdent {
	r := instruction.RegionID(id)
	return instruction.RegionIdent{DatanodeID: 3, TableID: r.TableID(), RegionNumber: r.RegionNumber(), Engine: "mito"}
}

// mailboxCase is a region server with regions r1 (leader) and r2
// (follower) and its fake metasrv, which pushes it instructions.
type mailboxCase struct {
	n   *greptimefake.Node
	srv *fakeMeta
}

func newMailboxCase(t *testing.T) mailboxCase {
	t.Helper()
	srv := newFakeMeta(t, hourConfig())
	n, c := startRegionNode(t, srv, greptimefake.Config{})
	for _, req := range []*regionpb.RegionRequest{createReq(r1), openReq(r2)} {
		_, err := call(t, c, req)
		require.NoError(t, err)
	}
	return mailboxCase{n: n, srv: srv}
}

// check pushes ins in message id and checks that it is executed and
// answered with want.
func (m mailboxCase) check(t *testing.T, id uint64, subject string, ins instruction.Instruction, want string) {
	t.Helper()
	msg := message(t, id, subject, ins)
	push(t, m.n, m.srv, msg)
	got := replyTo(t, m.n, m.srv, msg)
	require.JSONEq(t, want, got.GetJson())
	ev := executed(t, m.n, msg)
	require.True(t, ev.Executed)
	require.NoError(t, ev.Err)
	require.True(t, proto.Equal(got, ev.Reply))
}

// missing is a region no node holds.
var missing = instruction.NewRegionID(1024, 9)

func TestMailboxOpenUpgradeDowngrade(t *testing.T) {
	t.Parallel()
	m := newMailboxCase(t)
	m.check(t, 11, "Open candidate regions: [4398046511107]", instruction.OpenRegions{{RegionIdent: ident(r3), RegionStoragePath: "greptime/public"}},
		`{"type":"open_regions","result":true,"error":null}`)
	require.Equal(t, greptimefake.RegionFollower, m.n.Regions()[r3])

	m.check(t, 12, "Upgrade candidate regions", instruction.UpgradeRegions{
		{RegionID: instruction.RegionID(r3), ReplayTimeout: time.Second}, {RegionID: instruction.RegionID(r1), ReplayTimeout: time.Second}, {RegionID: missing},
	}, `{"type":"upgrade_regions","replies":[
		{"region_id":4398046511107,"ready":true,"exists":true,"error":null},
		{"region_id":4398046511105,"ready":true,"exists":true,"error":null},
		{"region_id":4398046511113,"ready":false,"exists":false,"error":null}]}`)
	require.Equal(t, greptimefake.RegionLeader, m.n.Regions()[r3])

	m.n.SetLastEntryID(r1, 7)
	m.check(t, 13, "Downgrade leader regions", instruction.DowngradeRegions{
		{RegionID: instruction.RegionID(r1), FlushTimeout: new(time.Second)}, {RegionID: instruction.RegionID(r2)}, {RegionID: missing},
	}, `{"type":"downgrade_regions","replies":[
		{"region_id":4398046511105,"last_entry_id":7,"metadata_last_entry_id":null,"exists":true,"error":null},
		{"region_id":4398046511106,"last_entry_id":0,"metadata_last_entry_id":null,"exists":true,"error":null},
		{"region_id":4398046511113,"last_entry_id":null,"metadata_last_entry_id":null,"exists":false,"error":null}]}`)
	require.Equal(t, map[uint64]greptimefake.RegionRole{
		r1: greptimefake.RegionFollower, r2: greptimefake.RegionFollower, r3: greptimefake.RegionLeader,
	}, m.n.Regions())

	// A payload that does not decode is not answered: the next reply is the
	// next one due.
	bad := &metapb.MailboxMessage{Id: 14, Payload: &metapb.MailboxMessage_Json{Json: `{"Nope":1}`}}
	push(t, m.n, m.srv, bad)
	ev := executed(t, m.n, bad)
	require.ErrorIs(t, ev.Err, instruction.ErrInvalid)
	require.Nil(t, ev.Reply)
	m.check(t, 15, "Close downgraded regions", instruction.CloseRegions{ident(r3), ident(uint64(missing))},
		`{"type":"close_regions","result":true,"error":null}`)
	require.NotContains(t, m.n.Regions(), r3)
}

func TestMailboxFlushAndInvalidate(t *testing.T) {
	t.Parallel()
	m := newMailboxCase(t)
	ids := []instruction.RegionID{instruction.RegionID(r1), instruction.RegionID(r2), missing}
	m.check(t, 21, "Flush regions", instruction.FlushRegions{RegionIDs: ids, ErrorStrategy: instruction.FlushTryAll},
		`{"type":"flush_regions","overall_success":false,"results":[
		[4398046511105,{"Ok":null}],
		[4398046511106,{"Err":"Region 4398046511106(1024, 2) not ready"}],
		[4398046511113,{"Err":"RegionId 4398046511113(1024, 9) not found"}]]}`)
	m.check(t, 22, "Flush regions", instruction.FlushRegions{RegionIDs: ids},
		`{"type":"flush_regions","overall_success":false,"results":[
		[4398046511105,{"Ok":null}],
		[4398046511106,{"Err":"Region 4398046511106(1024, 2) not ready"}]]}`)

	async := message(t, 0, "Flush regions", instruction.FlushRegions{RegionIDs: ids, Strategy: instruction.FlushAsync})
	push(t, m.n, m.srv, async)
	ev := executed(t, m.n, async)
	require.True(t, ev.Executed)
	require.Nil(t, ev.Reply, "an async flush is not answered")

	caches := instruction.InvalidateCaches{instruction.TableID(1024), instruction.TableName{CatalogName: "greptime", SchemaName: "public", TableName: "t"}}
	inv := message(t, 0, "Invalidate table", caches)
	push(t, m.n, m.srv, inv)
	got := recv(t, m.n.Invalidations(), "invalidation")
	require.Equal(t, []instruction.CacheIdent(caches), got.Caches)
	ev = executed(t, m.n, inv)
	require.True(t, ev.Executed)
	require.Nil(t, ev.Reply)

	// Neither was answered: the next reply is the next one due.
	m.check(t, 23, "Flush regions", instruction.FlushRegions{RegionIDs: ids[:1]},
		`{"type":"flush_regions","overall_success":true,"results":[[4398046511105,{"Ok":null}]]}`)
}

func TestOnInstruction(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	called, hold := make(chan uint64, 10), make(chan struct{})
	n, _ := startRegionNode(t, srv, greptimefake.Config{
		OnInstruction: func(msg *metapb.MailboxMessage, _ instruction.Instruction) greptimefake.InstructionAction {
			called <- msg.GetId()
			switch msg.GetId() {
			case 21:
				return greptimefake.InstructionAction{Skip: true}
			case 22:
				return greptimefake.InstructionAction{Reply: instruction.OpenRegionsReply{Result: false, Error: new("disk full")}}
			case 23:
				return greptimefake.InstructionAction{Wait: hold}
			case 24:
				return greptimefake.InstructionAction{NoReply: true}
			}
			return greptimefake.InstructionAction{}
		},
	})
	open := instruction.OpenRegions{{RegionIdent: ident(r1), RegionStoragePath: "greptime/public"}}

	skipped := message(t, 21, "Open", open)
	push(t, n, srv, skipped)
	require.EqualValues(t, 21, recv(t, called, "hook call for 21"))
	ev := executed(t, n, skipped)
	require.False(t, ev.Executed)
	require.Nil(t, ev.Reply)
	require.Empty(t, n.Regions())

	overridden := message(t, 22, "Open", open)
	push(t, n, srv, overridden)
	require.EqualValues(t, 22, recv(t, called, "hook call for 22"))
	require.JSONEq(t, `{"type":"open_regions","result":false,"error":"disk full"}`, replyTo(t, n, srv, overridden).GetJson())
	require.False(t, executed(t, n, overridden).Executed)
	require.Empty(t, n.Regions())

	held := message(t, 23, "Open", open)
	push(t, n, srv, held)
	require.EqualValues(t, 23, recv(t, called, "hook call for 23"))
	require.Empty(t, n.Regions(), "held back")
	close(hold)
	require.JSONEq(t, `{"type":"open_regions","result":true,"error":null}`, replyTo(t, n, srv, held).GetJson())
	require.True(t, executed(t, n, held).Executed)
	require.Equal(t, map[uint64]greptimefake.RegionRole{r1: greptimefake.RegionFollower}, n.Regions())

	silent := message(t, 24, "Close", instruction.CloseRegions{ident(r1)})
	push(t, n, srv, silent)
	require.EqualValues(t, 24, recv(t, called, "hook call for 24"))
	ev = executed(t, n, silent)
	require.True(t, ev.Executed)
	require.Nil(t, ev.Reply)
	require.Empty(t, n.Regions())
}

// Stop gives up an instruction held back.
func TestStopWithHeldInstruction(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	called := make(chan struct{}, 1)
	n, _ := startRegionNode(t, srv, greptimefake.Config{
		OnInstruction: func(*metapb.MailboxMessage, instruction.Instruction) greptimefake.InstructionAction {
			called <- struct{}{}
			return greptimefake.InstructionAction{Wait: make(chan struct{})}
		},
	})
	msg := message(t, 31, "Open", instruction.OpenRegions{{RegionIdent: ident(r1), RegionStoragePath: "p"}})
	push(t, n, srv, msg)
	recv(t, called, "hook call")
	n.Stop()
	ev := executed(t, n, msg)
	require.ErrorIs(t, ev.Err, greptimefake.ErrStopped)
	require.False(t, ev.Executed)
}

// Every role records cache invalidations; a node that is no region server
// ignores region instructions.
func TestInvalidationsEveryRole(t *testing.T) {
	t.Parallel()
	for _, role := range []metapb.Role{greptimefake.Frontend, greptimefake.Flownode, greptimefake.Datanode} {
		t.Run(role.String(), func(t *testing.T) {
			t.Parallel()
			srv := newFakeMeta(t, hourConfig())
			n := startNode(t, greptimefake.Config{Endpoints: []string{srv.addr}, Role: role, ID: 5})
			recv(t, n.Handshakes(), "handshake")
			inv := message(t, 0, "Invalidate table", instruction.InvalidateCaches{instruction.SchemaName{CatalogName: "greptime", SchemaName: "public"}})
			push(t, n, srv, inv)
			got := recv(t, n.Invalidations(), "invalidation")
			require.Equal(t, []instruction.CacheIdent{instruction.SchemaName{CatalogName: "greptime", SchemaName: "public"}}, got.Caches)
			require.True(t, proto.Equal(inv, got.Message))
			require.True(t, executed(t, n, inv).Executed)

			open := message(t, 41, "Open", instruction.OpenRegions{{RegionIdent: ident(r1), RegionStoragePath: "p"}})
			push(t, n, srv, open)
			ev := executed(t, n, open)
			require.False(t, ev.Executed)
			require.Nil(t, ev.Reply)
		})
	}
}
