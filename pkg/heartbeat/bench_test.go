package heartbeat

import (
	"context"
	"testing"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// BenchmarkDatanodeHeartbeat is the leader's work for one regular datanode
// heartbeat with 10 regions: the chain, its JSON and its in-memory writes.
func BenchmarkDatanodeHeartbeat(b *testing.B) {
	t := &testing.T{}
	tb := setup(t)
	tb.lead(t, 1)
	defer tb.svc.Stop()
	sess, err := tb.svc.Open(hdr(metapb.Role_DATANODE, 7))
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	req := datanodeBeat(7, 100)
	for i := range 10 {
		req.RegionStats = append(req.RegionStats, &metapb.RegionStat{RegionId: uint64(i), Engine: "mito", Role: metapb.RegionRole_Leader})
	}
	ctx := context.Background()
	sess.Handle(ctx, &metapb.HeartbeatRequest{Header: req.Header}, true)
	b.ReportAllocs()
	for b.Loop() {
		sess.Handle(ctx, req, false)
	}
}
