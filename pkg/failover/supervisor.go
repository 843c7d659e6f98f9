package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
	"github.com/pgmetasrv/metasrv/pkg/migration"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/selector"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// GreptimeDB's supervisor intervals (supervisor.rs).
const (
	DefaultTickInterval = time.Second
	// initializationRetry is the wait before a failed initialization is
	// tried again (DEFAULT_INITIALIZATION_RETRY_PERIOD).
	initializationRetry = time.Minute
	// migrationTimeout is DEFAULT_REGION_MIGRATION_TIMEOUT, multiplied by
	// how many times the region was failed over in this term.
	migrationTimeout = 120 * time.Second
	// submitConcurrency bounds the failovers of one tick being submitted
	// at once.
	submitConcurrency = 32
)

// Migrations submits and lists region migrations; *migration.Manager
// satisfies it. Submit is called from several goroutines at once.
type Migrations interface {
	Submit(ctx context.Context, t migration.Task) (procedure.ID, error)
	Running() []migration.Info
}

// Options configure a Supervisor. Detector, Migrations and Selector are
// required.
type Options struct {
	Logger     *slog.Logger
	Detector   *region.FailureDetector
	Migrations Migrations
	Selector   selector.Selector
	// HeartbeatInterval is the cluster's heartbeat_interval (which datanodes
	// the selector sees alive); 0 means GreptimeDB's default.
	HeartbeatInterval time.Duration
	// TickInterval is how often failures are looked for; 0 means
	// DefaultTickInterval.
	TickInterval time.Duration
	// InitializationDelay is region_failure_detector_initialization_delay.
	InitializationDelay time.Duration
	// Now is the detectors' clock; nil means time.Now.
	Now func() time.Time
}

// Supervisor is a metasrv.Listener; see the package documentation.
type Supervisor struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}

	// ticked, when set (by tests), is called after every tick and
	// initialization attempt.
	ticked func()
}

var _ metasrv.Listener = (*Supervisor)(nil)

// New checks o.
func New(o Options) (*Supervisor, error) {
	if o.Detector == nil || o.Migrations == nil || o.Selector == nil {
		return nil, errors.New("failover: Options.Detector, Migrations and Selector are required")
	}
	if o.InitializationDelay < 0 || o.TickInterval < 0 {
		return nil, fmt.Errorf("failover: TickInterval %s and InitializationDelay %s must not be negative", o.TickInterval, o.InitializationDelay)
	}
	if o.TickInterval == 0 {
		o.TickInterval = DefaultTickInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{opts: o, log: o.Logger.With("component", "region_supervisor"), metrics: newMetrics()}, nil
}

// Name identifies the listener in logs.
func (s *Supervisor) Name() string { return "region_supervisor" }

// Start runs the supervisor for term t until Stop or the term's end.
func (s *Supervisor) Start(ctx context.Context, t metasrv.Term) error {
	s.Stop()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.mu.Lock()
	s.stop, s.done = cancel, done
	s.mu.Unlock()
	r := &run{s: s, term: t, counts: map[region.DetectingRegion]int{}}
	go func() {
		defer close(done)
		r.loop(ctx)
	}()
	s.log.Info("region supervisor started", "term", t.ID, "initialization_delay", s.opts.InitializationDelay, "tick", s.opts.TickInterval)
	return nil
}

// Stop ends the term's loop and waits for it; safe to call twice.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
}

// run is one term of the supervisor.
type run struct {
	s    *Supervisor
	term metasrv.Term
	// counts is how many failovers of each pair this term submitted
	// (GreptimeDB's failover_counts, which lengthens each retry's timeout).
	counts map[region.DetectingRegion]int
}

func (r *run) loop(ctx context.Context) {
	initialize := time.NewTimer(r.s.opts.InitializationDelay)
	defer initialize.Stop()
	tick := time.NewTicker(r.s.opts.TickInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-initialize.C:
			if err := r.initialize(ctx); err != nil {
				r.s.log.Error("registering the failure detectors of every leader region failed; retrying", "term", r.term.ID, "err", err)
				initialize.Reset(initializationRetry)
			}
		case <-tick.C:
			r.tick(ctx)
		}
		if r.s.ticked != nil {
			r.s.ticked()
		}
	}
}

// maintenance reports whether the maintenance switch is on (its key, or
// the key older GreptimeDB versions used, exists).
func (r *run) maintenance(ctx context.Context) (bool, error) {
	resp, err := r.term.Store.BatchGet(ctx, kv.BatchGetRequest{Keys: [][]byte{[]byte(greptimekey.MaintenanceKey), []byte(greptimekey.LegacyMaintenanceKey)}})
	if err != nil {
		return false, err
	}
	return len(resp.Kvs) > 0, nil
}

