package ddl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/selector"
	"github.com/pgmetasrv/metasrv/pkg/sequence"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Regions sends region requests to datanodes; *regionclient.Client
// satisfies it.
type Regions interface {
	Handle(ctx context.Context, addr string, req *regionpb.RegionRequest) (*regionpb.RegionResponse, error)
}

// Caches tells the cluster's nodes to drop cached metadata;
// *heartbeat.Service satisfies it (a broadcast on the term's mailbox).
type Caches interface {
	InvalidateCaches(ctx context.Context, term int64, caches []instruction.CacheIdent) error
}

// Detectors are the failure detectors of the leader regions (region
// failover); *region.FailureDetector satisfies it. GreptimeDB's DDL
// registers a new table's regions (so a datanode that dies before its
// first heartbeat with them is noticed) and forgets a dropped table's.
type Detectors interface {
	Register(term int64, regions []region.DetectingRegion, at time.Time) error
	Deregister(term int64, regions []region.DetectingRegion) error
}

// Options configure a Service. Procedures, Selector, Keeper, Regions and
// Caches are required.
type Options struct {
	Logger     *slog.Logger
	Procedures *procedure.Manager
	Selector   selector.Selector
	Keeper     *region.Keeper
	Regions    Regions
	Caches     Caches
	// HeartbeatInterval is the cluster's heartbeat_interval, from which the
	// selector judges which datanodes are alive; 0 is GreptimeDB's default.
	HeartbeatInterval time.Duration
	// MaxTxnOps is the store's max_txn_ops, which bounds the keys one
	// metadata transaction moves; 0 means 128, the default.
	MaxTxnOps int
	// Detectors, when set (enable_region_failover), watch the leader
	// regions of the tables created and stop watching those dropped.
	Detectors Detectors
}

// defaultMaxTxnOps is max_txn_ops's default.
const defaultMaxTxnOps = 128

// Service runs GreptimeDB's DDL as durable procedures. It is a
// metasrv.Listener: it keeps the term it runs in (the term's in-memory KV,
// where the selector reads which datanodes are alive, and its table id
// sequence), and every step checks that it still runs in that term.
type Service struct {
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	term *termState
}

// termState is what one term's DDL shares.
type termState struct {
	id       int64
	store    kv.Backend
	memory   kv.Backend
	tableIDs *sequence.Sequence
	// started is when the term began: its in-memory KV knows every live
	// datanode only once each has heartbeated to it, one datanode lease
	// window later.
	started time.Time
}

var _ metasrv.Listener = (*Service)(nil)

// New checks o and registers the DDL procedures' loaders with o.Procedures.
func New(o Options) (*Service, error) {
	if o.Procedures == nil || o.Selector == nil || o.Keeper == nil || o.Regions == nil || o.Caches == nil {
		return nil, errors.New("ddl: Options.Procedures, Selector, Keeper, Regions and Caches are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = defaultMaxTxnOps
	}
	s := &Service{opts: o, log: o.Logger.With("component", "ddl")}
	loaders := map[string]procedure.Loader{
		typeCreateDatabase: s.loadCreateDatabase,
		typeDropDatabase:   s.loadDropDatabase,
		typeCreateTable:    s.loadCreateTable,
		typeDropTable:      s.loadDropTable,
		typeAlterTable:     s.loadAlterTable,
		typeTruncateTable:  s.loadTruncateTable,
	}
	for name, l := range loaders {
		if err := o.Procedures.RegisterLoader(name, l); err != nil {
			return nil, fmt.Errorf("ddl: %w", err)
		}
	}
	return s, nil
}

// Name identifies the listener in logs.
func (s *Service) Name() string { return "ddl" }

// Start opens term t; it must start before the procedure manager, whose
// resumed procedures need it.
func (s *Service) Start(_ context.Context, t metasrv.Term) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term = &termState{id: t.ID, store: t.Store, memory: t.Memory, tableIDs: sequence.NewTableID(t.Store), started: time.Now()}
	return nil
}

