package heartbeat

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

type detectorCall struct {
	term       int64
	datanodeID uint64
	regionIDs  []uint64
	at         time.Time
}

// fakeDetector records what the chain feeds it.
type fakeDetector struct {
	mu    sync.Mutex
	calls []detectorCall
}

func (f *fakeDetector) Heartbeats(term int64, datanodeID uint64, regionIDs []uint64, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, detectorCall{term, datanodeID, regionIDs, at})
}

func (f *fakeDetector) take() []detectorCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

// cannedLeaser answers with lease, or err.
type cannedLeaser struct {
	lease *metapb.RegionLease
	err   error
}

func (f cannedLeaser) Lease(context.Context, int64, kv.Backend, uint64, *metapb.HeartbeatRequest) (*metapb.RegionLease, error) {
	return f.lease, f.err
}

func withDetector(t *testing.T, leaser RegionLeaser) (*testBundle, *fakeDetector) {
	t.Helper()
	b := setup(t)
	fd := &fakeDetector{}
	o := b.svc.opts
	o.RegionLeaser, o.FailureDetector = leaser, fd
	svc, err := New(o)
	require.NoError(t, err)
	b.svc = svc
	return b, fd
}

func beatWith(id uint64, regions ...*metapb.RegionStat) *metapb.HeartbeatRequest {
	req := datanodeBeat(id, 1)
	req.RegionStats = regions
	return req
}

func stat(id uint64, role metapb.RegionRole) *metapb.RegionStat {
	return &metapb.RegionStat{RegionId: id, Role: role}
}

func TestRegionFailureFeedsLeaderRegions(t *testing.T) {
	t.Parallel()
	b, fd := withDetector(t, nil)
	b.lead(t, 5)
	defer b.svc.Stop()
	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 7))
	require.NoError(t, err)
	defer sess.Close()
	ctx := context.Background()

	sess.Handle(ctx, &metapb.HeartbeatRequest{Header: hdr(metapb.Role_DATANODE, 7)}, true)
	require.Empty(t, fd.take(), "a handshake carries no stat")

	sess.Handle(ctx, beatWith(7,
		stat(1, metapb.RegionRole_Leader), stat(2, metapb.RegionRole_Follower), stat(3, metapb.RegionRole_StagingLeader),
		stat(4, metapb.RegionRole_DowngradingLeader), stat(1, metapb.RegionRole_Leader),
	), false)
	require.Equal(t, []detectorCall{{term: 5, datanodeID: 7, regionIDs: []uint64{1, 3, 4}, at: b.now}}, fd.take(),
		"without a lease the reported role decides; a region reported twice is fed once")

	sess.Handle(ctx, beatWith(7, stat(2, metapb.RegionRole_Follower)), false)
	require.Empty(t, fd.take(), "a datanode that only follows is not fed")

	reply := beatWith(7, stat(1, metapb.RegionRole_Leader))
	reply.MailboxMessage = &metapb.MailboxMessage{Id: 1}
	sess.Handle(ctx, reply, false)
	require.Empty(t, fd.take(), "a mailbox reply ends the chain before")
}

func TestRegionFailureFollowsTheLease(t *testing.T) {
	t.Parallel()
	lease := &metapb.RegionLease{
		Regions: []*metapb.GrantedRegion{
			{RegionId: 1, Role: metapb.RegionRole_Leader},
			{RegionId: 2, Role: metapb.RegionRole_Follower}, // the route has it follow
			{RegionId: 4, Role: metapb.RegionRole_DowngradingLeader},
			{RegionId: 5, Role: metapb.RegionRole_Leader}, // the keeper's role
		},
		CloseableRegionIds: []uint64{3},
	}
	b, fd := withDetector(t, cannedLeaser{lease: lease})
	b.lead(t, 2)
	defer b.svc.Stop()
	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 8))
	require.NoError(t, err)
	defer sess.Close()
	sess.Handle(context.Background(), beatWith(8,
		stat(1, metapb.RegionRole_Leader), stat(2, metapb.RegionRole_Leader), stat(3, metapb.RegionRole_Leader),
		stat(4, metapb.RegionRole_DowngradingLeader), stat(5, metapb.RegionRole_Follower),
	), false)
	require.Equal(t, []detectorCall{{term: 2, datanodeID: 8, regionIDs: []uint64{1, 4, 5}, at: b.now}}, fd.take())
}

func TestRegionFailureWithALeaseError(t *testing.T) {
	t.Parallel()
	b, fd := withDetector(t, cannedLeaser{err: errors.New("routes unreadable")})
	b.lead(t, 3)
	defer b.svc.Stop()
	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 9))
	require.NoError(t, err)
	defer sess.Close()
	sess.Handle(context.Background(), beatWith(9, stat(1, metapb.RegionRole_Leader)), false)
	require.Equal(t, []detectorCall{{term: 3, datanodeID: 9, regionIDs: []uint64{1}, at: b.now}}, fd.take(),
		"a metadata hiccup must not look like a silent datanode")
}

func TestRegionFailureNotOnAFollowerNorForOtherRoles(t *testing.T) {
	t.Parallel()
	b, fd := withDetector(t, nil)
	sess, err := b.svc.Open(hdr(metapb.Role_DATANODE, 7))
	require.NoError(t, err)
	require.True(t, IsNotLeader(sess.Handle(context.Background(), beatWith(7, stat(1, metapb.RegionRole_Leader)), true)))
	sess.Close()
	require.Empty(t, fd.take(), "a node that does not lead feeds nothing")

	b.lead(t, 1)
	defer b.svc.Stop()
	fl, err := b.svc.Open(hdr(metapb.Role_FLOWNODE, 3))
	require.NoError(t, err)
	defer fl.Close()
	req := beatWith(3, stat(1, metapb.RegionRole_Leader))
	req.Header = hdr(metapb.Role_FLOWNODE, 3)
	fl.Handle(context.Background(), req, true)
	require.Empty(t, fd.take(), "datanodes only")
}
