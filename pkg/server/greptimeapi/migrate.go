package greptimeapi

import (
	"context"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Migrations submits region migrations; *migration.Manager satisfies it.
type Migrations interface {
	Submit(ctx context.Context, t migration.Task) (procedure.ID, error)
	// DatanodeAlive reports whether the datanode's lease on this leader is
	// current.
	DatanodeAlive(ctx context.Context, id uint64) (greptimekey.Peer, bool, error)
}

var _ Migrations = (*migration.Manager)(nil)

// migratingProcedureService is ProcedureService with its `migrate` method.
type migratingProcedureService struct {
	*procedureService
	migrations Migrations
}

// Migrate is the `migrate` method, GreptimeDB's manual region migration
// (service/procedure.rs migrate): both datanodes must have a current lease,
// the task is checked against the route and submitted, and the answer is
// the procedure's id once it is stored; ProcedureService.query follows it.
// timeout_secs 0 means migration.DefaultTimeout (GreptimeDB would run with
// no time at all).
func (s *migratingProcedureService) Migrate(ctx context.Context, req *metapb.MigrateRegionRequest) (*metapb.MigrateRegionResponse, error) {
	if !leads(s.core) {
		return &metapb.MigrateRegionResponse{Header: heartbeat.NotLeaderHeader()}, nil
	}
	if req.GetHeader() == nil {
		return nil, statuscode.MissingRequestHeader()
	}
	if s.migrations == nil {
		return nil, statuscode.Errorf(statuscode.Unsupported, "Unsupported operation: region migration is not enabled on this node")
	}
	for _, id := range []uint64{req.GetFromPeer(), req.GetToPeer()} {
		_, alive, err := s.migrations.DatanodeAlive(ctx, id)
		if err != nil {
			return nil, err
		}
		if !alive {
			return nil, migration.PeerUnavailable(id)
		}
	}
	id, err := s.migrations.Submit(ctx, migration.Task{
		RegionID: req.GetRegionId(), From: req.GetFromPeer(), To: req.GetToPeer(),
		Timeout: time.Duration(req.GetTimeoutSecs()) * time.Second, Reason: migration.ReasonManual,
	})
	if err != nil {
		return nil, err
	}
	// A successful answer has no header, as GreptimeDB's.
	return &metapb.MigrateRegionResponse{Pid: pid(id)}, nil
}
