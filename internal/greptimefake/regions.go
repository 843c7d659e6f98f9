package greptimefake

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// RegionRole is a region's role on its datanode (the generated enum).
type RegionRole = metapb.RegionRole

// The region roles.
const (
	RegionLeader            = metapb.RegionRole_Leader
	RegionFollower          = metapb.RegionRole_Follower
	RegionDowngradingLeader = metapb.RegionRole_DowngradingLeader
	RegionStagingLeader     = metapb.RegionRole_StagingLeader
)

// Region engine names (MITO_ENGINE_NAME, the metric engine's name).
const (
	EngineMito   = "mito"
	EngineMetric = "metric"
)

// RegionStatisticKey is the RegionStat extension a datanode puts each
// region's RegionStatistic JSON under (REGION_STATISTIC_KEY).
const RegionStatisticKey = "__region_statistic"

// firstLeaseIntervals is how many heartbeat intervals a region's lease
// countdown first runs before any lease renews it: GreptimeDB gives a region
// four beats' grace after the keeper starts or the region is registered.
const firstLeaseIntervals = 4

// regionManifestBytes is the manifest size reported for every region: the
// fake writes no data, so a region's only footprint is of the order of a new
// region's manifest, the same for all, and not zero (load-based selection
// would see no load at all otherwise).
const regionManifestBytes = 1024

// region is one region a datanode holds.
type region struct {
	role   RegionRole
	engine string
	// deadline is when the lease countdown turns the region into a
	// follower; zero when none runs (GreptimeDB's "far future").
	deadline time.Time
	// counting is whether the countdown was started: it starts once, when
	// the keeper starts or, after that, when the region is registered.
	counting    bool
	lastEntryID uint64
}

// regions is the region set of a datanode and its alive keeper: every
// method first applies the lease countdowns that have run out, so the state
// seen is what GreptimeDB's timers would have made of it by now.
type regions struct {
	mu        sync.Mutex
	m         map[uint64]*region
	keeperOn  bool
	interval  time.Duration
	lastEntry map[uint64]uint64 // set by SetLastEntryID, kept across close and reopen
}

func newRegions() *regions {
	return &regions{m: make(map[uint64]*region), lastEntry: make(map[uint64]uint64)}
}

// expireLocked turns every region whose countdown has run out into a
// follower and stops its countdown (the countdown task's expiry arm).
func (r *regions) expireLocked(now time.Time) {
	for _, g := range r.m {
		if !g.deadline.IsZero() && !now.Before(g.deadline) {
			g.role, g.deadline = RegionFollower, time.Time{}
		}
	}
}

// registerLocked adds a region (RegionServerEvent::Registered), starting its
// countdown when the keeper runs.
func (r *regions) registerLocked(id uint64, role RegionRole, engine string, now time.Time) {
	if engine == "" {
		engine = EngineMito
	}
	g := &region{role: role, engine: engine, lastEntryID: r.lastEntry[id]}
	if r.keeperOn {
		g.deadline, g.counting = now.Add(firstLeaseIntervals*r.interval), true
	}
	r.m[id] = g
}

// startKeeper starts the alive keeper with the heartbeat interval of the
// first handshake, starting the countdowns of the regions registered so far;
// later calls only take the new interval, for regions registered after
// (update_heartbeat_interval on a reconnect).
func (r *regions) startKeeper(interval time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.expireLocked(now)
	r.interval = interval
	if r.keeperOn {
		return
	}
	r.keeperOn = true
	for _, g := range r.m {
		if !g.counting {
			g.deadline, g.counting = now.Add(firstLeaseIntervals*interval), true
		}
	}
}

// create makes a leader region; an existing one is left as it is.
func (r *regions) create(id uint64, engine string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.expireLocked(now)
	if _, ok := r.m[id]; !ok {
		r.registerLocked(id, RegionLeader, engine, now)
	}
}

// open opens a region as a follower; an open one is left as it is.
func (r *regions) open(id uint64, engine string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.expireLocked(now)
	if _, ok := r.m[id]; !ok {
		r.registerLocked(id, RegionFollower, engine, now)
	}
}

// close removes a region; a missing one is already closed.
func (r *regions) close(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}

