package pgelection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/postgres"
)

// Config is what an Elector needs. The caller validates the user-facing
// settings (pkg/config: election.*, meta_* and store_key_prefix); New only
// refuses values the algorithm cannot work with.
type Config struct {
	// Store is how to reach PostgreSQL (store_addrs, backend_tls and
	// postgres.connect_timeout); the election session is built from it.
	Store postgres.Options
	// Schema and Table are meta_schema_name and meta_table_name: the
	// election tables are named after Table, in Schema (empty: the
	// connection's search_path).
	Schema, Table string
	// LockID is meta_election_lock_id, the advisory lock key.
	LockID int64
	// KeyPrefix is store_key_prefix, the key space this cluster claims.
	KeyPrefix string
	// Lease is how long a leader's claim lasts without renewal (election.lease).
	Lease time.Duration
	// CampaignInterval is how often a follower tries the lock
	// (election.campaign_interval); above 0 and below Lease.
	CampaignInterval time.Duration
	// CandidateLease is how long a registration lasts without renewal
	// (election.candidate_lease).
	CandidateLease time.Duration

	// NodeInfo returns this node's info; its Addr is the address recorded
	// when this node wins. Called at every win and candidate renewal.
	NodeInfo func() election.NodeInfo
	// NodeName tells this node's election session apart in
	// pg_stat_activity (application_name metasrv-election-<NodeName>).
	// Empty means NodeInfo().Addr.
	NodeName string
	// Pool serves the candidate registrations and Leader/Candidates reads;
	// the election session itself is never pooled.
	Pool *pgxpool.Pool
	// Logger receives the election's logs (component=election).
	Logger *slog.Logger

	// wrapSession lets tests inject faults into the election session.
	wrapSession func(sessionConn) sessionConn
}

// Elector is the PostgreSQL advisory-lock election. See the package
// documentation for the algorithm and its failure handling.
type Elector struct {
	cfg        Config
	connConfig *pgx.ConnConfig
	sql        statements
	lockID     int64
	classID    int64
	objID      int64
	channel    string
	addr       string
	logger     *slog.Logger
	stream     *election.Stream

	// Cluster identity: this node's key space and where its claim lives.
	kvTable       string // quoted, qualified KV table, for messages
	clustersTable string
	keyPrefix     []byte
	// instanceID tells this process's candidate registration from another
	// process's under the same address.
	instanceID string
	// dupWarnAt is when a duplicate address was last reported; only the
	// registration (Start, then registerLoop) touches it.
	dupWarnAt time.Time
	// holder is the campaign's watch on who holds the lock; only the run
	// loop touches it.
	holder holderWatch

	lease            time.Duration
	renewEvery       time.Duration
	trustSpan        time.Duration // lease minus the safety margin
	campaignInterval time.Duration
	candidateLease   time.Duration
	connectTimeout   time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
	// Which term this node leads and until when it trusts that is recorded
	// in stream alone; mu orders the elector's changes to it (win, renew,
	// step-down, watchdog) with the loop's other state below.
	watchdog      *time.Timer
	resignWaiters []chan error
	wake          context.CancelFunc // interrupts the leader's wait, when set
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	stopOnce      sync.Once

	testSignals testSignals
}

var _ election.Elector = (*Elector)(nil)

// New validates cfg and returns an elector; Start begins the campaign.
func New(cfg Config) (*Elector, error) {
	if cfg.NodeInfo == nil {
		return nil, errors.New("pgelection: Config.NodeInfo is nil: expected a function returning this node's info")
	}
	if cfg.Pool == nil {
		return nil, errors.New("pgelection: Config.Pool is nil: expected the node's PostgreSQL pool")
	}
	if cfg.Logger == nil {
		return nil, errors.New("pgelection: Config.Logger is nil")
	}
	// Programmer errors only: pkg/config holds the user-facing limits
	// (election.lease at least 300ms, candidate_lease at least lease).
	if cfg.Lease <= 0 {
		return nil, fmt.Errorf("pgelection: Config.Lease is %s: expected above 0", cfg.Lease)
	}
	if cfg.CampaignInterval <= 0 || cfg.CampaignInterval >= cfg.Lease {
		return nil, fmt.Errorf("pgelection: Config.CampaignInterval is %s: expected above 0 and below Config.Lease (%s)", cfg.CampaignInterval, cfg.Lease)
	}
	if cfg.CandidateLease <= 0 {
		return nil, fmt.Errorf("pgelection: Config.CandidateLease is %s: expected above 0", cfg.CandidateLease)
	}
	if cfg.NodeName == "" {
		// The advertised address may be known only once the node listens;
		// a node that knows its name earlier passes NodeName.
		cfg.NodeName = cfg.NodeInfo().Addr
	}
	if cfg.NodeName == "" {
		return nil, errors.New("pgelection: no NodeName and NodeInfo().Addr is empty: expected the address clients reach this node at")
	}
	table, schema := cfg.Table, cfg.Schema
	// The longest derived name must fit PostgreSQL's identifier limit, or
	// PostgreSQL would silently truncate it into another table's name.
	if err := postgres.ValidIdentifier(table + candidatesSuffix); err != nil {
		return nil, fmt.Errorf("pgelection: table %q cannot name the election tables: %w", table, err)
	}
	if schema != "" {
		if err := postgres.ValidIdentifier(schema); err != nil {
			return nil, fmt.Errorf("pgelection: schema: %w", err)
		}
	}
	electionTable := postgres.QualifiedTable(schema, table+electionSuffix)
	candidatesTable := postgres.QualifiedTable(schema, table+candidatesSuffix)
	clustersTable := postgres.QualifiedTable(schema, table+clustersSuffix)
	cc, err := postgres.ConnConfig(cfg.Store, "metasrv-election-"+cfg.NodeName)
	if err != nil {
		return nil, fmt.Errorf("pgelection: %w", err)
	}

	lockID := cfg.LockID
	classID, objID := lockKeyParts(lockID)
	e := &Elector{
		cfg:              cfg,
		connConfig:       cc,
		sql:              newStatements(electionTable, candidatesTable, clustersTable),
		lockID:           lockID,
		classID:          classID,
		objID:            objID,
		channel:          notifyChannel(lockID),
		logger:           cfg.Logger.With("component", "election", "node", cfg.NodeName),
		stream:           election.NewStream(),
		lease:            cfg.Lease,
		renewEvery:       cfg.Lease / 3,
		trustSpan:        cfg.Lease - cfg.Lease/5,
		campaignInterval: cfg.CampaignInterval,
		candidateLease:   cfg.CandidateLease,
		connectTimeout:   cfg.Lease,
		kvTable:          postgres.QualifiedTable(schema, table),
		clustersTable:    clustersTable,
		keyPrefix:        append([]byte{}, cfg.KeyPrefix...), // never nil: NULL is no prefix
		instanceID:       newInstanceID(),
	}
	if cc.ConnectTimeout > 0 && cc.ConnectTimeout < e.connectTimeout {
		e.connectTimeout = cc.ConnectTimeout
	}
	return e, nil
}

