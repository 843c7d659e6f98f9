package selector

import (
	"cmp"
	"context"
	"slices"
	"sync/atomic"
)

// RoundRobin hands out the alive datanodes in id order, continuing where the
// previous selection stopped. Its counter is the one piece of selector state;
// see the package comment for who owns it.
type RoundRobin struct {
	next atomic.Uint64
}

// NewRoundRobin returns a round_robin selector whose counter starts at 0.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// Select returns exactly opts.MinRequiredItems peers, cycling through the
// candidates, so a datanode repeats once they run out, whatever
// AllowDuplication says (GreptimeDB's RoundRobinSelector never checks it).
// It fails only when no candidate is left.
func (r *RoundRobin) Select(ctx context.Context, in Input, opts Options) ([]Peer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	alive, err := AliveDatanodes(ctx, in, opts.WorkloadFilter)
	if err != nil {
		return nil, err
	}
	peers := slices.DeleteFunc(alive, func(p Peer) bool { return opts.excludes(p.ID) })
	if len(peers) == 0 {
		return nil, &NotEnoughAvailableError{Required: opts.MinRequiredItems, Available: 0}
	}
	slices.SortStableFunc(peers, func(a, b Peer) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]Peer, opts.MinRequiredItems)
	n := uint64(len(peers))
	for i := range out {
		out[i] = peers[(r.next.Add(1)-1)%n]
	}
	return out, nil
}
