package heartbeat

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

var dn7 = PusherID{Role: metapb.Role_DATANODE, ID: 7}

func closeRegion() instruction.CloseRegions {
	return instruction.CloseRegions{{DatanodeID: 7, TableID: 1024, RegionNumber: 1, Engine: "mito2"}}
}

// openDatanode registers datanode 7 in the running term and answers its
// handshake, so the session knows the node's address.
func openDatanode(t *testing.T, b *testBundle) *Session {
	t.Helper()
	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 7))
	require.NoError(t, err)
	t.Cleanup(sess.Close)
	resp := sess.Handle(context.Background(), &metapb.HeartbeatRequest{Header: hdr(metapb.Role_DATANODE, 7), Peer: &metapb.Peer{Id: 7, Addr: "10.0.0.1:4001"}}, true)
	require.False(t, IsNotLeader(resp))
	return sess
}

type sendResult struct {
	reply *metapb.MailboxMessage
	err   error
}

// sendAsync runs Send on a goroutine; its result comes on the channel.
func sendAsync(b *testBundle, term int64, to PusherID, timeout time.Duration) <-chan sendResult {
	done := make(chan sendResult, 1)
	go func() {
		reply, err := b.svc.Send(context.Background(), term, to, "Close downgraded regions: [4398046511105(1024, 1)]", closeRegion(), timeout)
		done <- sendResult{reply, err}
	}()
	return done
}

// replyBeat is the extra heartbeat a datanode answers msg with.
func replyBeat(t *testing.T, msg *metapb.MailboxMessage, r instruction.Reply) *metapb.HeartbeatRequest {
	t.Helper()
	reply, err := instruction.ReplyMessage(msg, r, 1)
	require.NoError(t, err)
	return &metapb.HeartbeatRequest{Header: hdr(metapb.Role_DATANODE, 7), Peer: &metapb.Peer{Id: 7, Addr: "10.0.0.1:4001"}, MailboxMessage: reply}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func mailboxCount(t *testing.T, b *testBundle, k instruction.Kind, outcome string) float64 {
	t.Helper()
	return counter(t, b.svc.metrics.mailboxVec.WithLabelValues(string(k), outcome))
}

func TestSendAndReply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	leaser := &fakeLeaser{lease: &metapb.RegionLease{LeaseSeconds: 10}}
	b.svc.opts.RegionLeaser = leaser
	b.lead(t, 3)
	defer b.svc.Stop()
	sess := openDatanode(t, b)
	leases := leaser.calls() // the handshake's, as in GreptimeDB: it has a peer, hence a stat

	done := sendAsync(b, 3, dn7, time.Minute)
	pushed := <-sess.Pushed()
	require.True(t, sess.Deliverable())
	require.Equal(t, OKHeader().String(), pushed.GetHeader().String())
	require.Nil(t, pushed.GetRegionLease())
	require.Nil(t, pushed.GetHeartbeatConfig())
	msg := pushed.GetMailboxMessage()
	require.Equal(t, uint64(1), msg.GetId(), "the heartbeat_mailbox sequence starts at 1")
	require.Equal(t, "Metasrv@127.0.0.1:3002", msg.GetFrom())
	require.Equal(t, "Datanode-7@10.0.0.1:4001", msg.GetTo())
	require.Equal(t, "Close downgraded regions: [4398046511105(1024, 1)]", msg.GetSubject())
	require.Equal(t, b.now.UnixMilli(), msg.GetTimestampMillis())
	require.Equal(t, `{"CloseRegions":[{"datanode_id":7,"table_id":1024,"region_number":1,"engine":"mito2"}]}`, msg.GetJson())
	// The first range of ids was taken through the term's store.
	require.Equal(t, binary.LittleEndian.AppendUint64(nil, 101), get(t, b.store, greptimekey.SequenceKey(greptimekey.SeqHeartbeatMailbox)))

	resp := sess.Handle(context.Background(), replyBeat(t, msg, instruction.CloseRegionsReply{Result: true}), false)
	require.Equal(t, OKHeader().String(), resp.GetHeader().String())
	require.Nil(t, resp.GetRegionLease(), "the reply ends the chain: no region lease")
	require.Equal(t, leases, leaser.calls())
	got := <-done
	require.NoError(t, got.err)
	r, err := instruction.ReplyFromMessage(got.reply)
	require.NoError(t, err)
	require.Equal(t, instruction.CloseRegionsReply{Result: true}, r)
	require.Equal(t, 1.0, mailboxCount(t, b, instruction.KindCloseRegions, "sent"))
	require.Equal(t, 1.0, mailboxCount(t, b, instruction.KindCloseRegions, "replied"))
}

