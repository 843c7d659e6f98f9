package greptimefake_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/grpczstd"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Region ids of table 1024.
var (
	r1 = uint64(instruction.NewRegionID(1024, 1))
	r2 = uint64(instruction.NewRegionID(1024, 2))
	r3 = uint64(instruction.NewRegionID(1024, 3))
	r4 = uint64(instruction.NewRegionID(1024, 4))
)

// hourConfig beats once an hour: the node handshakes, its lease countdowns
// start hours away, and no beat comes unless a test sends one.
func hourConfig() *metapb.HeartbeatConfig {
	return &metapb.HeartbeatConfig{HeartbeatIntervalMs: uint64(time.Hour.Milliseconds()), RetryIntervalMs: 20}
}

// startRegionNode starts a region-serving datanode against srv and returns
// it with a client of its region server.
func startRegionNode(t *testing.T, srv *fakeMeta, cfg greptimefake.Config) (*greptimefake.Node, regionpb.RegionClient) {
	t.Helper()
	cfg.Endpoints, cfg.Role, cfg.RegionServer = []string{srv.addr}, greptimefake.Datanode, true
	if cfg.ID == 0 {
		cfg.ID = 3
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	n := startNode(t, cfg)
	// A handshake signal comes once the stream is the node's, so that
	// SendMailboxReply has one; with the beat sent right after it out of the
	// way, the node sends nothing the test does not make it send (the tests
	// using this beat once an hour).
	recv(t, n.Handshakes(), "handshake")
	first := recv(t, srv.requests, "first beat")
	require.Empty(t, first.GetRegionStats())
	require.Equal(t, n.PeerAddr(), first.GetPeer().GetAddr(), "the peer is the region server")
	cc, err := grpc.NewClient(n.PeerAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return n, regionpb.NewRegionClient(cc)
}

// call sends req and returns its error and the answer's trailer.
func call(t *testing.T, c regionpb.RegionClient, req *regionpb.RegionRequest, opts ...grpc.CallOption) (metadata.MD, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var trailer metadata.MD
	resp, err := c.Handle(ctx, req, append(opts, grpc.Trailer(&trailer))...)
	if err == nil {
		require.Zero(t, resp.GetHeader().GetStatus().GetStatusCode())
		require.Zero(t, resp.GetAffectedRows())
	}
	return trailer, err
}

// requireCode checks err's gRPC code and its x-greptime-err-code trailer.
func requireCode(t *testing.T, err error, trailer metadata.MD, want statuscode.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want.GRPC(), status.Code(err), "%v", err)
	got, ok := statuscode.FromMetadata(trailer)
	require.True(t, ok, "no %s in %v", statuscode.HeaderErrorCode, trailer)
	require.Equal(t, want, got)
}

func createReq(id uint64) *regionpb.RegionRequest {
	return &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Create{Create: &regionpb.CreateRequest{RegionId: id, Engine: "mito", Path: "greptime/public"}}}
}

func dropReq(id uint64) *regionpb.RegionRequest {
	return &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Drop{Drop: &regionpb.DropRequest{RegionId: id}}}
}

func openReq(id uint64) *regionpb.RegionRequest {
	return &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Open{Open: &regionpb.OpenRequest{RegionId: id, Engine: "mito", Path: "greptime/public"}}}
}

func closeReq(id uint64) *regionpb.RegionRequest {
	return &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Close{Close: &regionpb.CloseRequest{RegionId: id}}}
}

// event waits for the next region event and checks it.
func event(t *testing.T, n *greptimefake.Node, kind greptimefake.RegionEventKind, id uint64, wantErr bool) greptimefake.RegionEvent {
	t.Helper()
	ev := recv(t, n.RegionEvents(), "region event")
	require.Equal(t, kind, ev.Kind)
	require.Equal(t, id, ev.RegionID)
	require.NotNil(t, ev.Request)
	require.Equal(t, wantErr, ev.Err != nil, "event error %v", ev.Err)
	return ev
}

