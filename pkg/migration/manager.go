package migration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/heartbeat"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Mailbox pushes instructions to datanodes on their heartbeat streams and
// broadcasts cache invalidations; *heartbeat.Service satisfies it. Its
// errors are heartbeat's: ErrPusherNotFound, ErrMailboxTimeout,
// ErrChannelClosed, and election.ErrNotLeader once the term is over.
type Mailbox interface {
	Send(ctx context.Context, term int64, to heartbeat.PusherID, subject string, instr instruction.Instruction, timeout time.Duration) (*metapb.MailboxMessage, error)
	InvalidateCaches(ctx context.Context, term int64, caches []instruction.CacheIdent) error
}

var _ Mailbox = (*heartbeat.Service)(nil)

// Options configure a Manager. Procedures, Keeper and Mailbox are
// required.
type Options struct {
	Logger     *slog.Logger
	Procedures *procedure.Manager
	Keeper     *region.Keeper
	Mailbox    Mailbox
	// HeartbeatInterval is the cluster's heartbeat_interval, from which the
	// region lease (region.LeaseSeconds) and the datanode lease follow; 0
	// is GreptimeDB's default.
	HeartbeatInterval time.Duration
	// Detectors, when set (region failover on), follow each migrated
	// region to its new leader.
	Detectors Detectors
	// Routes decodes the table routes the steps read; nil gives the manager
	// a cache of its own. The node shares one with the region leases.
	Routes *greptimekey.RouteCache
	// Clock, nil for the system clock.
	Clock Clock
}

// TypeName is the migration procedure's type (GreptimeDB's TYPE_NAME).
const TypeName = "metasrv-procedure::RegionMigration"

// Manager submits region migrations and tracks the ones this leader runs
// (GreptimeDB's RegionMigrationManager and its tracker). It is a
// metasrv.Listener: it keeps the term it runs in, and every step of a
// migration checks that it still runs in that term. It must start after
// the region keeper and before the procedure manager (resumed migrations
// need both), and so stop between them.
type Manager struct {
	opts        Options
	log         *slog.Logger
	clock       Clock
	regionLease time.Duration
	metrics     *metrics
	routes      *routeWriter

	mu      sync.Mutex
	term    *termState
	running map[uint64]*tracked // by region id
}

type termState struct {
	id     int64
	store  kv.Backend
	memory kv.Backend
	ends   *ends
}

// tracked is one migration of the running map.
type tracked struct {
	p     *migration
	id    procedure.ID
	since time.Time
}

var _ metasrv.Listener = (*Manager)(nil)