func TestIdsOutliveTheTerm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	sess := openDatanode(t, b)
	require.NoError(t, b.svc.SendOneway(context.Background(), 1, dn7, "s", closeRegion()))
	done := sendAsync(b, 1, dn7, time.Minute)
	<-sess.Pushed()
	require.Equal(t, uint64(1), (<-sess.Pushed()).GetMailboxMessage().GetId())
	b.svc.Stop()
	require.ErrorIs(t, (<-done).err, election.ErrNotLeader)

	b.lead(t, 2)
	defer b.svc.Stop()
	sess = openDatanode(t, b)
	done = sendAsync(b, 2, dn7, time.Minute)
	require.Equal(t, uint64(101), (<-sess.Pushed()).GetMailboxMessage().GetId(), "a new term takes the next range")
	b.svc.Stop()
	require.ErrorIs(t, (<-done).err, election.ErrNotLeader)
}

func TestSendTimesOutAndALateReplyIsDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	sess := openDatanode(t, b)

	done := sendAsync(b, 1, dn7, 20*time.Millisecond)
	msg := (<-sess.Pushed()).GetMailboxMessage()
	got := <-done
	require.ErrorIs(t, got.err, ErrMailboxTimeout)
	require.Equal(t, 1.0, mailboxCount(t, b, instruction.KindCloseRegions, "timed_out"))

	resp := sess.Handle(context.Background(), replyBeat(t, msg, instruction.CloseRegionsReply{Result: true}), false)
	require.False(t, IsNotLeader(resp))
	require.Nil(t, resp.GetRegionLease())
	require.Equal(t, 1.0, counter(t, b.svc.metrics.replyDropped))
}

func TestAFullOutboxHoldsThePushUpToTheDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	openDatanode(t, b) // its stream never takes anything
	for range outboxSize {
		require.NoError(t, b.svc.SendOneway(context.Background(), 1, dn7, "s", closeRegion()))
	}
	_, err := b.svc.Send(context.Background(), 1, dn7, "s", closeRegion(), 20*time.Millisecond)
	require.ErrorIs(t, err, ErrMailboxTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, b.svc.SendOneway(ctx, 1, dn7, "s", closeRegion()), context.Canceled)
}

func TestPusherNotFoundAllocatesNoID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	openDatanode(t, b)
	other := PusherID{Role: metapb.Role_DATANODE, ID: 99}
	_, err := b.svc.Send(context.Background(), 1, other, "s", closeRegion(), time.Minute)
	require.ErrorIs(t, err, ErrPusherNotFound)
	require.ErrorContains(t, err, "Datanode-99")
	require.ErrorIs(t, b.svc.SendOneway(context.Background(), 1, other, "s", closeRegion()), ErrPusherNotFound)
	require.ErrorIs(t, b.svc.SendOneway(context.Background(), 1, PusherID{Role: metapb.Role_FLOWNODE, ID: 7}, "s", closeRegion()), ErrPusherNotFound)
	require.Nil(t, get(t, b.store, greptimekey.SequenceKey(greptimekey.SeqHeartbeatMailbox)))
}

func TestNotThisNodesTerm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.svc.Send(context.Background(), 1, dn7, "s", closeRegion(), time.Minute)
	require.ErrorIs(t, err, election.ErrNotLeader, "no term at all")
	b.lead(t, 4)
	defer b.svc.Stop()
	openDatanode(t, b)
	_, err = b.svc.Send(context.Background(), 5, dn7, "s", closeRegion(), time.Minute)
	require.ErrorIs(t, err, election.ErrNotLeader, "another term")
	b.leading.Store(0) // the trust window lapsed
	require.ErrorIs(t, b.svc.SendOneway(context.Background(), 4, dn7, "s", closeRegion()), election.ErrNotLeader)
	require.ErrorIs(t, b.svc.Broadcast(context.Background(), 4, metapb.Role_DATANODE, "s", closeRegion()), election.ErrNotLeader)
}