// Start registers this node as a candidate and starts campaigning. It fails
// when the registration fails (for instance, migrations not applied), and
// with ErrLockIDMismatch or ErrLockIDShared when the node's table,
// store_key_prefix and meta_election_lock_id contradict the cluster that
// owns that key space. The campaign runs until Stop; ctx only bounds the
// registration.
func (e *Elector) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("pgelection: Start after Stop")
	}
	if e.started {
		e.logger.Warn("election already started")
		return nil
	}
	// Read at Start, not New: the address is final once the node listens.
	e.addr = e.cfg.NodeInfo().Addr
	if e.addr == "" {
		return errors.New("pgelection: NodeInfo().Addr is empty: expected the address clients reach this node at")
	}
	// A session that cannot hold a lock would campaign forever in vain:
	// refuse to start instead.
	if s, err := e.connect(ctx); errors.Is(err, ErrNotASession) {
		return err
	} else if err == nil {
		e.closeSession(s)
	}
	// A second cluster on this cluster's keys must not start at all.
	if err := e.claim(ctx); err != nil {
		return err
	}
	if err := e.registerAt(ctx, true); err != nil {
		return fmt.Errorf("pgelection: register candidate %s: %w", e.addr, err)
	}
	// The campaign outlives the caller's ctx (often a start-up deadline);
	// Stop ends it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.started = true
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.run(runCtx)
	}()
	go func() {
		defer e.wg.Done()
		e.registerLoop(runCtx)
	}()
	e.logger.Info("election started", "lock_id", e.lockID, "lease", e.lease, "campaign_interval", e.campaignInterval)
	return nil
}

// Stop resigns if leading, waits for the election's goroutines, withdraws the
// candidate registration and closes the leadership streams.
func (e *Elector) Stop() {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopped = true
		cancel := e.cancel
		if e.wake != nil {
			e.wake()
		}
		e.mu.Unlock()
		if cancel != nil {
			cancel()
			e.wg.Wait()
			ctx, done := context.WithTimeout(context.Background(), e.lease)
			if _, err := e.cfg.Pool.Exec(ctx, e.sql.unregister, e.lockID, e.addr, e.instanceID); err != nil {
				e.logger.Warn("withdraw candidate registration", "err", err)
			}
			done()
		}
		e.stream.Close()
		e.logger.Info("election stopped")
	})
}

// IsLeader is true while this node leads and its trust window holds.
func (e *Elector) IsLeader() bool { return e.stream.Trusted() != 0 }

// TrustedTerm is the term this node leads while its trust window holds, else 0.
func (e *Elector) TrustedTerm() int64 { return e.stream.Trusted() }

// Subscribe returns the ordered, lossless leadership stream.
func (e *Elector) Subscribe() (<-chan election.LeaderChange, func()) {
	return e.stream.Subscribe()
}

// Term is the term this node leads, 0 when it does not.
func (e *Elector) Term() int64 { return e.stream.Term() }

// Changes counts this node's leadership changes.
func (e *Elector) Changes() uint64 { return e.stream.Changes() }

// Resign hands leadership over: StepDown, unlock, NOTIFY the followers, close
// the session. The node keeps campaigning after a pause of one campaign
// interval, so another node wins. A no-op when not leading.
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	if !e.stream.Lease().Leading {
		e.mu.Unlock()
		return nil
	}
	done := make(chan error, 1)
	e.resignWaiters = append(e.resignWaiters, done)
	if e.wake != nil {
		e.wake()
	}
	e.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("pgelection: resign: %w", ctx.Err())
	}
}

// Leader reads the election row and reports its leader only while the
// recorded backend still holds the advisory lock.
func (e *Elector) Leader(ctx context.Context) (election.Leader, error) {
	var l election.Leader
	err := e.cfg.Pool.QueryRow(ctx, e.sql.leader, e.lockID, e.classID, e.objID).
		Scan(&l.Term, &l.Addr, &l.Info, &l.ElectedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return election.Leader{}, election.ErrNoLeader
	}
	if err != nil {
		return election.Leader{}, fmt.Errorf("pgelection: read leader: %w: %w", election.ErrUnavailable, err)
	}
	return l, nil
}
