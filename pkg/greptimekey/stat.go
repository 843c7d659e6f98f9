package greptimekey

import (
	"encoding/json"
	"fmt"
)

// StatValue is the value of a __meta_datanode_stat key: the datanode's
// recent stats, oldest first (readers use the last). GreptimeDB's
// DatanodeStatValue is #[serde(transparent)], so the value is a bare JSON
// array, not {"stats":[...]}.
type StatValue []Stat

// Encode returns the value as GreptimeDB writes it.
func (v StatValue) Encode() ([]byte, error) { return v.MarshalJSON() }

func (v StatValue) MarshalJSON() ([]byte, error) { return appendStats(make([]byte, 0, 1024), v) }

func (v *StatValue) UnmarshalJSON(data []byte) error {
	var stats []Stat
	if err := listOf(&stats).UnmarshalJSON(data); err != nil {
		return within("StatValue", "", err)
	}
	*v = StatValue(nonNil(stats))
	return nil
}

// Stat is one heartbeat's statistics of a datanode (common/meta datanode.rs
// Stat). TimestampMillis is the metasrv's clock when it received the
// heartbeat; Rcus and Wcus are the sums over RegionStats, RegionNum their
// count. Every field but GcStat is required on reading.
type Stat struct {
	TimestampMillis   int64        `json:"timestamp_millis"`
	ID                uint64       `json:"id"`
	Addr              string       `json:"addr"`
	Rcus              int64        `json:"rcus"`
	Wcus              int64        `json:"wcus"`
	RegionNum         uint64       `json:"region_num"`
	RegionStats       []RegionStat `json:"region_stats"`
	TopicStats        []TopicStat  `json:"topic_stats"`
	NodeEpoch         uint64       `json:"node_epoch"`
	DatanodeWorkloads []int32      `json:"datanode_workloads"` // written as {"types":[..]}
	GcStat            *GcStat      `json:"gc_stat"`            // null when the datanode sent none
}

func (s Stat) MarshalJSON() ([]byte, error) {
	return encode(struct {
		TimestampMillis   int64        `json:"timestamp_millis"`
		ID                uint64       `json:"id"`
		Addr              string       `json:"addr"`
		Rcus              int64        `json:"rcus"`
		Wcus              int64        `json:"wcus"`
		RegionNum         uint64       `json:"region_num"`
		RegionStats       []RegionStat `json:"region_stats"`
		TopicStats        []TopicStat  `json:"topic_stats"`
		NodeEpoch         uint64       `json:"node_epoch"`
		DatanodeWorkloads workloads    `json:"datanode_workloads"`
		GcStat            *GcStat      `json:"gc_stat"`
	}{
		s.TimestampMillis, s.ID, s.Addr, s.Rcus, s.Wcus, s.RegionNum,
		nonNil(s.RegionStats), nonNil(s.TopicStats), s.NodeEpoch, workloads(s.DatanodeWorkloads), s.GcStat,
	})
}

func (s *Stat) UnmarshalJSON(data []byte) error {
	var out Stat
	var w workloads
	if err := decodeObject("Stat", data,
		required("timestamp_millis", &out.TimestampMillis),
		required("id", &out.ID),
		required("addr", &out.Addr),
		required("rcus", &out.Rcus),
		required("wcus", &out.Wcus),
		required("region_num", &out.RegionNum),
		required("region_stats", listOf(&out.RegionStats)),
		required("topic_stats", listOf(&out.TopicStats)),
		required("node_epoch", &out.NodeEpoch),
		required("datanode_workloads", &w),
		option("gc_stat", &out.GcStat),
	); err != nil {
		return err
	}
	out.DatanodeWorkloads = []int32(w)
	*s = out
	return nil
}

// GcStat is a datanode's garbage-collection load, sent in the heartbeat's
// "__gc_stat" extension.
type GcStat struct {
	RunningGcTasks uint32 `json:"running_gc_tasks"`
	GcConcurrency  uint32 `json:"gc_concurrency"`
}

func (g GcStat) MarshalJSON() ([]byte, error) {
	type plain GcStat
	return encode(plain(g))
}

func (g *GcStat) UnmarshalJSON(data []byte) error {
	var out GcStat
	if err := decodeObject("GcStat", data,
		required("running_gc_tasks", &out.RunningGcTasks),
		required("gc_concurrency", &out.GcConcurrency),
	); err != nil {
		return err
	}
	*g = out
	return nil
}

// RegionRole is a region's role as store-api's RegionRole variant name.
type RegionRole string

const (
	RegionRoleFollower          RegionRole = "Follower"
	RegionRoleLeader            RegionRole = "Leader"
	RegionRoleStagingLeader     RegionRole = "StagingLeader"
	RegionRoleDowngradingLeader RegionRole = "DowngradingLeader"
)

// IsLeader reports whether the role counts as a leader region in
// DatanodeStatus: Leader or StagingLeader.
func (r RegionRole) IsLeader() bool {
	return r == RegionRoleLeader || r == RegionRoleStagingLeader
}

func (r RegionRole) valid() bool {
	switch r {
	case RegionRoleFollower, RegionRoleLeader, RegionRoleStagingLeader, RegionRoleDowngradingLeader:
		return true
	default:
		return false
	}
}

func (r RegionRole) MarshalJSON() ([]byte, error) {
	if !r.valid() {
		return nil, fmt.Errorf("%w: unknown region role %q", ErrInvalidValue, string(r))
	}
	return encode(string(r))
}