func TestStepDownFailsEveryWaiterAndDeliversNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	sess := openDatanode(t, b)
	const n = 5
	var results []<-chan sendResult
	for range n {
		results = append(results, sendAsync(b, 1, dn7, time.Hour))
	}
	for range n {
		<-sess.Pushed() // each is registered and pushed
	}
	// One more, queued but not yet taken by the stream.
	require.NoError(t, b.svc.SendOneway(context.Background(), 1, dn7, "s", closeRegion()))

	b.svc.Stop()
	for _, r := range results {
		got := <-r
		require.ErrorIs(t, got.err, election.ErrNotLeader)
		require.Nil(t, got.reply)
	}
	<-sess.Pushed()
	require.False(t, sess.Deliverable(), "what was queued before the step-down is not delivered")
	b.svc.mu.Lock()
	require.Nil(t, b.svc.term)
	b.svc.mu.Unlock()
}

func TestTheSessionsEndFailsItsWaiter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	sess := openDatanode(t, b)
	done := sendAsync(b, 1, dn7, time.Hour)
	<-sess.Pushed()
	again := openDatanode(t, b) // the node reconnected: its old stream is gone
	require.ErrorIs(t, (<-done).err, ErrChannelClosed)
	again.Close()
	require.ErrorIs(t, b.svc.SendOneway(context.Background(), 1, dn7, "s", closeRegion()), ErrPusherNotFound)
	require.ErrorIs(t, b.svc.push(context.Background(), b.svc.current(), sess, &metapb.MailboxMessage{}, nil), ErrChannelClosed, "a push to an ended session fails at once")
}

func TestAReplyFromAnotherNodeIsDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	sess := openDatanode(t, b)
	other, err := b.svc.Open(hdr(metapb.Role_DATANODE, 8))
	require.NoError(t, err)
	defer other.Close()
	done := sendAsync(b, 1, dn7, time.Hour)
	msg := (<-sess.Pushed()).GetMailboxMessage()
	other.Handle(context.Background(), replyBeat(t, msg, instruction.CloseRegionsReply{}), false)
	require.Equal(t, 1.0, counter(t, b.svc.metrics.replyDropped))
	sess.Handle(context.Background(), replyBeat(t, msg, instruction.CloseRegionsReply{Result: true}), false)
	got := <-done
	require.NoError(t, got.err)
	r, err := instruction.ReplyFromMessage(got.reply)
	require.NoError(t, err)
	require.Equal(t, instruction.CloseRegionsReply{Result: true}, r)
}

func TestBroadcastAndInvalidateCaches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	dn := openDatanode(t, b)
	var frontends []*Session
	for range 2 {
		fe, err := b.svc.Open(hdr(metapb.Role_FRONTEND, 0))
		require.NoError(t, err)
		defer fe.Close()
		frontends = append(frontends, fe)
	}
	caches := []instruction.CacheIdent{instruction.TableID(1024), instruction.TableName{CatalogName: "greptime", SchemaName: "public", TableName: "t"}}
	require.NoError(t, b.svc.InvalidateCaches(context.Background(), 1, caches), "no flownode: nothing to do for them")

	want := `{"InvalidateCaches":[{"TableId":1024},{"TableName":{"catalog_name":"greptime","schema_name":"public","table_name":"t"}}]}`
	check := func(sess *Session, to string) {
		t.Helper()
		msg := (<-sess.Pushed()).GetMailboxMessage()
		require.Zero(t, msg.GetId(), "broadcasts are one-way")
		require.Equal(t, to, msg.GetTo())
		require.Equal(t, "Metasrv@127.0.0.1:3002", msg.GetFrom())
		require.Equal(t, InvalidateSubject, msg.GetSubject())
		require.Equal(t, want, msg.GetJson())
		require.Empty(t, sess.Pushed())
	}
	for _, fe := range frontends {
		check(fe, "Frontend broadcast")
	}
	check(dn, "Datanode broadcast")
	require.Equal(t, 3.0, mailboxCount(t, b, instruction.KindInvalidateCaches, "sent"))
	require.Nil(t, get(t, b.store, greptimekey.SequenceKey(greptimekey.SeqHeartbeatMailbox)), "id 0 comes from no sequence")

	// A one-way message's reply (id 0) matches nothing.
	resp := dn.Handle(context.Background(), &metapb.HeartbeatRequest{Header: hdr(metapb.Role_DATANODE, 7), MailboxMessage: &metapb.MailboxMessage{Id: 0}}, false)
	require.False(t, IsNotLeader(resp))
	require.Equal(t, 1.0, counter(t, b.svc.metrics.replyDropped))
}

