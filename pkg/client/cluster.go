package client

import (
	"context"
	"time"

	"google.golang.org/grpc"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
)

// Leader is the current leader of the cluster.
type Leader struct {
	// Addr is the leader's advertised gRPC address (host:port).
	Addr string `json:"addr"`
	// Term is the election term it holds.
	Term int64 `json:"term"`
}

// Member is a live metasrv node, as GreptimeDB's MetasrvNodeInfo describes it.
type Member struct {
	Addr               string    `json:"addr"`
	Version            string    `json:"version"`
	GitCommit          string    `json:"git_commit"`
	StartTime          time.Time `json:"start_time"`
	TotalCPUMillicores int64     `json:"total_cpu_millicores"`
	TotalMemoryBytes   int64     `json:"total_memory_bytes"`
	CPUUsageMillicores int64     `json:"cpu_usage_millicores"`
	MemoryUsageBytes   int64     `json:"memory_usage_bytes"`
	Hostname           string    `json:"hostname"`
	IsLeader           bool      `json:"is_leader"`
}

// Leader asks the cluster who leads now (not the client's cached belief).
func (c *Client) Leader(ctx context.Context) (Leader, error) {
	resp, err := invoke(ctx, c, toAny, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.LeaderResponse, error) {
		return metasrvv1.NewClusterClient(cc).Leader(ctx, &metasrvv1.LeaderRequest{Header: c.reqHeader})
	})
	if err != nil {
		return Leader{}, err
	}
	l := Leader{Addr: resp.GetAddress(), Term: resp.GetTerm()}
	c.setLeader(l.Addr, l.Term)
	return l, nil
}

// Members lists every live metasrv node; any node can answer.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	resp, err := invoke(ctx, c, toAny, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (*metasrvv1.MembersResponse, error) {
		return metasrvv1.NewClusterClient(cc).Members(ctx, &metasrvv1.MembersRequest{Header: c.reqHeader})
	})
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(resp.GetMembers()))
	for _, m := range resp.GetMembers() {
		member := Member{
			Addr:               m.GetAddr(),
			Version:            m.GetVersion(),
			GitCommit:          m.GetGitCommit(),
			TotalCPUMillicores: m.GetTotalCpuMillicores(),
			TotalMemoryBytes:   m.GetTotalMemoryBytes(),
			CPUUsageMillicores: m.GetCpuUsageMillicores(),
			MemoryUsageBytes:   m.GetMemoryUsageBytes(),
			Hostname:           m.GetHostname(),
			IsLeader:           m.GetIsLeader(),
		}
		if m.GetStartTime() != nil {
			member.StartTime = m.GetStartTime().AsTime()
		}
		out = append(out, member)
	}
	return out, nil
}