// Stop forgets the term; safe to call twice.
func (s *Service) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term = nil
}

// detect (or, with watch false, forgets) the leader regions of routes in
// the failure detectors, when failover is on. A failure is logged: the
// regions' heartbeats register them anyway.
func (s *Service) detect(term int64, routes []greptimekey.RegionRoute, watch bool) {
	if s.opts.Detectors == nil {
		return
	}
	var pairs []region.DetectingRegion
	for _, r := range routes {
		if r.LeaderPeer != nil {
			pairs = append(pairs, region.DetectingRegion{DatanodeID: r.LeaderPeer.ID, RegionID: r.Region.ID})
		}
	}
	var err error
	if watch {
		err = s.opts.Detectors.Register(term, pairs, time.Now())
	} else {
		err = s.opts.Detectors.Deregister(term, pairs)
	}
	if err != nil {
		s.log.Warn("updating the region failure detectors failed", "term", term, "regions", len(pairs), "err", err)
	}
}

// termOf is the state of term id, or a fencing error when this node no
// longer runs it: the procedure then stops without rollback, and the next
// leader resumes it.
func (s *Service) termOf(id int64) (*termState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.term == nil || s.term.id != id {
		return nil, fmt.Errorf("ddl: term %d is over on this node: %w", id, election.ErrFenced)
	}
	return s.term, nil
}

// Submit runs the task of req as a procedure and waits for its end: the
// procedure's id and, for create table, the table's id. A task the
// procedure refused (the table exists, the database is missing) fails with a
// *statuscode.Error carrying GreptimeDB's code.
func (s *Service) Submit(ctx context.Context, req *metapb.DdlTaskRequest) (procedure.ID, []uint32, error) {
	p, err := s.procedureFor(ctx, req)
	if err != nil {
		return "", nil, err
	}
	id, err := s.opts.Procedures.SubmitProcedure(ctx, p)
	if err != nil {
		return "", nil, err
	}
	info, err := s.opts.Procedures.Wait(ctx, id)
	if err != nil {
		return id, nil, err
	}
	switch info.State {
	case procedure.StateDone:
		tables, err := decodeOutput(info.Output)
		return id, tables, err
	case procedure.StateRolledBack, procedure.StateFailed:
		code := statuscode.Code(info.ErrorCode)
		if code == 0 {
			code = statuscode.Internal
		}
		return id, nil, &statuscode.Error{Status: code, Msg: fmt.Sprintf("procedure %s (%s) %s: %s", id, p.Type(), info.State, info.Error)}
	default:
		// Wait returned before the end: the term ended under it.
		return id, nil, fmt.Errorf("ddl: procedure %s is still %s: %w", id, info.State, &election.NotLeaderError{})
	}
}

// procedureFor builds the procedure of req's task.
func (s *Service) procedureFor(ctx context.Context, req *metapb.DdlTaskRequest) (procedure.Procedure, error) {
	switch t := req.GetTask().(type) {
	case *metapb.DdlTaskRequest_CreateDatabaseTask:
		return s.newCreateDatabase(t.CreateDatabaseTask.GetCreateDatabase())
	case *metapb.DdlTaskRequest_DropDatabaseTask:
		return s.newDropDatabase(t.DropDatabaseTask.GetDropDatabase())
	case *metapb.DdlTaskRequest_CreateTableTask:
		return s.newCreateTable(t.CreateTableTask)
	case *metapb.DdlTaskRequest_DropTableTask:
		return s.newDropTable(t.DropTableTask.GetDropTable())
	case *metapb.DdlTaskRequest_AlterTableTask:
		return s.newAlterTable(ctx, t.AlterTableTask)
	case *metapb.DdlTaskRequest_TruncateTableTask:
		return s.newTruncateTable(t.TruncateTableTask.GetTruncateTable())
	default:
		return nil, statuscode.Errorf(statuscode.Unsupported, "Unsupported operation: DDL task %T; metasrv runs create/drop database, create/drop/truncate table and alter table (add/drop columns, rename)", t)
	}
}