// drop removes a writable region. A missing one is no error: the region
// server answers a deregistration of an unknown region with 0 rows. The
// engine refuses a region that is not writable.
func (r *regions) drop(id uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	g, ok := r.m[id]
	switch {
	case !ok:
		return nil
	case g.role != RegionLeader && g.role != RegionStagingLeader:
		return notWritable(id, g.role)
	}
	delete(r.m, id)
	return nil
}

// dropBatch drops the regions in order as the region server's batch path
// does: when the first region is unknown the whole batch is answered with 0
// rows and nothing is dropped; after that an unknown region is
// RegionNotFound, with the regions before it dropped.
func (r *regions) dropBatch(ids []uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	if len(ids) == 0 {
		return statuscode.Errorf(statuscode.InvalidArguments, "empty batch of drop requests")
	}
	if _, ok := r.m[ids[0]]; !ok {
		return nil
	}
	for _, id := range ids {
		g, ok := r.m[id]
		switch {
		case !ok:
			return regionNotFound(id)
		case g.role != RegionLeader && g.role != RegionStagingLeader:
			return notWritable(id, g.role)
		}
		delete(r.m, id)
	}
	return nil
}

// checkAlterable is what an alter or truncate needs: the region held, and a
// writable leader that is not staging.
func (r *regions) checkAlterable(id uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	g, ok := r.m[id]
	switch {
	case !ok:
		return regionNotFound(id)
	case g.role != RegionLeader:
		return notWritable(id, g.role)
	}
	return nil
}

func regionNotFound(id uint64) error {
	return statuscode.Errorf(statuscode.RegionNotFound, "RegionId %s not found", instruction.RegionID(id))
}

func notWritable(id uint64, role RegionRole) error {
	return statuscode.Errorf(statuscode.RegionNotReady, "Region %s is in %s state, expect: Leader(Writable)",
		instruction.RegionID(id), roleState(role))
}

// roleState is how mito names the role's state in its errors.
func roleState(role RegionRole) string {
	switch role {
	case RegionFollower:
		return "Follower"
	case RegionDowngradingLeader:
		return "Leader(Downgrading)"
	case RegionStagingLeader:
		return "Leader(Staging)"
	default:
		return "Leader(Writable)"
	}
}

// grantRole is the role a region takes when a lease grants it granted
// (mito's set_role): a follower stays one when asked to downgrade, and
// staging cannot be entered this way.
func grantRole(cur, granted RegionRole) RegionRole {
	switch granted {
	case RegionFollower, RegionLeader:
		return granted
	case RegionDowngradingLeader:
		if cur == RegionLeader || cur == RegionStagingLeader {
			return RegionDowngradingLeader
		}
	}
	return cur
}

