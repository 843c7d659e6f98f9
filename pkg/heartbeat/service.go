package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// DefaultInterval is GreptimeDB's base heartbeat interval (heartbeat_interval):
// datanodes and flownodes heartbeat every interval, frontends every six, and
// all retry after one.
const DefaultInterval = 3 * time.Second

// frontendFactor is how many base intervals apart frontends heartbeat.
const frontendFactor = 6

// defaultFlushStatsFactor is how many datanode stats are gathered before they
// are written to the in-memory KV (GreptimeDB's flush_stats_factor).
const defaultFlushStatsFactor = 3

// Options configure a Service. Leading, Memory and ServerAddr are required.
type Options struct {
	Logger *slog.Logger
	// Interval is the base heartbeat interval; 0 means DefaultInterval.
	Interval time.Duration
	// Leading is the term this node leads while it trusts its leadership,
	// else 0 (election.Elector's TrustedTerm): asked on every heartbeat.
	Leading func() int64
	// Memory is the node's in-memory KV (metasrv.Metasrv's MemoryBackend),
	// where a heartbeat that reaches a follower keeps its lease, as
	// GreptimeDB's does; a term's sessions use the term's own.
	Memory func() kv.Backend
	// ServerAddr is this node's advertised address, named in refusals.
	ServerAddr func() string
	// Now is the clock of lease and stat timestamps; nil means time.Now.
	Now func() time.Time
	// RegionLeaser grants the region leases of datanode heartbeats; nil
	// grants none (responses carry no region_lease).
	RegionLeaser RegionLeaser
	// FailureDetector is fed each datanode heartbeat's leader regions; nil
	// detects nothing (GreptimeDB adds its handler only with
	// enable_region_failover).
	FailureDetector RegionFailureDetector
}

// RegionLeaser decides the region lease of a datanode's regular heartbeat
// (GreptimeDB's RegionLeaseHandler). It is called in term, with the term's
// fenced store, for the datanode whose stats req carries; a nil lease leaves
// the response without one, an error is logged and the heartbeat goes on.
type RegionLeaser interface {
	Lease(ctx context.Context, term int64, store kv.Backend, datanodeID uint64, req *metapb.HeartbeatRequest) (*metapb.RegionLease, error)
}

// Service keeps the heartbeat sessions of the term this node leads and runs
// the handler chain. It is a metasrv.Listener.
type Service struct {
	opts     Options
	log      *slog.Logger
	handlers []handler
	metrics  *metrics
	// frontendIDs numbers frontend sessions, as GreptimeDB's process-wide
	// counter does: frontends all send member id 0.
	frontendIDs atomic.Uint64

	mu   sync.Mutex
	term *termState // nil while this node runs no term
}

var _ metasrv.Listener = (*Service)(nil)

// New validates o and returns a Service with no term.
func New(o Options) (*Service, error) {
	if o.Leading == nil || o.Memory == nil || o.ServerAddr == nil {
		return nil, errors.New("heartbeat: Options.Leading, Memory and ServerAddr are required")
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("heartbeat: Options.Interval is %s: expected 0 (default %s) or more", o.Interval, DefaultInterval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{opts: o, log: o.Logger.With("component", "heartbeat"), metrics: newMetrics()}
	s.handlers = defaultHandlers()
	return s, nil
}

// termState is one term's sessions and the state its handlers keep.
type termState struct {
	id     int64
	store  kv.Backend // the term's fenced store
	memory kv.Backend // the term's in-memory KV

	// infancy is set when the term starts and taken by its first heartbeat,
	// which empties the in-memory KV (GreptimeDB's on-leader-start reset).
	infancy atomic.Bool

	mailbox *mailbox

	mu       sync.Mutex
	ended    bool
	sessions map[PusherID]*Session
	epochs   map[uint64]*epochStats // datanode id -> stats of its epoch
	flows    map[uint64]uint64      // flownode id -> node epoch last seen
}

// Name identifies the listener in logs.
func (s *Service) Name() string { return "heartbeat" }

// Start opens term t: no session yet, the infancy flag set.
func (s *Service) Start(_ context.Context, t metasrv.Term) error {
	ts := &termState{
		id: t.ID, store: t.Store, memory: t.Memory,
		sessions: make(map[PusherID]*Session),
		epochs:   make(map[uint64]*epochStats),
		flows:    make(map[uint64]uint64),
	}
	ts.infancy.Store(true)
	ts.mailbox = newMailbox(ts)
	s.mu.Lock()
	old := s.term
	s.term = ts
	s.mu.Unlock()
	if old != nil {
		old.end() // a Stop that never came: no session outlives its term
	}
	s.log.Info("heartbeat sessions open", "term", t.ID)
	return nil
}

// Stop ends the current term's sessions and fails its mailbox's waiters;
// safe to call twice.
func (s *Service) Stop() {
	s.mu.Lock()
	ts := s.term
	s.term = nil
	s.mu.Unlock()
	if ts == nil {
		return
	}
	n := ts.end()
	s.log.Info("heartbeat sessions closed", "term", ts.id, "sessions", n)
}

// end ends every session of the term, fails every mailbox waiter and
// refuses new sessions; it reports how many sessions it ended.
func (ts *termState) end() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.ended {
		return 0
	}
	ts.ended = true
	close(ts.mailbox.done)
	n := len(ts.sessions)
	for id, sess := range ts.sessions {
		sess.end()
		delete(ts.sessions, id)
	}
	return n
}

// current is the running term, nil if none.
func (s *Service) current() *termState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term
}

// Sessions lists the registered sessions of the running term.
func (s *Service) Sessions() []PusherID {
	ts := s.current()
	if ts == nil {
		return nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]PusherID, 0, len(ts.sessions))
	for id := range ts.sessions {
		out = append(out, id)
	}
	return out
}

// Config is the heartbeat_config of the handshake answer for role:
// datanodes and flownodes every interval, frontends every six, all retrying
// after one (GreptimeDB's HeartbeatOptions).
func (s *Service) Config(role metapb.Role) *metapb.HeartbeatConfig {
	base := uint64(s.opts.Interval.Milliseconds())
	every := base
	if role == metapb.Role_FRONTEND {
		every = base * frontendFactor
	}
	return &metapb.HeartbeatConfig{HeartbeatIntervalMs: every, RetryIntervalMs: base}
}