func (r *RegionRole) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return &fieldError{typ: "RegionRole", err: err}
	}
	if !RegionRole(s).valid() {
		return &fieldError{typ: "RegionRole", err: fmt.Errorf("unknown variant %q", s)}
	}
	*r = RegionRole(s)
	return nil
}

// RegionStat is one region's statistics in a Stat. Every field is required
// on reading. ID is the RegionId (table id << 32 | region number), written as
// a number (GreptimeDB also reads a string). RegionManifest is the
// externally tagged RegionManifestInfo, kept as raw JSON; build it with
// MitoManifest or MetricManifest.
type RegionStat struct {
	ID                         uint64          `json:"id"`
	Rcus                       int64           `json:"rcus"`
	Wcus                       int64           `json:"wcus"`
	ApproximateBytes           uint64          `json:"approximate_bytes"`
	Engine                     string          `json:"engine"`
	Role                       RegionRole      `json:"role"`
	NumRows                    uint64          `json:"num_rows"`
	MemtableSize               uint64          `json:"memtable_size"`
	ManifestSize               uint64          `json:"manifest_size"`
	SstSize                    uint64          `json:"sst_size"`
	SstNum                     uint64          `json:"sst_num"`
	IndexSize                  uint64          `json:"index_size"`
	RegionManifest             json.RawMessage `json:"region_manifest"`
	WrittenBytes               uint64          `json:"written_bytes"`
	DataTopicLatestEntryID     uint64          `json:"data_topic_latest_entry_id"`
	MetadataTopicLatestEntryID uint64          `json:"metadata_topic_latest_entry_id"`
}

func (r RegionStat) MarshalJSON() ([]byte, error) {
	if len(r.RegionManifest) == 0 || isNull(r.RegionManifest) {
		return nil, fmt.Errorf("%w: RegionStat of region %d: region_manifest is required", ErrInvalidValue, r.ID)
	}
	type plain RegionStat
	return encode(plain(r))
}

func (r *RegionStat) UnmarshalJSON(data []byte) error {
	var out RegionStat
	var id regionID
	if err := decodeObject("RegionStat", data,
		required("id", &id),
		required("rcus", &out.Rcus),
		required("wcus", &out.Wcus),
		required("approximate_bytes", &out.ApproximateBytes),
		required("engine", &out.Engine),
		required("role", &out.Role),
		required("num_rows", &out.NumRows),
		required("memtable_size", &out.MemtableSize),
		required("manifest_size", &out.ManifestSize),
		required("sst_size", &out.SstSize),
		required("sst_num", &out.SstNum),
		required("index_size", &out.IndexSize),
		required("region_manifest", &out.RegionManifest),
		required("written_bytes", &out.WrittenBytes),
		required("data_topic_latest_entry_id", &out.DataTopicLatestEntryID),
		required("metadata_topic_latest_entry_id", &out.MetadataTopicLatestEntryID),
	); err != nil {
		return err
	}
	out.ID = uint64(id)
	*r = out
	return nil
}

// regionID reads a RegionId as GreptimeDB's str_or_u64 does: a number, or a
// string holding one.
type regionID uint64

func (id *regionID) UnmarshalJSON(data []byte) error {
	var n uint64
	if err := json.Unmarshal(data, &n); err == nil {
		*id = regionID(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a number or a string holding one: %s", data)
	}
	if err := json.Unmarshal([]byte(s), &n); err != nil || !allDigits([]byte(s)) {
		return fmt.Errorf("string %q is not a region id", s)
	}
	*id = regionID(n)
	return nil
}

// MitoManifest is the RegionManifestInfo of a mito region.
func MitoManifest(manifestVersion, flushedEntryID, fileRemovedCnt uint64) json.RawMessage {
	// Encoding a struct of numbers cannot fail.
	b, _ := encodeVariant("Mito", struct {
		ManifestVersion uint64 `json:"manifest_version"`
		FlushedEntryID  uint64 `json:"flushed_entry_id"`
		FileRemovedCnt  uint64 `json:"file_removed_cnt"`
	}{manifestVersion, flushedEntryID, fileRemovedCnt})
	return b
}

// MetricManifest is the RegionManifestInfo of a metric-engine region.
func MetricManifest(dataManifestVersion, dataFlushedEntryID, metadataManifestVersion, metadataFlushedEntryID uint64) json.RawMessage {
	// Encoding a struct of numbers cannot fail.
	b, _ := encodeVariant("Metric", struct {
		DataManifestVersion     uint64 `json:"data_manifest_version"`
		DataFlushedEntryID      uint64 `json:"data_flushed_entry_id"`
		MetadataManifestVersion uint64 `json:"metadata_manifest_version"`
		MetadataFlushedEntryID  uint64 `json:"metadata_flushed_entry_id"`
	}{dataManifestVersion, dataFlushedEntryID, metadataManifestVersion, metadataFlushedEntryID})
	return b
}

// TopicStat is one remote-WAL topic's statistics in a Stat; every field is
// required on reading.
type TopicStat struct {
	Topic         string `json:"topic"`
	LatestEntryID uint64 `json:"latest_entry_id"`
	RecordSize    uint64 `json:"record_size"`
	RecordNum     uint64 `json:"record_num"`
}

func (t TopicStat) MarshalJSON() ([]byte, error) {
	type plain TopicStat
	return encode(plain(t))
}

func (t *TopicStat) UnmarshalJSON(data []byte) error {
	var out TopicStat
	if err := decodeObject("TopicStat", data,
		required("topic", &out.Topic),
		required("latest_entry_id", &out.LatestEntryID),
		required("record_size", &out.RecordSize),
		required("record_num", &out.RecordNum),
	); err != nil {
		return err
	}
	*t = out
	return nil
}