func TestRegionServerRequests(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	n, c := startRegionNode(t, srv, greptimefake.Config{})

	_, err := call(t, c, createReq(r1), grpc.UseCompressor(grpczstd.Name))
	require.NoError(t, err)
	ev := event(t, n, greptimefake.RegionCreate, r1, false)
	require.Equal(t, "greptime/public", ev.Request.GetCreate().GetPath())
	_, err = call(t, c, createReq(r1)) // the same region again: done already
	require.NoError(t, err)
	event(t, n, greptimefake.RegionCreate, r1, false)

	_, err = call(t, c, openReq(r2))
	require.NoError(t, err)
	event(t, n, greptimefake.RegionOpen, r2, false)
	require.Equal(t, map[uint64]greptimefake.RegionRole{r1: greptimefake.RegionLeader, r2: greptimefake.RegionFollower}, n.Regions())
	_, err = call(t, c, openReq(r1)) // open leaves an open region as it is
	require.NoError(t, err)
	event(t, n, greptimefake.RegionOpen, r1, false)
	require.Equal(t, greptimefake.RegionLeader, n.Regions()[r1])

	// The engine drops only writable regions.
	trailer, err := call(t, c, dropReq(r2))
	requireCode(t, err, trailer, statuscode.RegionNotReady)
	require.Contains(t, status.Convert(err).Message(), "Follower")
	event(t, n, greptimefake.RegionDrop, r2, true)

	_, err = call(t, c, dropReq(r1))
	require.NoError(t, err)
	event(t, n, greptimefake.RegionDrop, r1, false)
	// v1.1.4's region server answers the drop of an unknown region with 0 rows.
	_, err = call(t, c, dropReq(r1))
	require.NoError(t, err)
	event(t, n, greptimefake.RegionDrop, r1, false)

	_, err = call(t, c, closeReq(r3)) // closing a missing region is done
	require.NoError(t, err)
	event(t, n, greptimefake.RegionClose, r3, false)
	_, err = call(t, c, closeReq(r2))
	require.NoError(t, err)
	event(t, n, greptimefake.RegionClose, r2, false)
	require.Empty(t, n.Regions())

	for _, req := range []*regionpb.RegionRequest{
		{Body: &regionpb.RegionRequest_Alter{Alter: &regionpb.AlterRequest{RegionId: r1}}},
		{Body: &regionpb.RegionRequest_Truncate{Truncate: &regionpb.TruncateRequest{RegionId: r1}}},
	} {
		trailer, err = call(t, c, req)
		requireCode(t, err, trailer, statuscode.RegionNotFound)
		require.Equal(t, codes.NotFound, status.Code(err))
		recv(t, n.RegionEvents(), "alter or truncate event")
	}
}

func TestRegionServerBatches(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	n, c := startRegionNode(t, srv, greptimefake.Config{})

	creates := &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Creates{Creates: &regionpb.CreateRequests{Requests: []*regionpb.CreateRequest{
		{RegionId: r1, Engine: "metric"}, {RegionId: r2, Engine: "metric"}, {RegionId: r3, Engine: "metric"},
	}}}}
	_, err := call(t, c, creates)
	require.NoError(t, err)
	for _, id := range []uint64{r1, r2, r3} {
		ev := event(t, n, greptimefake.RegionCreate, id, false)
		require.True(t, proto.Equal(creates, ev.Request), "the event carries the request")
	}

	drops := func(ids ...uint64) *regionpb.RegionRequest {
		d := &regionpb.DropRequests{}
		for _, id := range ids {
			d.Requests = append(d.Requests, &regionpb.DropRequest{RegionId: id})
		}
		return &regionpb.RegionRequest{Body: &regionpb.RegionRequest_Drops{Drops: d}}
	}
	// The first region unknown: the batch is answered with 0 rows, as is.
	_, err = call(t, c, drops(r4, r1))
	require.NoError(t, err)
	event(t, n, greptimefake.RegionDrop, r4, false)
	event(t, n, greptimefake.RegionDrop, r1, false)
	require.Len(t, n.Regions(), 3)

	// Later, an unknown region fails the batch after the ones before it.
	trailer, err := call(t, c, drops(r1, r4, r2))
	requireCode(t, err, trailer, statuscode.RegionNotFound)
	for _, id := range []uint64{r1, r4, r2} {
		event(t, n, greptimefake.RegionDrop, id, true)
	}
	require.Equal(t, map[uint64]greptimefake.RegionRole{r2: greptimefake.RegionLeader, r3: greptimefake.RegionLeader}, n.Regions())
}