// initialize registers a detector for every route's leader region that has
// none (GreptimeDB's initialize_all).
func (r *run) initialize(ctx context.Context) error {
	if on, err := r.maintenance(ctx); err != nil || on {
		if on {
			r.s.log.Warn("maintenance mode is on: not registering the failure detectors of the routes")
		}
		return err
	}
	prefix := []byte(greptimekey.TableRoutePrefix)
	resp, err := r.term.Store.Range(ctx, kv.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	var pairs []region.DetectingRegion
	for _, p := range resp.Kvs {
		route, err := greptimekey.Decode[greptimekey.TableRouteValue](p.Value)
		if err != nil || route.Physical == nil {
			continue
		}
		for _, rr := range route.Physical.RegionRoutes {
			pair := region.DetectingRegion{RegionID: rr.Region.ID}
			if rr.LeaderPeer != nil {
				pair.DatanodeID = rr.LeaderPeer.ID
				if !r.s.opts.Detector.Contains(pair.DatanodeID, pair.RegionID) {
					pairs = append(pairs, pair)
				}
			}
		}
	}
	if err := r.s.opts.Detector.Register(r.term.ID, pairs, r.s.opts.Now()); err != nil {
		return err
	}
	r.s.log.Info("failure detectors registered for the routes' leader regions", "term", r.term.ID, "registered", len(pairs))
	return nil
}

// tick fails over the regions whose detectors say their datanode failed.
func (r *run) tick(ctx context.Context) {
	failed := r.s.opts.Detector.Failed(r.s.opts.Now())
	if len(failed) == 0 {
		return
	}
	if on, err := r.maintenance(ctx); err != nil || on {
		if on {
			r.s.log.Warn("maintenance mode is on: not failing over", "failed_regions", len(failed))
		} else {
			r.s.log.Error("reading the maintenance switch failed; not failing over this tick", "err", err)
		}
		return
	}
	migrating := map[uint64]bool{}
	for _, m := range r.s.opts.Migrations.Running() {
		migrating[m.RegionID] = true
	}
	byDatanode := map[uint64][]uint64{}
	for _, f := range failed {
		if !migrating[f.RegionID] {
			byDatanode[f.DatanodeID] = append(byDatanode[f.DatanodeID], f.RegionID)
		}
	}
	for dn, regions := range byDatanode {
		r.failover(ctx, dn, regions)
	}
}

// failover moves the regions of failed datanode dn, each to a datanode the
// selector picks among the live ones but dn.
func (r *run) failover(ctx context.Context, dn uint64, regions []uint64) {
	slices.Sort(regions)
	r.s.log.Warn("region failures detected", "datanode_id", dn, "regions", len(regions))
	peers, err := r.s.opts.Selector.Select(ctx, selector.Input{Memory: r.term.Memory, HeartbeatInterval: r.s.opts.HeartbeatInterval},
		selector.Options{MinRequiredItems: len(regions), AllowDuplication: true, ExcludePeerIDs: []uint64{dn}, WorkloadFilter: selector.AcceptIngestWorkload})
	if err == nil && len(peers) != len(regions) {
		err = &selector.NotEnoughAvailableError{Required: len(regions), Available: len(peers)}
	}
	if stopped(ctx, err) {
		return // the term is over: neither a failure nor a refusal
	}
	if err != nil {
		r.s.log.Error("no datanode to fail the regions over to", "datanode_id", dn, "regions", len(regions), "err", err)
		r.s.metrics.noTarget.Add(float64(len(regions)))
		return
	}
	// Each submission stores a procedure: made one after another, 100 of
	// them took seconds; made together, the store commits them in groups.
	sem := make(chan struct{}, submitConcurrency)
	var wg sync.WaitGroup
	for i, id := range regions {
		pair := region.DetectingRegion{DatanodeID: dn, RegionID: id}
		r.counts[pair]++
		task := migration.Task{RegionID: id, From: dn, To: peers[i].ID, Timeout: migrationTimeout * time.Duration(r.counts[pair]), Reason: migration.ReasonFailover}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pid, err := r.s.opts.Migrations.Submit(ctx, task)
			if !stopped(ctx, err) {
				r.submitted(pair, task, pid, err)
			}
		})
	}
	wg.Wait()
}

// stopped reports whether err is the end of the term's context.
func stopped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// submitted logs a failover's submission, and forgets the detector of a
// region that needs none any more (GreptimeDB's
// handle_submit_region_migration_task_result).
func (r *run) submitted(pair region.DetectingRegion, task migration.Task, pid procedure.ID, err error) {
	log := r.s.log.With("region_id", pair.RegionID, "table_id", greptimekey.RegionTableID(pair.RegionID), "from", task.From, "to", task.To)
	if err == nil {
		r.s.metrics.submitted.Inc()
	} else {
		r.s.metrics.refused.Inc()
	}
	code, _ := statuscode.Of(err)
	switch {
	case err == nil:
		log.Info("region failover submitted", "procedure_id", pid, "timeout", task.Timeout)
	case errors.Is(err, migration.ErrMigrationRunning):
		log.Info("region is being migrated; no failover")
	case errors.Is(err, migration.ErrRegionMigrated), errors.Is(err, migration.ErrLeaderChanged),
		code == statuscode.TableNotFound, code == statuscode.RegionNotFound:
		if derr := r.s.opts.Detector.Deregister(r.term.ID, []region.DetectingRegion{pair}); derr != nil {
			log.Warn("forgetting the region's failure detector failed", "err", derr)
		}
		log.Info("region needs no failover from this datanode any more; its detector is removed", "reason", err)
	default:
		log.Error("submitting a region failover failed", "err", err)
	}
}
