package selector

import (
	"cmp"
	"errors"
	"math"
	"slices"
)

// ErrChooseItems is returned when a weighted choice finds no candidate with
// a positive weight (GreptimeDB's ChooseItems). The weights this package
// computes are all positive, so it marks a defect, not a cluster state.
var ErrChooseItems = errors.New("selector: failed to choose items: no candidate has a positive weight")

// weighted is one candidate and its weight.
type weighted struct {
	peer   Peer
	weight float64
}

// chooser is GreptimeDB's RandomWeightedChoose: a candidate's chance is its
// weight over the sum of weights. rand returns numbers in [0, 1).
type chooser struct {
	items []weighted
	rand  func() float64
}

// one picks a single candidate.
func (c chooser) one() (Peer, error) {
	var total float64
	for _, it := range c.items {
		if it.weight > 0 {
			total += it.weight
		}
	}
	if total <= 0 || math.IsInf(total, 0) {
		return Peer{}, ErrChooseItems
	}
	r := c.rand() * total
	last := -1
	for i, it := range c.items {
		if it.weight <= 0 {
			continue
		}
		last = i
		if r < it.weight {
			return it.peer, nil
		}
		r -= it.weight
	}
	// Rounding can leave r just past the last weight.
	return c.items[last].peer, nil
}

// multiple picks up to n distinct candidates, never one of weight 0, by
// weighted sampling without replacement (Efraimidis and Spirakis: each
// candidate draws u^(1/w) and the n largest draws win), as rand's
// choose_multiple_weighted does.
func (c chooser) multiple(n int) []Peer {
	type draw struct {
		peer Peer
		key  float64
	}
	draws := make([]draw, 0, len(c.items))
	for _, it := range c.items {
		if it.weight > 0 {
			draws = append(draws, draw{it.peer, math.Pow(c.rand(), 1/it.weight)})
		}
	}
	slices.SortStableFunc(draws, func(a, b draw) int { return cmp.Compare(b.key, a.key) })
	n = min(n, len(draws))
	out := make([]Peer, n)
	for i := range out {
		out[i] = draws[i].peer
	}
	return out
}

// chooseItems is GreptimeDB's choose_items: it fills opts.MinRequiredItems
// from c, in rounds of distinct candidates when duplication is allowed.
func chooseItems(opts Options, c chooser) ([]Peer, error) {
	want := opts.MinRequiredItems
	if len(c.items) == 0 {
		return nil, &NotEnoughAvailableError{Required: want, Available: 0}
	}
	if want == 1 {
		p, err := c.one()
		if err != nil {
			return nil, err
		}
		return []Peer{p}, nil
	}
	available := len(c.items)
	if !opts.AllowDuplication {
		if available < want {
			return nil, &NotEnoughAvailableError{Required: want, Available: available}
		}
		return c.multiple(want), nil
	}
	out := make([]Peer, 0, want)
	for range want / available {
		out = append(out, c.multiple(available)...)
	}
	return append(out, c.multiple(want%available)...), nil
}

// withoutExcluded drops the candidates opts excludes
// (filter_out_excluded_peers).
func withoutExcluded(items []weighted, opts Options) []weighted {
	return slices.DeleteFunc(items, func(it weighted) bool { return opts.excludes(it.peer.ID) })
}
