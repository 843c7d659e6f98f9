package selector

import (
	"context"
	"math/rand/v2"
)

// LeaseBased chooses at random, with equal chances, among the alive
// datanodes.
type LeaseBased struct {
	rand func() float64
}

// NewLeaseBased returns a lease_based selector.
func NewLeaseBased() *LeaseBased { return &LeaseBased{rand: rand.Float64} }

// Select returns opts.MinRequiredItems distinct peers, or, with
// AllowDuplication, rounds of distinct peers until it has them.
func (l *LeaseBased) Select(ctx context.Context, in Input, opts Options) ([]Peer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	alive, err := AliveDatanodes(ctx, in, opts.WorkloadFilter)
	if err != nil {
		return nil, err
	}
	items := make([]weighted, len(alive))
	for i, p := range alive {
		items[i] = weighted{peer: p, weight: 1}
	}
	return chooseItems(opts, chooser{items: withoutExcluded(items, opts), rand: l.rand})
}
