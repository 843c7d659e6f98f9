package region

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// ErrNotDetecting is returned by Register, Reset and Deregister when the
// failure detector does not run the caller's term: before Start, after Stop,
// or for a caller of another term, whose registrations must not leak into
// this one.
var ErrNotDetecting = errors.New("region: the failure detector does not run this term")

// DetectingRegion is one (datanode, region) pair a detector watches
// (GreptimeDB's DetectingRegion).
type DetectingRegion struct {
	DatanodeID uint64
	RegionID   uint64
}

// FailedRegion is a watched pair whose phi has reached the threshold.
type FailedRegion struct {
	DatanodeID uint64
	RegionID   uint64
	Phi        float64
}

// FailureDetectorOptions configure a FailureDetector.
type FailureDetectorOptions struct {
	Logger *slog.Logger
	// PhiAccrual configures every detector; the zero value is not valid:
	// start from DefaultPhiAccrualOptions.
	PhiAccrual PhiAccrualOptions
	// Now is the clock of the term's start and of metrics scrapes; nil
	// means time.Now. Heartbeat and Failed take their times from the
	// caller, which must read the same clock.
	Now func() time.Time
}

// FailureDetector is the leader's phi-accrual failure detectors, one per
// (datanode, region) (GreptimeDB's RegionFailureDetector), fed by the
// heartbeat chain and read by the region supervisor. It is a
// metasrv.Listener: each term starts with none, and they are rebuilt from
// that term's heartbeats and registrations.
//
// Times are turned into milliseconds since the term's start with
// time.Time.Sub, which reads the monotonic clock when both times carry it
// (every time.Now does): a step of the wall clock neither fails every region
// at once nor hides a silent one, as it would with GreptimeDB's wall-clock
// milliseconds.
type FailureDetector struct {
	log  *slog.Logger
	opts PhiAccrualOptions
	now  func() time.Time

	mu        sync.Mutex
	term      int64     // the running term, 0 for none
	origin    time.Time // the term's start, millisecond 0 of its detectors
	detectors map[DetectingRegion]*PhiAccrualDetector
}

var _ metasrv.Listener = (*FailureDetector)(nil)

// NewFailureDetector validates o and returns a detector that runs no term.
func NewFailureDetector(o FailureDetectorOptions) (*FailureDetector, error) {
	if err := o.PhiAccrual.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &FailureDetector{
		log:       o.Logger.With("component", "region_failure_detector"),
		opts:      o.PhiAccrual,
		now:       o.Now,
		detectors: map[DetectingRegion]*PhiAccrualDetector{},
	}, nil
}

// Name identifies the listener in logs.
func (d *FailureDetector) Name() string { return "region_failure_detector" }

// Start opens term t with no detector; a term still open is dropped with its
// detectors.
func (d *FailureDetector) Start(_ context.Context, t metasrv.Term) error {
	if t.ID <= 0 {
		return fmt.Errorf("region: failure detector: term %d is not an election term", t.ID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.term, d.origin = t.ID, d.now()
	clear(d.detectors)
	d.log.Info("region failure detection open", "term", t.ID)
	return nil
}

// Stop ends the term and drops every detector. Safe to call twice and
// before Start.
func (d *FailureDetector) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.term != 0 {
		d.log.Info("region failure detection closed", "term", d.term, "detectors", len(d.detectors))
	}
	d.term = 0
	clear(d.detectors)
}

// Term is the term the detector runs, 0 for none.
func (d *FailureDetector) Term() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.term
}

// millis is at on the term's millisecond clock; d.mu is held.
func (d *FailureDetector) millis(at time.Time) int64 { return at.Sub(d.origin).Milliseconds() }

// Heartbeat records that datanodeID reported regionID at at, in term; a
// pair not watched yet gets a detector (GreptimeDB's on_heartbeat_arrived).
// A heartbeat of another term, or while none runs, is dropped.
func (d *FailureDetector) Heartbeat(term int64, datanodeID, regionID uint64, at time.Time) {
	d.Heartbeats(term, datanodeID, []uint64{regionID}, at)
}