// fakeLeaser grants lease, or fails with err, and records its calls.
type fakeLeaser struct {
	lease *metapb.RegionLease
	err   error

	mu   sync.Mutex
	args []leaseArgs
}

type leaseArgs struct {
	term       int64
	store      kv.Backend
	datanodeID uint64
	req        *metapb.HeartbeatRequest
}

func (f *fakeLeaser) Lease(_ context.Context, term int64, store kv.Backend, datanodeID uint64, req *metapb.HeartbeatRequest) (*metapb.RegionLease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.args = append(f.args, leaseArgs{term, store, datanodeID, req})
	return f.lease, f.err
}

func (f *fakeLeaser) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.args)
}

func TestRegionLeaseHook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	leaser := &fakeLeaser{lease: &metapb.RegionLease{LeaseSeconds: 10, CloseableRegionIds: []uint64{5}}}
	b.svc.opts.RegionLeaser = leaser
	b.lead(t, 6)
	defer b.svc.Stop()
	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 7))
	require.NoError(t, err)
	defer sess.Close()
	sess.Handle(context.Background(), &metapb.HeartbeatRequest{Header: hdr(metapb.Role_DATANODE, 7)}, true)
	require.Zero(t, leaser.calls(), "no peer, no stat: no lease")

	beat := datanodeBeat(7, 1)
	resp := sess.Handle(context.Background(), beat, false)
	require.Equal(t, leaser.lease, resp.GetRegionLease())
	require.Equal(t, []leaseArgs{{term: 6, store: b.store, datanodeID: 7, req: beat}}, leaser.args)

	leaser.err, leaser.lease = errors.New("route unreadable"), nil
	resp = sess.Handle(context.Background(), datanodeBeat(7, 1), false)
	require.False(t, IsNotLeader(resp), "a leaser's failure does not fail the heartbeat")
	require.Nil(t, resp.GetRegionLease())

	fe, err := b.svc.Open(hdr(metapb.Role_FRONTEND, 0))
	require.NoError(t, err)
	defer fe.Close()
	fe.Handle(context.Background(), &metapb.HeartbeatRequest{Header: hdr(metapb.Role_FRONTEND, 0), Peer: &metapb.Peer{Addr: "fe:4001"}, Info: &metapb.NodeInfo{}}, false)
	require.Equal(t, 2, leaser.calls(), "datanodes only")
}

func TestNoLeaserNoLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lead(t, 1)
	defer b.svc.Stop()
	sess := openDatanode(t, b)
	require.Nil(t, sess.Handle(context.Background(), datanodeBeat(7, 1), false).GetRegionLease())
}

func TestChainOrder(t *testing.T) {
	t.Parallel()
	var names []string
	for _, h := range defaultHandlers() {
		names = append(names, h.name)
	}
	// GreptimeDB's add_default_handlers (meta-srv handler.rs:650), less the
	// handlers metasrv does not have yet.
	require.Equal(t, []string{
		"response_header", "datanode_keep_lease", "flownode_keep_lease", "check_leader", "on_leader_start",
		"extract_stat", "collect_datanode_cluster_info", "collect_frontend_cluster_info", "collect_flownode_cluster_info",
		"mailbox", "region_lease", "region_failure", "collect_stats", "remap_flow_peer",
	}, names)
}
