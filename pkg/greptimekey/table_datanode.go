package greptimekey

import (
	"fmt"
	"strconv"
)

// DatanodeTableValue is the value of a __dn_table key
// (key/datanode_table.rs DatanodeTableValue): the regions of one table on
// one datanode, and what the datanode needs to open them. RegionInfo's
// fields are flattened into the object:
//
//	{"table_id":1024,"regions":[0,1],"follower_regions":[],"engine":"mito",
//	 "region_storage_path":"greptime/public","region_options":{},
//	 "region_wal_options":{"0":"{\"wal.provider\":\"raft_engine\"}"},"version":0}
//
// On reading, table_id, regions and version are required, the rest default
// to empty.
type DatanodeTableValue struct {
	TableID         uint32
	Regions         []uint32 // the region numbers the datanode leads
	FollowerRegions []uint32
	RegionInfo      RegionInfo
	// Version is 0 whenever GreptimeDB writes the value, updates included
	// (DatanodeTableValue::new is its only constructor).
	Version uint64
}

// RegionInfo is what every region of a table shares
// (key/datanode_table.rs RegionInfo).
type RegionInfo struct {
	Engine            string
	RegionStoragePath string            // RegionStoragePath(catalog, schema)
	RegionOptions     map[string]string // TableOptions.RegionOptions of the table
	// RegionWALOptions maps every region number of the table (not just
	// this datanode's) to its encoded WALOptions; JSON object keys are the
	// numbers in decimal.
	RegionWALOptions map[uint32]string
}

// NewDatanodeTableValue is the value GreptimeDB writes for a datanode's
// share of a table: the leader and follower regions of set, version 0.
func NewDatanodeTableValue(tableID uint32, set RegionRoleSet, info RegionInfo) DatanodeTableValue {
	return DatanodeTableValue{
		TableID:         tableID,
		Regions:         set.LeaderRegions,
		FollowerRegions: set.FollowerRegions,
		RegionInfo:      info,
	}
}

// Encode returns the value as GreptimeDB writes it, except that the maps'
// keys are sorted (GreptimeDB writes HashMaps in hash order).
func (v DatanodeTableValue) Encode() ([]byte, error) { return v.MarshalJSON() }

func (v DatanodeTableValue) MarshalJSON() ([]byte, error) {
	wal := make(map[string]string, len(v.RegionInfo.RegionWALOptions))
	for number, options := range v.RegionInfo.RegionWALOptions {
		wal[strconv.FormatUint(uint64(number), 10)] = options
	}
	return encode(struct {
		TableID           uint32            `json:"table_id"`
		Regions           []uint32          `json:"regions"`
		FollowerRegions   []uint32          `json:"follower_regions"`
		Engine            string            `json:"engine"`
		RegionStoragePath string            `json:"region_storage_path"`
		RegionOptions     map[string]string `json:"region_options"`
		RegionWALOptions  map[string]string `json:"region_wal_options"`
		Version           uint64            `json:"version"`
	}{
		v.TableID, nonNil(v.Regions), nonNil(v.FollowerRegions),
		v.RegionInfo.Engine, v.RegionInfo.RegionStoragePath, nonNilMap(v.RegionInfo.RegionOptions), wal,
		v.Version,
	})
}

func (v *DatanodeTableValue) UnmarshalJSON(data []byte) error {
	const typ = "DatanodeTableValue"
	out := DatanodeTableValue{
		FollowerRegions: []uint32{},
		RegionInfo:      RegionInfo{RegionOptions: map[string]string{}, RegionWALOptions: map[uint32]string{}},
	}
	var wal map[string]string
	if err := decodeObject(typ, data,
		required("table_id", &out.TableID),
		required("regions", &out.Regions),
		optional("follower_regions", &out.FollowerRegions),
		optional("engine", &out.RegionInfo.Engine),
		optional("region_storage_path", &out.RegionInfo.RegionStoragePath),
		optional("region_options", &out.RegionInfo.RegionOptions),
		optional("region_wal_options", &wal),
		required("version", &out.Version),
	); err != nil {
		return err
	}
	for key, options := range wal {
		// serde_with's DisplayFromStr: the key is parsed as the u32 it
		// stands for.
		number, err := parseRustUint(key, 32)
		if err != nil {
			return &fieldError{typ: typ, path: "region_wal_options", err: fmt.Errorf("key %q: %w", key, err)}
		}
		out.RegionInfo.RegionWALOptions[uint32(number)] = options
	}
	*v = out
	return nil
}
