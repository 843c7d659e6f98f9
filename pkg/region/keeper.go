package region

import (
	"context"
	"errors"
	"fmt"
	"sync"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/metasrv"
)

// ErrRegionOperating is returned by Register for a region that another
// procedure already operates on that datanode (GreptimeDB's
// RegionOperatingRace, whose text the error repeats).
var ErrRegionOperating = errors.New("another procedure is operating the region")

// ErrNoTerm is returned by Register while the keeper runs no term: before
// Start, after Stop. A procedure of a term that has ended must not mark
// regions for the next one.
var ErrNoTerm = errors.New("region: the region keeper runs no term")

// Keeper is the leader's registry of operating regions (GreptimeDB's
// MemoryRegionKeeper): regions being created, opened, dropped or migrated,
// by (datanode id, region id), with the role their lease is to carry until
// the procedure that registered them releases its Guard. It is a
// metasrv.Listener: each term starts with it empty.
type Keeper struct {
	mu      sync.Mutex
	term    int64 // the running term, 0 for none
	regions map[operatingKey]*Guard
	// recovered is set once the term's unfinished procedures were loaded
	// and took their holds again (MarkRecovered): before that, a region
	// without a route may be one a resumed procedure is about to hold.
	recovered bool
}

type operatingKey struct{ datanodeID, regionID uint64 }

var _ metasrv.Listener = (*Keeper)(nil)

// NewKeeper returns a keeper that runs no term yet.
func NewKeeper() *Keeper { return &Keeper{regions: map[operatingKey]*Guard{}} }

// Name identifies the listener in logs.
func (k *Keeper) Name() string { return "region_keeper" }

// Start opens term t with no operating region; a term still open is
// dropped with its registrations.
func (k *Keeper) Start(_ context.Context, t metasrv.Term) error {
	if t.ID <= 0 {
		return fmt.Errorf("region: keeper: term %d is not an election term", t.ID)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.term = t.ID
	k.recovered = false
	clear(k.regions)
	return nil
}

// MarkRecovered records that term's resumed procedures hold their regions
// again; see Recovered.
func (k *Keeper) MarkRecovered(term int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.term == term {
		k.recovered = true
	}
}

// Recovered reports whether the keeper runs term and its resumed
// procedures hold their regions: only then is a region that no route and no
// hold gives a datanode known to be nobody's (closeable).
func (k *Keeper) Recovered(term int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.term == term && k.recovered
}

// RecoveryListener is the leadership listener that marks the keeper
// recovered; it goes after the procedure manager, whose Start loads the
// unfinished procedures (their loaders take their holds again).
func (k *Keeper) RecoveryListener() metasrv.Listener { return recoveryListener{k: k} }

type recoveryListener struct{ k *Keeper }

func (recoveryListener) Name() string { return "region_keeper_recovered" }

func (l recoveryListener) Start(_ context.Context, t metasrv.Term) error {
	l.k.MarkRecovered(t.ID)
	return nil
}

func (recoveryListener) Stop() {}

// Stop ends the term: every registration is dropped, and the guards still
// held release nothing. Safe to call twice and before Start.
func (k *Keeper) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.term = 0
	k.recovered = false
	clear(k.regions)
}

// Term is the term the keeper runs, 0 for none.
func (k *Keeper) Term() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.term
}

// Register marks regionID on datanodeID as operating with role until the
// returned guard is released. It fails with ErrRegionOperating when the pair
// is already registered, and with ErrNoTerm when no term runs.
func (k *Keeper) Register(datanodeID, regionID uint64, role metapb.RegionRole) (*Guard, error) {
	key := operatingKey{datanodeID, regionID}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.term == 0 {
		return nil, fmt.Errorf("%w: cannot register region %s on datanode %d", ErrNoTerm, FormatRegionID(regionID), datanodeID)
	}
	if _, ok := k.regions[key]; ok {
		return nil, fmt.Errorf("%w: %s on peer: %d", ErrRegionOperating, FormatRegionID(regionID), datanodeID)
	}
	g := &Guard{keeper: k, key: key, role: role}
	k.regions[key] = g
	return g, nil
}

// Contains reports whether regionID on datanodeID is operating.
func (k *Keeper) Contains(datanodeID, regionID uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.regions[operatingKey{datanodeID, regionID}]
	return ok
}

// Len is the number of operating regions.
func (k *Keeper) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.regions)
}

// OperatingRoles returns, of regionIDs on datanodeID, those operating and
// their registered roles (extract_operating_region_roles). It is empty
// unless the keeper runs term: registrations belong to the term they were
// made in.
func (k *Keeper) OperatingRoles(term int64, datanodeID uint64, regionIDs []uint64) map[uint64]metapb.RegionRole {
	out := map[uint64]metapb.RegionRole{}
	k.mu.Lock()
	defer k.mu.Unlock()
	if term == 0 || term != k.term {
		return out
	}
	for _, id := range regionIDs {
		if g, ok := k.regions[operatingKey{datanodeID, id}]; ok {
			out[id] = g.role
		}
	}
	return out
}

// Guard is one registration, owned by the procedure that made it.
type Guard struct {
	keeper *Keeper
	key    operatingKey
	role   metapb.RegionRole
}

// Release ends the registration. Safe to call twice, and after the term
// ended: it only ever removes its own registration, never one made since
// by another procedure or in another term.
func (g *Guard) Release() {
	k := g.keeper
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.regions[g.key] == g {
		delete(k.regions, g.key)
	}
}

// DatanodeID is the datanode the region operates on.
func (g *Guard) DatanodeID() uint64 { return g.key.datanodeID }

// RegionID is the operating region.
func (g *Guard) RegionID() uint64 { return g.key.regionID }

// Role is the role the region's lease carries while it operates.
func (g *Guard) Role() metapb.RegionRole { return g.role }
