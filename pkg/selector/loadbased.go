package selector

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// LoadBased chooses at random among the alive datanodes that have stats,
// favouring those with fewer regions.
type LoadBased struct {
	rand func() float64
}

// NewLoadBased returns a load_based selector.
func NewLoadBased() *LoadBased { return &LoadBased{rand: rand.Float64} }

// Select is LeaseBased's choice with region-count weights; a datanode whose
// stats are not in the in-memory KV yet is not a candidate.
func (l *LoadBased) Select(ctx context.Context, in Input, opts Options) ([]Peer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	alive, err := AliveDatanodes(ctx, in, opts.WorkloadFilter)
	if err != nil {
		return nil, err
	}
	stats, err := readStats(ctx, in.Memory, alive)
	if err != nil {
		return nil, err
	}
	items := regionCountWeights(alive, stats)
	return chooseItems(opts, chooser{items: withoutExcluded(items, opts), rand: l.rand})
}

// readStats returns the stats of peers found in memory, by datanode id.
func readStats(ctx context.Context, memory kv.Backend, peers []Peer) (map[uint64]greptimekey.StatValue, error) {
	keys := make([][]byte, len(peers))
	for i, p := range peers {
		keys[i] = greptimekey.DatanodeStatKey(p.ID)
	}
	resp, err := memory.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("selector: read datanode stats: %w", err)
	}
	out := make(map[uint64]greptimekey.StatValue, len(resp.Kvs))
	for _, p := range resp.Kvs {
		id, err := greptimekey.ParseDatanodeStatKey(p.Key)
		if err != nil {
			return nil, fmt.Errorf("selector: %w", err)
		}
		v, err := greptimekey.Decode[greptimekey.StatValue](p.Value)
		if err != nil {
			return nil, fmt.Errorf("selector: stats %q: %w", p.Key, err)
		}
		out[id] = v
	}
	return out, nil
}

// regionCountWeights is GreptimeDB's RegionNumsBasedWeightCompute over the
// alive datanodes, in their order: from each one's last stat, its region
// count and address, weighted max - count + spread, where spread is
// max - min, or 1 when every count is the same. The address is the stat's.
func regionCountWeights(alive []Peer, stats map[uint64]greptimekey.StatValue) []weighted {
	type candidate struct {
		peer    Peer
		regions uint64
	}
	cands := make([]candidate, 0, len(alive))
	for _, p := range alive {
		v := stats[p.ID]
		if len(v) == 0 {
			continue
		}
		last := v[len(v)-1]
		cands = append(cands, candidate{Peer{ID: p.ID, Addr: last.Addr}, last.RegionNum})
	}
	if len(cands) == 0 {
		return nil
	}
	lo, hi := cands[0].regions, cands[0].regions
	for _, c := range cands[1:] {
		lo, hi = min(lo, c.regions), max(hi, c.regions)
	}
	spread := max(hi-lo, 1)
	out := make([]weighted, len(cands))
	for i, c := range cands {
		out[i] = weighted{peer: c.peer, weight: float64(hi - c.regions + spread)}
	}
	return out
}