// Heartbeats is Heartbeat for several regions of one heartbeat, under one
// lock: what the heartbeat chain calls.
func (d *FailureDetector) Heartbeats(term int64, datanodeID uint64, regionIDs []uint64, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if term == 0 || term != d.term {
		return
	}
	ts := d.millis(at)
	for _, id := range regionIDs {
		key := DetectingRegion{DatanodeID: datanodeID, RegionID: id}
		fd, ok := d.detectors[key]
		if !ok {
			fd = newPhiAccrual(d.opts, historySize)
			d.detectors[key] = fd
		}
		fd.Heartbeat(ts)
	}
}

// Register watches regions not watched yet as if each had just sent a
// heartbeat at at, so each has the acceptable pause to send a real one; a
// pair already watched is left as it is (GreptimeDB's
// maybe_init_region_failure_detector, used when a table is created and
// when the supervisor loads the routes).
func (d *FailureDetector) Register(term int64, regions []DetectingRegion, at time.Time) error {
	return d.update(term, "register", regions, at, func(key DetectingRegion, ts int64) {
		if _, ok := d.detectors[key]; !ok {
			d.detectors[key] = seeded(d.opts, ts)
		}
	})
}

// Reset replaces the detectors of regions, watched or not, with fresh ones
// that saw a heartbeat at at (GreptimeDB's reset_region_failure_detector):
// the history of a region's earlier placement says nothing of the new one.
func (d *FailureDetector) Reset(term int64, regions []DetectingRegion, at time.Time) error {
	return d.update(term, "reset", regions, at, func(key DetectingRegion, ts int64) {
		d.detectors[key] = seeded(d.opts, ts)
	})
}

// Deregister stops watching regions (a dropped table, a region moved away).
func (d *FailureDetector) Deregister(term int64, regions []DetectingRegion) error {
	return d.update(term, "deregister", regions, time.Time{}, func(key DetectingRegion, _ int64) {
		delete(d.detectors, key)
	})
}

// update applies fn to each of regions under the lock, in term only.
func (d *FailureDetector) update(term int64, op string, regions []DetectingRegion, at time.Time, fn func(DetectingRegion, int64)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if term == 0 || term != d.term {
		return fmt.Errorf("%w: cannot %s %d regions in term %d (running: %d)", ErrNotDetecting, op, len(regions), term, d.term)
	}
	ts := d.millis(at)
	for _, r := range regions {
		fn(r, ts)
	}
	d.log.Debug("region failure detectors updated", "op", op, "term", term, "regions", len(regions))
	return nil
}

func seeded(o PhiAccrualOptions, ts int64) *PhiAccrualDetector {
	fd := newPhiAccrual(o, historySize)
	fd.Heartbeat(ts)
	return fd
}

// Failed lists the watched pairs whose phi at now has reached the
// threshold, by datanode id then region id. They stay watched: the
// supervisor deregisters or resets them once it has acted.
func (d *FailureDetector) Failed(now time.Time) []FailedRegion {
	d.mu.Lock()
	ts := d.millis(now)
	var out []FailedRegion
	for key, fd := range d.detectors {
		if p := fd.Phi(ts); p >= fd.Threshold() {
			out = append(out, FailedRegion{DatanodeID: key.DatanodeID, RegionID: key.RegionID, Phi: p})
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b FailedRegion) int {
		return cmp.Or(cmp.Compare(a.DatanodeID, b.DatanodeID), cmp.Compare(a.RegionID, b.RegionID))
	})
	return out
}

// Phi is, for each datanode with a watched region, the highest phi at now
// of its regions.
func (d *FailureDetector) Phi(now time.Time) map[uint64]float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts := d.millis(now)
	out := map[uint64]float64{}
	for key, fd := range d.detectors {
		p := fd.Phi(ts)
		if cur, ok := out[key.DatanodeID]; !ok || p > cur {
			out[key.DatanodeID] = p
		}
	}
	return out
}

// Contains reports whether regionID on datanodeID is watched.
func (d *FailureDetector) Contains(datanodeID, regionID uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.detectors[DetectingRegion{DatanodeID: datanodeID, RegionID: regionID}]
	return ok
}

// Len is the number of watched pairs.
func (d *FailureDetector) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.detectors)
}
