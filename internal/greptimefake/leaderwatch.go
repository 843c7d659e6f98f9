package greptimefake

import (
	"context"
	"sync"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
)

// LeaderWatch feeds a LeaderWindows from running datanodes (every lease they
// receive and every DowngradeRegions they execute) and remembers each
// region's latest Leader grant, for tests that wait for a region to move
// and then check that no region was ever leader on two datanodes at once.
// Safe for concurrent use.
type LeaderWatch struct {
	mu       sync.Mutex
	windows  *LeaderWindows
	latest   map[uint64]uint64 // region -> datanode of its latest Leader grant
	overlaps []string
	// updated gets a signal (the latest kept) whenever a lease is recorded.
	updated chan struct{}
}

// NewLeaderWatch returns a watch of no datanode yet.
func NewLeaderWatch() *LeaderWatch {
	return &LeaderWatch{windows: NewLeaderWindows(), latest: map[uint64]uint64{}, updated: make(chan struct{}, 1)}
}

// Watch records datanode id's leases and executed downgrades, from dn's
// Leases and Instructions (which it then consumes), until done is closed.
func (w *LeaderWatch) Watch(id uint64, dn *Node, done <-chan struct{}) {
	go func() {
		for {
			select {
			case <-done:
				return
			case l := <-dn.Leases():
				w.lease(id, l, time.Now())
			case ev := <-dn.Instructions():
				if down, ok := ev.Instruction.(instruction.DowngradeRegions); ok && ev.Executed {
					w.mu.Lock()
					for _, d := range down {
						w.windows.Downgraded(id, uint64(d.RegionID), time.Now())
					}
					w.mu.Unlock()
				}
			}
		}
	}()
}

func (w *LeaderWatch) lease(dn uint64, l *metapb.RegionLease, at time.Time) {
	w.mu.Lock()
	w.overlaps = append(w.overlaps, w.windows.Lease(dn, l, at)...)
	for _, g := range l.GetRegions() {
		if g.GetRole() == metapb.RegionRole_Leader {
			w.latest[g.GetRegionId()] = dn
		}
	}
	w.mu.Unlock()
	select {
	case w.updated <- struct{}{}:
	default:
	}
}

// WaitLeader waits until region's latest Leader grant is on a datanode ok
// accepts, and returns that datanode; the error is ctx's when it ends
// first, with the datanode of the latest grant (0: none yet).
func (w *LeaderWatch) WaitLeader(ctx context.Context, region uint64, ok func(datanode uint64) bool) (uint64, error) {
	for {
		w.mu.Lock()
		dn, seen := w.latest[region]
		w.mu.Unlock()
		if seen && ok(dn) {
			return dn, nil
		}
		select {
		case <-w.updated:
		case <-ctx.Done():
			return dn, ctx.Err()
		}
	}
}

// Overlaps describes every Leader grant made while another datanode held
// the region; empty when there was none.
func (w *LeaderWatch) Overlaps() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.overlaps...)
}
