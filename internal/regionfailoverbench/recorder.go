package regionfailoverbench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
)

// maxViolations is how many lease overlaps are described; more are only
// counted.
const maxViolations = 10

// recorder takes every datanode's leases and instructions, each timed on
// arrival under one lock so that their order is the order they arrived in.
// It checks the leader grants for overlaps over the whole run, and times
// the round being measured.
type recorder struct {
	mu sync.Mutex
	// changed is closed, and replaced, at every record.
	changed      chan struct{}
	windows      *greptimefake.LeaderWindows
	violations   []string
	overlaps     int
	leaseSeconds uint64
	latest       map[uint64]seenLease // per datanode
	round        *roundWatch
}

// seenLease is a lease and when it arrived.
type seenLease struct {
	lease *metapb.RegionLease
	at    time.Time
}

// roundWatch is what a round times, from the victim's stop: per victim
// region, the first OpenRegions and UpgradeRegions a live datanode
// executed and the first lease granting one Leader.
type roundWatch struct {
	victim   uint64
	regions  map[uint64]bool
	opened   map[uint64]time.Time
	upgraded map[uint64]time.Time
	leader   map[uint64]time.Time
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}), windows: greptimefake.NewLeaderWindows(), latest: map[uint64]seenLease{}}
}

// signalLocked wakes the waiters; r.mu is held.
func (r *recorder) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// lease records a lease datanode id received: its Leader grants must not
// begin while another datanode holds the region (greptimefake's
// LeaderWindows), and a live datanode's first Leader grant of a round's
// region times the round.
func (r *recorder) lease(id uint64, l *metapb.RegionLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.leaseSeconds = l.GetLeaseSeconds()
	overlaps := r.windows.Lease(id, l, now)
	r.overlaps += len(overlaps)
	r.violations = append(r.violations, overlaps[:min(len(overlaps), maxViolations-min(len(r.violations), maxViolations))]...)
	if w := r.round; w != nil && id != w.victim {
		for _, g := range l.GetRegions() {
			rid := g.GetRegionId()
			if _, seen := w.leader[rid]; g.GetRole() == metapb.RegionRole_Leader && w.regions[rid] && !seen {
				w.leader[rid] = now
			}
		}
	}
	r.latest[id] = seenLease{lease: l, at: now}
	r.signalLocked()
}

// instruction records the first OpenRegions and UpgradeRegions a live
// datanode executed for each region of the round.
func (r *recorder) instruction(id uint64, ev greptimefake.InstructionEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.round
	if w == nil || id == w.victim || !ev.Executed {
		return
	}
	now := time.Now()
	first := func(m map[uint64]time.Time, rid uint64) {
		if _, ok := m[rid]; !ok && w.regions[rid] {
			m[rid] = now
		}
	}
	switch ins := ev.Instruction.(type) {
	case instruction.OpenRegions:
		for _, o := range ins {
			first(w.opened, uint64(o.RegionIdent.RegionID()))
		}
	case instruction.UpgradeRegions:
		for _, u := range ins {
			first(w.upgraded, uint64(u.RegionID))
		}
	}
	r.signalLocked()
}

// watchRound starts timing the failover of regions from victim.
func (r *recorder) watchRound(victim uint64, regions []uint64) {
	w := &roundWatch{victim: victim, regions: map[uint64]bool{}, opened: map[uint64]time.Time{},
		upgraded: map[uint64]time.Time{}, leader: map[uint64]time.Time{}}
	for _, id := range regions {
		w.regions[id] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.round = w
}

// endRound stops timing and returns what the round saw.
func (r *recorder) endRound() *roundWatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.round
	r.round = nil
	return w
}

// wait waits until cond, evaluated under the lock after every record, is
// true; it fails after timeout.
func (r *recorder) wait(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("%w: %s within %s", ErrTimeout, what, timeout)
		case <-ctx.Done():
			return fmt.Errorf("regionfailoverbench: waiting for %s: %w", what, context.Cause(ctx))
		}
	}
}

// leasedLocked reports whether datanode id's latest lease arrived after
// after and grants it every one of regions as Leader (nil regions: any
// lease); r.mu is held.
func (r *recorder) leasedLocked(id uint64, regions []uint64, after time.Time) bool {
	l, ok := r.latest[id]
	if !ok || !l.at.After(after) {
		return false
	}
	leader := map[uint64]bool{}
	for _, g := range l.lease.GetRegions() {
		if g.GetRole() == metapb.RegionRole_Leader {
			leader[g.GetRegionId()] = true
		}
	}
	for _, rid := range regions {
		if !leader[rid] {
			return false
		}
	}
	return true
}

// forget drops datanode id's latest lease: a new datanode under that id
// must earn its own.
func (r *recorder) forget(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.latest, id)
}

// check is the lease check of the whole run.
func (r *recorder) check() LeaseCheck {
	r.mu.Lock()
	defer r.mu.Unlock()
	return LeaseCheck{LeaderGrants: r.windows.Grants(), Overlaps: r.overlaps, Problems: append([]string(nil), r.violations...), LeaseSeconds: r.leaseSeconds}
}
