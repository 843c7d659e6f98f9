package metasrvapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/election"
)

// The metasrv.v1.Cluster service: who leads, and which nodes are live. Every
// node serves it; it is how clients find the leader.

// Elector is the part of election.Elector the Cluster service reads; any
// election.Elector satisfies it.
type Elector interface {
	// Leader reports the current leader, or an error wrapping
	// election.ErrNoLeader.
	Leader(ctx context.Context) (election.Leader, error)
	// Candidates lists the node info of every live candidate.
	Candidates(ctx context.Context) ([]election.NodeInfo, error)
}

// ClusterService implements metasrvv1.ClusterServer.
type ClusterService struct {
	metasrvv1.UnimplementedClusterServer
	elector Elector
	header  HeaderSource
}

var _ metasrvv1.ClusterServer = (*ClusterService)(nil)

// NewCluster returns the Cluster service answering from elector, with
// response headers from header.
func NewCluster(elector Elector, header HeaderSource) *ClusterService {
	return &ClusterService{elector: elector, header: header}
}

// Register adds the service to a gRPC server.
func (s *ClusterService) Register(r grpc.ServiceRegistrar) {
	metasrvv1.RegisterClusterServer(r, s)
}

func (s *ClusterService) Leader(ctx context.Context, _ *metasrvv1.LeaderRequest) (*metasrvv1.LeaderResponse, error) {
	l, err := s.elector.Leader(ctx)
	if err == nil && l.Addr == "" {
		// A leader without an address cannot be followed: to a client it is
		// the same as none.
		err = election.ErrNoLeader
	}
	if err != nil {
		return nil, err
	}
	return &metasrvv1.LeaderResponse{Header: headerPB(s.header.HeaderInfo()), Address: l.Addr, Term: l.Term}, nil
}

func (s *ClusterService) Members(ctx context.Context, _ *metasrvv1.MembersRequest) (*metasrvv1.MembersResponse, error) {
	nodes, err := s.elector.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	leader, err := s.elector.Leader(ctx)
	switch {
	case errors.Is(err, election.ErrNoLeader):
		leader = election.Leader{}
	case err != nil:
		return nil, err
	}
	out := &metasrvv1.MembersResponse{Header: headerPB(s.header.HeaderInfo())}
	seenLeader := false
	for _, n := range nodes {
		isLeader := leader.Addr != "" && n.Addr == leader.Addr
		seenLeader = seenLeader || isLeader
		out.Members = append(out.Members, nodeInfoToPB(n, isLeader))
	}
	// The leader's candidate record can lapse (a slow renewal) while it still
	// leads; it is still a member.
	if !seenLeader && leader.Addr != "" {
		info := leader.Info
		if info.Addr == "" {
			info.Addr = leader.Addr
		}
		out.Members = append(out.Members, nodeInfoToPB(info, true))
	}
	return out, nil
}

// nodeInfoToPB converts a node info to its wire form.
func nodeInfoToPB(n election.NodeInfo, isLeader bool) *metasrvv1.NodeInfo {
	out := &metasrvv1.NodeInfo{
		Addr:               n.Addr,
		Version:            n.Version,
		GitCommit:          n.GitCommit,
		TotalCpuMillicores: n.TotalCPUMillicores,
		TotalMemoryBytes:   n.TotalMemoryBytes,
		CpuUsageMillicores: n.CPUUsageMillicores,
		MemoryUsageBytes:   n.MemoryUsageBytes,
		Hostname:           n.Hostname,
		IsLeader:           isLeader,
	}
	if n.StartTimeMs > 0 {
		out.StartTime = timestamppb.New(time.UnixMilli(n.StartTimeMs))
	}
	return out
}
