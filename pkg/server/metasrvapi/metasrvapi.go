package metasrvapi

import (
	"google.golang.org/grpc"

	metasrvv1 "github.com/pgmetasrv/metasrv/pkg/api/metasrv/v1"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// HeaderSource reports what every response header carries. It is called
// once per response, so it must answer from memory (the core's cached view
// of the election), never from a query; *metasrv.Metasrv satisfies it.
type HeaderSource interface {
	HeaderInfo() metasrv.HeaderInfo
}

var _ Router = (*metasrv.Metasrv)(nil)

// headerPB is the wire form of h.
func headerPB(h metasrv.HeaderInfo) *metasrvv1.ResponseHeader {
	return &metasrvv1.ResponseHeader{NodeAddr: h.NodeAddr, LeaderAddr: h.LeaderAddr, Term: h.Term}
}

// Deps are what the metasrv.v1 services are built from. Every field is
// required unless marked otherwise.
type Deps struct {
	// Core routes the Store service's calls and answers every header;
	// *metasrv.Metasrv satisfies it.
	Core Router
	// Elector answers the Cluster service; any election.Elector satisfies it.
	Elector Elector
	// Procedures is the procedure manager; *procedure.Manager satisfies it.
	Procedures ProcedureManager
	// MaxResponseSize, optional, is the gRPC server's max send message size
	// (see the StoreOption of that name); 0 sizes no response.
	MaxResponseSize int
}

// Register adds every metasrv.v1 service to r. The server must chain
// apierr's interceptors: the services return plain Go errors.
func Register(r grpc.ServiceRegistrar, d Deps) {
	NewStore(d.Core, MaxResponseSize(d.MaxResponseSize)).Register(r)
	NewCluster(d.Elector, d.Core).Register(r)
	NewProcedure(d.Procedures, d.Core).Register(r)
}