// applyLease renews the granted regions it holds until the lease's end
// (epoch + duration_since_epoch + lease_seconds), in the granted role, and
// then closes the closeable ones, as RegionAliveKeeper does. Granted regions
// it does not hold are ignored.
func (r *regions) applyLease(l *metapb.RegionLease, epoch time.Time) {
	deadline := epoch.Add(time.Duration(l.GetDurationSinceEpoch())*time.Millisecond +
		time.Duration(l.GetLeaseSeconds())*time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	for _, gr := range l.GetRegions() {
		if g, ok := r.m[gr.GetRegionId()]; ok {
			g.role, g.deadline = grantRole(g.role, gr.GetRole()), deadline
		}
	}
	for _, id := range l.GetCloseableRegionIds() {
		delete(r.m, id)
	}
}

// snapshot is every held region's role.
func (r *regions) snapshot() map[uint64]RegionRole {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	out := make(map[uint64]RegionRole, len(r.m))
	for id, g := range r.m {
		out[id] = g.role
	}
	return out
}

// setLastEntryID sets the WAL entry id a region reports.
func (r *regions) setLastEntryID(id, entry uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastEntry[id] = entry
	if g, ok := r.m[id]; ok {
		g.lastEntryID = entry
	}
}

// regionStatistic is store-api's RegionStatistic as serde_json writes it,
// fields in declaration order.
type regionStatistic struct {
	NumRows                    uint64          `json:"num_rows"`
	MemtableSize               uint64          `json:"memtable_size"`
	WalSize                    uint64          `json:"wal_size"`
	ManifestSize               uint64          `json:"manifest_size"`
	SstSize                    uint64          `json:"sst_size"`
	SstNum                     uint64          `json:"sst_num"`
	IndexSize                  uint64          `json:"index_size"`
	Manifest                   json.RawMessage `json:"manifest"`
	WrittenBytes               uint64          `json:"written_bytes"`
	DataTopicLatestEntryID     uint64          `json:"data_topic_latest_entry_id"`
	MetadataTopicLatestEntryID uint64          `json:"metadata_topic_latest_entry_id"`
}

// manifestInfo is RegionManifestInfo, externally tagged by engine.
func manifestInfo(engine string, flushed uint64) json.RawMessage {
	var v any
	if engine == EngineMetric {
		v = map[string]any{"Metric": map[string]uint64{
			"data_manifest_version": 0, "data_flushed_entry_id": flushed,
			"metadata_manifest_version": 0, "metadata_flushed_entry_id": flushed,
		}}
	} else {
		v = map[string]any{"Mito": map[string]uint64{"manifest_version": 0, "flushed_entry_id": flushed, "file_removed_cnt": 0}}
	}
	b, _ := json.Marshal(v) // maps of numbers always encode
	return b
}

// stats is the region_stats of a beat, in region id order: rcus and wcus 0
// (GreptimeDB does not measure them yet), approximate_bytes the estimated
// disk size, the statistic under RegionStatisticKey.
func (r *regions) stats() []*metapb.RegionStat {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	ids := slices.Sorted(maps.Keys(r.m))
	out := make([]*metapb.RegionStat, 0, len(ids))
	for _, id := range ids {
		g := r.m[id]
		st := regionStatistic{ManifestSize: regionManifestBytes, Manifest: manifestInfo(g.engine, g.lastEntryID)}
		ext, _ := json.Marshal(st) // plain numbers and valid raw JSON always encode
		out = append(out, &metapb.RegionStat{
			RegionId:         id,
			Engine:           g.engine,
			Role:             g.role,
			ApproximateBytes: int64(st.WalSize + st.SstSize + st.ManifestSize + st.IndexSize),
			Extensions:       map[string][]byte{RegionStatisticKey: ext},
		})
	}
	return out
}

// upgrade is UpgradeRegionsHandler for one region: a missing one does not
// exist, a leader (writable or downgrading) is ready as it is, a follower
// catches up at once and becomes the leader.
func (r *regions) upgrade(u instruction.UpgradeRegion) instruction.UpgradeRegionReply {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	g, ok := r.m[uint64(u.RegionID)]
	if !ok {
		return instruction.UpgradeRegionReply{RegionID: u.RegionID}
	}
	if g.role == RegionFollower {
		g.role = RegionLeader
	}
	return instruction.UpgradeRegionReply{RegionID: u.RegionID, Ready: true, Exists: true}
}

// downgrade is DowngradeRegionsHandler for one region: a missing one does
// not exist; any other ends a follower (a writable leader with a flush
// timeout flushes first, which the fake does at once) and reports its last
// entry id (mito has no metadata entry id).
func (r *regions) downgrade(d instruction.DowngradeRegion) instruction.DowngradeRegionReply {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	g, ok := r.m[uint64(d.RegionID)]
	if !ok {
		return instruction.DowngradeRegionReply{RegionID: d.RegionID}
	}
	g.role = RegionFollower
	last := g.lastEntryID
	return instruction.DowngradeRegionReply{RegionID: d.RegionID, LastEntryID: &last, Exists: true}
}

// flush is a sync FlushRegions: each region must be held and a leader
// (downgrading counts); FailFast stops at the first failure.
func (r *regions) flush(f instruction.FlushRegions) instruction.FlushRegionsReply {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	out := instruction.FlushRegionsReply{OverallSuccess: true, Results: make([]instruction.FlushResult, 0, len(f.RegionIDs))}
	for _, id := range f.RegionIDs {
		res := instruction.FlushResult{RegionID: id}
		switch g, ok := r.m[uint64(id)]; {
		case !ok:
			res.Err = new(regionNotFound(uint64(id)).Error())
		case g.role == RegionFollower:
			res.Err = new("Region " + id.String() + " not ready")
		}
		out.Results = append(out.Results, res)
		if res.Err != nil {
			out.OverallSuccess = false
			if f.ErrorStrategy != instruction.FlushTryAll {
				break
			}
		}
	}
	return out
}