func TestOnRegionRequest(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	entered, release := make(chan uint64, 1), make(chan struct{})
	n, c := startRegionNode(t, srv, greptimefake.Config{
		OnRegionRequest: func(ctx context.Context, req *regionpb.RegionRequest) error {
			switch req.GetCreate().GetRegionId() {
			case r1:
				return statuscode.Errorf(statuscode.RegionBusy, "region busy")
			case r2:
				return status.Error(codes.Unavailable, "datanode restarting")
			case r3:
				entered <- r3
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		},
	})

	trailer, err := call(t, c, createReq(r1))
	requireCode(t, err, trailer, statuscode.RegionBusy)
	require.Equal(t, "region busy", status.Convert(err).Message())
	event(t, n, greptimefake.RegionCreate, r1, true)

	trailer, err = call(t, c, createReq(r2))
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, ok := statuscode.FromMetadata(trailer)
	require.False(t, ok, "a plain status carries no GreptimeDB code")
	event(t, n, greptimefake.RegionCreate, r2, true)
	require.Empty(t, n.Regions(), "a refused request is not executed")

	done := make(chan error, 1)
	go func() { // no require off the test's goroutine
		_, err := c.Handle(t.Context(), createReq(r3))
		done <- err
	}()
	recv(t, entered, "held request")
	require.Empty(t, n.Regions(), "a held request is not executed yet")
	close(release)
	require.NoError(t, recv(t, done, "released answer"))
	event(t, n, greptimefake.RegionCreate, r3, false)
	require.Equal(t, map[uint64]greptimefake.RegionRole{r3: greptimefake.RegionLeader}, n.Regions())
}

// A blocked OnRegionRequest is cancelled by Stop, which waits for it.
func TestStopCancelsRegionRequests(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	entered := make(chan struct{}, 1)
	n, c := startRegionNode(t, srv, greptimefake.Config{
		OnRegionRequest: func(ctx context.Context, _ *regionpb.RegionRequest) error {
			entered <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		},
	})
	done := make(chan error, 1)
	go func() { // no require off the test's goroutine
		_, err := c.Handle(t.Context(), createReq(r1))
		done <- err
	}()
	recv(t, entered, "held request")
	n.Stop()
	require.Error(t, recv(t, done, "answer"))
}

func TestRegionServerConfig(t *testing.T) {
	t.Parallel()
	_, err := greptimefake.New(greptimefake.Config{Endpoints: []string{"x:1"}, Role: greptimefake.Frontend, RegionServer: true})
	require.Error(t, err)
	_, err = greptimefake.New(greptimefake.Config{Endpoints: []string{"x:1"}, Role: greptimefake.Datanode, RegionServer: true,
		RegionStats: func() []*metapb.RegionStat { return nil }})
	require.Error(t, err)

	n, err := greptimefake.New(greptimefake.Config{Endpoints: []string{"x:1"}, Role: greptimefake.Datanode, Addr: "256.0.0.1:1", RegionServer: true})
	require.NoError(t, err)
	require.Error(t, n.Start(context.Background()), "an address it cannot bind")
	n.Stop()

	plain, err := greptimefake.New(greptimefake.Config{Endpoints: []string{"x:1"}, Role: greptimefake.Datanode, Addr: "10.0.0.1:4001"})
	require.NoError(t, err)
	require.Nil(t, plain.Regions())
	require.Nil(t, plain.RegionEvents())
	require.Equal(t, "10.0.0.1:4001", plain.PeerAddr())
	plain.Stop()
}

// The beats of a region server report the regions it holds.
func TestRegionStatsInBeats(t *testing.T) {
	t.Parallel()
	srv := newFakeMeta(t, hourConfig())
	n, c := startRegionNode(t, srv, greptimefake.Config{ID: 8})

	for _, r := range []*regionpb.RegionRequest{createReq(r1), openReq(r2),
		{Body: &regionpb.RegionRequest_Create{Create: &regionpb.CreateRequest{RegionId: r3, Engine: "metric"}}}} {
		_, err := call(t, c, r)
		require.NoError(t, err)
	}
	n.SetLastEntryID(r2, 42)
	beat := freshBeat(t, n, srv, 1)

	stats := beat.GetRegionStats()
	require.Len(t, stats, 3)
	for i, want := range []struct {
		id     uint64
		engine string
		role   metapb.RegionRole
		entry  uint64
	}{{r1, "mito", metapb.RegionRole_Leader, 0}, {r2, "mito", metapb.RegionRole_Follower, 42}, {r3, "metric", metapb.RegionRole_Leader, 0}} {
		st := stats[i]
		require.Equal(t, want.id, st.GetRegionId())
		require.Equal(t, want.engine, st.GetEngine())
		require.Equal(t, want.role, st.GetRole())
		require.Positive(t, st.GetApproximateBytes())
		var statistic struct {
			ManifestSize int64                      `json:"manifest_size"`
			Manifest     map[string]json.RawMessage `json:"manifest"`
		}
		require.NoError(t, json.Unmarshal(st.GetExtensions()[greptimefake.RegionStatisticKey], &statistic))
		require.Equal(t, st.GetApproximateBytes(), statistic.ManifestSize)
		if want.engine == "mito" {
			require.JSONEq(t, `{"manifest_version":0,"flushed_entry_id":`+jsonNumber(want.entry)+`,"file_removed_cnt":0}`, string(statistic.Manifest["Mito"]))
		} else {
			require.Contains(t, statistic.Manifest, "Metric")
		}
	}
}

// freshBeat makes a node that beats once an hour send a beat now and
// returns it: the fake metasrv ends the stream at the node's next request
// (a mailbox reply with id mark, which the caller picks unique), the
// datanode reconnects at once and beats right after the handshake.
func freshBeat(t *testing.T, n *greptimefake.Node, srv *fakeMeta, mark uint64) *metapb.HeartbeatRequest {
	t.Helper()
	srv.actions <- actClose
	require.NoError(t, n.SendMailboxReply(&metapb.MailboxMessage{Id: mark}))
	for req := recv(t, srv.requests, "the reply the stream ends on"); req.GetMailboxMessage().GetId() != mark; {
		req = recv(t, srv.requests, "the reply the stream ends on")
	}
	beat := recv(t, srv.requests, "the beat after the reconnect")
	recv(t, n.Handshakes(), "handshake of the reconnect")
	return beat
}

func jsonNumber(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
