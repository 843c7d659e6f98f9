package greptimeapi

import (
	"context"

	"google.golang.org/grpc"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	_ "github.com/pgmetasrv/metasrv/pkg/grpczstd" // GreptimeDB's clients send zstd
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// Core is what the services need from the metasrv core; *metasrv.Metasrv
// satisfies it.
type Core interface {
	// LeaderBackend is the leader's store of the current term (cache reads,
	// fenced writes), or an error wrapping *election.NotLeaderError.
	LeaderBackend(ctx context.Context) (kv.Backend, error)
	// SerializableBackend reads PostgreSQL directly, on any node.
	SerializableBackend() kv.Backend
	// MemoryBackend is the in-memory KV of the current term.
	MemoryBackend() kv.Backend
	// HeaderInfo is this node's view of the leadership, from memory.
	HeaderInfo() metasrv.HeaderInfo
}

var _ Core = (*metasrv.Metasrv)(nil)

// Elector is what AskLeader and MetasrvPeers read of the election; every
// election.Elector satisfies it.
type Elector interface {
	Leader(ctx context.Context) (election.Leader, error)
	Candidates(ctx context.Context) ([]election.NodeInfo, error)
}

// Deps are what the services are built from; all are required.
type Deps struct {
	Core      Core
	Elector   Elector
	Heartbeat *heartbeat.Service
	// Forward returns a Store client of the leader at addr, for a write that
	// reached this node while it does not lead.
	Forward func(ctx context.Context, addr string) (metapb.StoreClient, error)
	// DDL runs ProcedureService.ddl; Procedures answers query and details.
	DDL        DDL
	Procedures Procedures
	// Migrations runs ProcedureService.migrate; nil answers it Unsupported.
	Migrations Migrations
}

// Register adds the greptime.v1.meta services to r. The server must chain
// apierr's interceptors: the services return plain Go errors.
func Register(r grpc.ServiceRegistrar, d Deps) {
	metapb.RegisterHeartbeatServer(r, &heartbeatService{core: d.Core, leaders: &leaderLookup{elector: d.Elector}, sessions: d.Heartbeat})
	metapb.RegisterStoreServer(r, &storeService{core: d.Core, forward: d.Forward})
	metapb.RegisterClusterServer(r, &clusterService{core: d.Core, elector: d.Elector})
	metapb.RegisterConfigServer(r, configService{})
	metapb.RegisterProcedureServiceServer(r, &migratingProcedureService{&procedureService{core: d.Core, ddl: d.DDL, procs: d.Procedures}, d.Migrations})
}

// leads reports whether this node trusts, right now, that it leads.
func leads(c Core) bool { return c.HeaderInfo().Term != 0 }

func okHeader() *metapb.ResponseHeader { return heartbeat.OKHeader() }

func kvsToPB(kvs []kv.KeyValue) []*metapb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*metapb.KeyValue, len(kvs))
	for i, p := range kvs {
		out[i] = &metapb.KeyValue{Key: p.Key, Value: p.Value}
	}
	return out
}

func kvToPB(p *kv.KeyValue) *metapb.KeyValue {
	if p == nil {
		return nil
	}
	return &metapb.KeyValue{Key: p.Key, Value: p.Value}
}

func kvsFromPB(kvs []*metapb.KeyValue) []kv.KeyValue {
	out := make([]kv.KeyValue, 0, len(kvs))
	for _, p := range kvs {
		out = append(out, kv.KeyValue{Key: p.GetKey(), Value: p.GetValue()})
	}
	return out
}

// configService answers PullConfig: GreptimeDB's metasrv sends its plugins'
// options, and metasrv has no plugins, so the payload is empty, as
// GreptimeDB's open-source build's is. Any node answers.
type configService struct {
	metapb.UnimplementedConfigServer
}

func (configService) PullConfig(context.Context, *metapb.PullConfigRequest) (*metapb.PullConfigResponse, error) {
	return &metapb.PullConfigResponse{Header: okHeader()}, nil
}
