package greptimeapi

import (
	"context"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// clusterService is greptime.v1.meta.Cluster: reads of the leader's
// in-memory KV (leases, node info, stats) and the list of metasrv peers. A
// node that does not lead answers OK with the NotLeader header, on which
// GreptimeDB's cluster client asks for the leader again.
type clusterService struct {
	metapb.UnimplementedClusterServer
	core    Core
	elector Elector
}

func (s *clusterService) BatchGet(ctx context.Context, req *metapb.BatchGetRequest) (*metapb.BatchGetResponse, error) {
	if !leads(s.core) {
		return &metapb.BatchGetResponse{Header: heartbeat.NotLeaderHeader()}, nil
	}
	resp, err := s.core.MemoryBackend().BatchGet(ctx, kv.BatchGetRequest{Keys: req.GetKeys()})
	if err != nil {
		return nil, err
	}
	return &metapb.BatchGetResponse{Header: okHeader(), Kvs: kvsToPB(resp.Kvs)}, nil
}

func (s *clusterService) Range(ctx context.Context, req *metapb.RangeRequest) (*metapb.RangeResponse, error) {
	if !leads(s.core) {
		return &metapb.RangeResponse{Header: heartbeat.NotLeaderHeader()}, nil
	}
	resp, err := s.core.MemoryBackend().Range(ctx, kv.RangeRequest{Key: req.GetKey(), RangeEnd: req.GetRangeEnd(), Limit: req.GetLimit(), KeysOnly: req.GetKeysOnly()})
	if err != nil {
		return nil, err
	}
	return &metapb.RangeResponse{Header: okHeader(), Kvs: kvsToPB(resp.Kvs), More: resp.More}, nil
}

// MetasrvPeers names this node (the leader) and every other live candidate.
func (s *clusterService) MetasrvPeers(ctx context.Context, _ *metapb.MetasrvPeersRequest) (*metapb.MetasrvPeersResponse, error) {
	h := s.core.HeaderInfo()
	if h.Term == 0 {
		return &metapb.MetasrvPeersResponse{Header: heartbeat.NotLeaderHeader()}, nil
	}
	nodes, err := s.elector.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	out := &metapb.MetasrvPeersResponse{Header: okHeader()}
	for _, n := range nodes {
		if n.Addr == h.NodeAddr {
			out.Leader = metasrvNodeInfo(n)
			continue
		}
		out.Followers = append(out.Followers, metasrvNodeInfo(n))
	}
	if out.Leader == nil {
		out.Leader = metasrvNodeInfo(election.NodeInfo{Addr: h.NodeAddr})
	}
	return out, nil
}

// metasrvNodeInfo fills both the deprecated top-level fields and info, as
// GreptimeDB's conversion does; the metasrv peer id is always 0.
func metasrvNodeInfo(n election.NodeInfo) *metapb.MetasrvNodeInfo {
	return &metapb.MetasrvNodeInfo{
		Peer:        &metapb.Peer{Addr: n.Addr},
		Version:     n.Version,
		GitCommit:   n.GitCommit,
		StartTimeMs: uint64(max(n.StartTimeMs, 0)),
		Cpus:        uint32(max(n.TotalCPUMillicores, 0)),
		MemoryBytes: uint64(max(n.TotalMemoryBytes, 0)),
		Info: &metapb.NodeInfo{
			Version:            n.Version,
			GitCommit:          n.GitCommit,
			StartTimeMs:        uint64(max(n.StartTimeMs, 0)),
			Cpus:               uint32(max(n.TotalCPUMillicores, 0)),
			MemoryBytes:        uint64(max(n.TotalMemoryBytes, 0)),
			Hostname:           n.Hostname,
			TotalCpuMillicores: n.TotalCPUMillicores,
			TotalMemoryBytes:   n.TotalMemoryBytes,
			CpuUsageMillicores: n.CPUUsageMillicores,
			MemoryUsageBytes:   n.MemoryUsageBytes,
		},
	}
}