// New checks o and registers the migration procedure's loader with
// o.Procedures.
func New(o Options) (*Manager, error) {
	if o.Procedures == nil || o.Keeper == nil || o.Mailbox == nil {
		return nil, errors.New("migration: Options.Procedures, Keeper and Mailbox are required")
	}
	if o.HeartbeatInterval < 0 {
		return nil, fmt.Errorf("migration: Options.HeartbeatInterval is %s: expected 0 or more", o.HeartbeatInterval)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	m := &Manager{
		opts:        o,
		log:         o.Logger.With("component", "region_migration"),
		clock:       o.Clock,
		regionLease: time.Duration(region.LeaseSeconds(o.HeartbeatInterval)) * time.Second,
		metrics:     newMetrics(),
		routes:      newRouteWriter(o.Routes),
		running:     map[uint64]*tracked{},
	}
	if err := o.Procedures.RegisterLoader(TypeName, m.load); err != nil {
		return nil, fmt.Errorf("migration: %w", err)
	}
	return m, nil
}

// Name identifies the listener in logs.
func (m *Manager) Name() string { return "region_migration" }

// Start opens term t, whose migrations' ends it counts until ctx ends or
// Stop.
func (m *Manager) Start(ctx context.Context, t metasrv.Term) error {
	m.Stop()
	ts := &termState{id: t.ID, store: t.Store, memory: t.Memory}
	m.startEnds(ctx, ts)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.term = ts
	clear(m.running)
	return nil
}

// Stop forgets the term and its migrations (the next leader resumes
// them); safe to call twice.
func (m *Manager) Stop() {
	m.mu.Lock()
	ts := m.term
	m.term = nil
	clear(m.running)
	m.mu.Unlock()
	if ts != nil {
		ts.ends.stopAndWait()
	}
}

// termOf is the state of term id, or a fencing error when this node no
// longer runs it: the procedure then stops without rollback, and the next
// leader resumes it.
func (m *Manager) termOf(id int64) (*termState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term == nil || m.term.id != id {
		return nil, fmt.Errorf("migration: term %d is over on this node: %w", id, election.ErrFenced)
	}
	return m.term, nil
}

func (m *Manager) current() (*termState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term == nil {
		return nil, fmt.Errorf("migration: this node leads no term: %w", &election.NotLeaderError{})
	}
	return m.term, nil
}

// Submit validates t against the current route, as GreptimeDB's
// submit_procedure does, and submits its migration; it returns once the
// procedure is stored, not when it ends (procedure.Manager.Wait does).
// Refusals are ErrMigrationRunning, ErrRegionMigrated, ErrLeaderChanged,
// ErrPeerUnavailable, or a *statuscode.Error (bad arguments, no such
// table or region).
func (m *Manager) Submit(ctx context.Context, t Task) (procedure.ID, error) {
	ts, err := m.current()
	if err != nil {
		return "", err
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	if t.Reason == "" {
		t.Reason = ReasonUnknown
	}
	if !t.Reason.valid() {
		return "", invalidArguments("unknown migration trigger reason %q", t.Reason)
	}
	p := &migration{m: m, data: migrationData{State: stepStart, RegionID: t.RegionID,
		From: greptimekey.Peer{ID: t.From}, To: greptimekey.Peer{ID: t.To}, TimeoutMillis: t.Timeout.Milliseconds(), Reason: t.Reason}}
	if !m.reserve(p) {
		return "", coded(ErrMigrationRunning, statuscode.Unexpected, "Another migration procedure is running for region: %s", regionName(t.RegionID))
	}
	id, err := m.submit(ctx, ts, p)
	if err != nil {
		m.finish(p)
		return "", err
	}
	m.log.Info("region migration submitted", "procedure_id", id, "region_id", regionName(t.RegionID),
		"table_id", greptimekey.RegionTableID(t.RegionID), "from", t.From, "to", t.To, "reason", string(t.Reason))
	return id, nil
}

func (m *Manager) submit(ctx context.Context, ts *termState, p *migration) (procedure.ID, error) {
	if err := m.validate(ctx, ts, &p.data); err != nil {
		return "", err
	}
	// Its goroutine owns p.data once submitted: the view is copied before.
	m.track(p, "", &p.data)
	id, err := m.opts.Procedures.SubmitProcedure(ctx, p)
	if err != nil {
		return "", err
	}
	m.track(p, id, nil)
	return id, nil
}

// validate is submit_procedure's checks; it fills in the peers' addresses
// and the table's catalog and schema.
func (m *Manager) validate(ctx context.Context, ts *termState, d *migrationData) error {
	if d.From.ID == d.To.ID {
		return invalidArguments("The `from_peer_id` can't equal `to_peer_id`")
	}
	snap, err := readRoute(ctx, ts.store, m.routes.decoded, d.RegionID)
	if err != nil {
		return err
	}
	rr := snap.route()
	if rr.LeaderPeer == nil {
		return unexpected("Region route leader peer is not found")
	}
	if rr.LeaderState != greptimekey.LeaderStateDowngrading && rr.LeaderPeer.ID == d.To.ID {
		return coded(ErrRegionMigrated, statuscode.Unexpected, "The region migration procedure is completed for region: %s, target_peer: %d", regionName(d.RegionID), d.To.ID)
	}
	if rr.LeaderPeer.ID != d.From.ID {
		return coded(ErrLeaderChanged, statuscode.InvalidArguments, "Region's leader peer changed: Region's leader peer(%d) is not the `from_peer`(%d), region: %s",
			rr.LeaderPeer.ID, d.From.ID, regionName(d.RegionID))
	}
	if slices.ContainsFunc(rr.FollowerPeers, func(p greptimekey.Peer) bool { return p.ID == d.To.ID }) {
		return invalidArguments("The `to_peer`(%d) is already has a region follower, region: %s", d.To.ID, regionName(d.RegionID))
	}
	d.From = *rr.LeaderPeer
	name, err := tableName(ctx, ts.store, greptimekey.RegionTableID(d.RegionID))
	if err != nil {
		return err
	}
	d.Catalog, d.Schema = name.Catalog, name.Schema
	to, alive, err := m.datanode(ctx, ts, d.To.ID)
	if err != nil {
		return err
	}
	if !alive {
		return PeerUnavailable(d.To.ID)
	}
	d.To = to
	return nil
}

// DatanodeAlive reports whether datanode id's lease on this leader is
// current (GreptimeDB's lookup_datanode_peer), and its address.
func (m *Manager) DatanodeAlive(ctx context.Context, id uint64) (greptimekey.Peer, bool, error) {
	ts, err := m.current()
	if err != nil {
		return greptimekey.Peer{}, false, err
	}
	return m.datanode(ctx, ts, id)
}

func (m *Manager) datanode(ctx context.Context, ts *termState, id uint64) (greptimekey.Peer, bool, error) {
	lease, err := datanodeLease(ctx, ts.memory, id)
	if err != nil || lease == nil {
		return greptimekey.Peer{ID: id}, false, err
	}
	age := m.clock.Now().Sub(time.UnixMilli(lease.TimestampMillis))
	return greptimekey.Peer{ID: id, Addr: lease.NodeAddr}, age < nodelist.LeaseWindow(nodelist.RoleDatanode, m.opts.HeartbeatInterval), nil
}

// Running lists the migrations this leader runs, by region id.
func (m *Manager) Running() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.running))
	for _, t := range m.running {
		d := t.p.info
		out = append(out, Info{
			ProcedureID: t.id, RegionID: d.RegionID, From: d.From, To: d.To, Reason: d.Reason,
			Timeout: time.Duration(d.TimeoutMillis) * time.Millisecond, Step: d.State, Since: t.since,
		})
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.RegionID, b.RegionID) })
	return out
}

// reserve enters p in the running map unless its region is there already.
func (m *Manager) reserve(p *migration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.running[p.data.RegionID]; ok {
		return false
	}
	p.info = p.data
	m.running[p.data.RegionID] = &tracked{p: p, since: m.clock.Now()}
	return true
}

// track records p's id (unless empty) and, from data, its view; a resumed
// migration that its loader could not enter (its region was taken
// meanwhile) is entered now. data must be read by p's own goroutine. The
// first id recorded has the term await the migration's end.
func (m *Manager) track(p *migration, id procedure.ID, data *migrationData) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.running[p.data.RegionID]
	if t == nil {
		if data == nil {
			// Submit's call after the procedure was stored: gone from the
			// map, the migration has already finished.
			return
		}
		t = &tracked{p: p, since: m.clock.Now()}
		m.running[p.data.RegionID] = t
	}
	if t.p != p {
		return
	}
	if data != nil {
		p.info = *data
	}
	if id != "" && t.id == "" {
		t.id = id
		m.awaitLocked(p, id)
	}
}

// finish drops p from the running map.
func (m *Manager) finish(p *migration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.running[p.data.RegionID]; t != nil && t.p == p {
		delete(m.running, p.data.RegionID)
	}
}
