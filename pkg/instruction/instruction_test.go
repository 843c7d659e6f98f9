package instruction

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

// GreptimeDB v1.1.4's literal strings below come from the unit tests of
// src/common/meta/src/instruction.rs; each names its line.

func ident() RegionIdent {
	return RegionIdent{DatanodeID: 2, TableID: 1024, RegionNumber: 1, Engine: "mito2"}
}

func roundTrip(t *testing.T, i Instruction, want string) {
	t.Helper()
	b, err := Encode(i)
	require.NoError(t, err)
	require.Equal(t, want, string(b))
	back, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, i, back)
}

func TestEncodeMatchesGreptimeDB(t *testing.T) {
	t.Parallel()
	// instruction.rs:1155
	roundTrip(t, OpenRegions{{RegionIdent: ident(), RegionStoragePath: "test/foo", RegionOptions: map[string]string{}, RegionWalOptions: map[uint32]string{}}},
		`{"OpenRegions":[{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"test/foo","region_options":{},"region_wal_options":{},"skip_wal_replay":false,"requirements":{"object_storage":false}}]}`)
	// instruction.rs:1168
	roundTrip(t, CloseRegions{ident()}, `{"CloseRegions":[{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"}]}`)
	// instruction.rs:1184
	roundTrip(t, UpgradeRegions{{RegionID: NewRegionID(1024, 1), ReplayTimeout: time.Second}},
		`{"UpgradeRegions":[{"region_id":4398046511105,"last_entry_id":null,"metadata_last_entry_id":null,"replay_timeout":"1s","location_id":null}]}`)
}

func TestEncodeOtherVariants(t *testing.T) {
	t.Parallel()
	roundTrip(t, DowngradeRegions{{RegionID: NewRegionID(1024, 1), FlushTimeout: new(1500 * time.Millisecond)}, {RegionID: 7}},
		`{"DowngradeRegions":[{"region_id":4398046511105,"flush_timeout":{"secs":1,"nanos":500000000}},{"region_id":7,"flush_timeout":null}]}`)
	roundTrip(t, FlushRegions{RegionIDs: []RegionID{NewRegionID(1024, 1)}, Strategy: FlushAsync, ErrorStrategy: FlushTryAll, Reason: FlushForRemoteWalPrune},
		`{"FlushRegions":{"region_ids":[4398046511105],"strategy":"Async","error_strategy":"TryAll","reason":"RemoteWalPrune"}}`)
	roundTrip(t, InvalidateCaches{
		TableID(1024),
		TableName{CatalogName: "greptime", SchemaName: "public", TableName: "t<1>"},
		SchemaName{CatalogName: "greptime", SchemaName: "public"},
		FlowID(9), FlowName{CatalogName: "greptime", FlowName: "f"}, FlownodeAddressChange(3),
		CreateFlow{FlowID: 9, SourceTableIDs: []uint32{1024}, PartitionToPeerMapping: []FlowPartitionPeer{{Partition: 0, Peer: greptimekey.Peer{ID: 3, Addr: "fn:4004"}}}},
		DropFlow{FlowID: 9, SourceTableIDs: []uint32{}, FlowPart2NodeID: []FlowPartitionNode{{Partition: 1, NodeID: 3}}},
		User{Catalog: "greptime", Username: "u"},
	}, `{"InvalidateCaches":[{"TableId":1024},{"TableName":{"catalog_name":"greptime","schema_name":"public","table_name":"t<1>"}},`+
		`{"SchemaName":{"catalog_name":"greptime","schema_name":"public"}},{"FlowId":9},{"FlowName":{"catalog_name":"greptime","flow_name":"f"}},`+
		`{"FlowNodeAddressChange":3},{"CreateFlow":{"flow_id":9,"source_table_ids":[1024],"partition_to_peer_mapping":[[0,{"id":3,"addr":"fn:4004"}]]}},`+
		`{"DropFlow":{"flow_id":9,"source_table_ids":[],"flow_part2node_id":[[1,3]]}},{"User":{"catalog":"greptime","username":"u"}}]}`)
	roundTrip(t, OpenRegions{{
		RegionIdent: ident(), RegionStoragePath: "p", RegionOptions: map[string]string{"ttl": "7d"},
		RegionWalOptions: map[uint32]string{1: `{"wal.provider":"raft_engine"}`}, SkipWalReplay: true,
		Reason: OpenForRegionMigration, Requirements: RegionRequirements{ObjectStorage: true},
	}}, `{"OpenRegions":[{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"p",`+
		`"region_options":{"ttl":"7d"},"region_wal_options":{"1":"{\"wal.provider\":\"raft_engine\"}"},"skip_wal_replay":true,"reason":"RegionMigration","requirements":{"object_storage":true}}]}`)
}

func TestEncodeDefaults(t *testing.T) {
	t.Parallel()
	b, err := Encode(FlushRegions{RegionIDs: []RegionID{NewRegionID(1024, 1)}})
	require.NoError(t, err)
	// The form of instruction.rs:1548, which GreptimeDB writes for sync_single.
	require.Equal(t, `{"FlushRegions":{"region_ids":[4398046511105],"strategy":"Sync","error_strategy":"FailFast"}}`, string(b))
	b, err = Encode(CloseRegions(nil))
	require.NoError(t, err)
	require.Equal(t, `{"CloseRegions":[]}`, string(b))
	b, err = Encode(OpenRegions{{RegionIdent: ident()}})
	require.NoError(t, err)
	require.Contains(t, string(b), `"region_options":{},"region_wal_options":{}`, "nil maps are written {} as serde writes an empty HashMap")
	_, err = Encode(DowngradeRegions{{FlushTimeout: new(-time.Second)}})
	require.Error(t, err)
}

func TestDecodeLegacyForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     Instruction
	}{
		{"instruction.rs:1224", `{"OpenRegion":{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"test/foo","region_options":{},"region_wal_options":{},"skip_wal_replay":false}}`,
			OpenRegions{{RegionIdent: ident(), RegionStoragePath: "test/foo", RegionOptions: map[string]string{}, RegionWalOptions: map[uint32]string{}}}},
		// instruction.rs:1366: an OpenRegion of before region_wal_options.
		{"instruction.rs:1366", `{"OpenRegions":[{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"test/foo","region_options":{"a":"aa","b":"bb"}}]}`,
			OpenRegions{{RegionIdent: ident(), RegionStoragePath: "test/foo", RegionOptions: map[string]string{"a": "aa", "b": "bb"}, RegionWalOptions: map[uint32]string{}}}},
		{"instruction.rs:1244", `{"CloseRegion":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"}}`, CloseRegions{ident()}},
		{"instruction.rs:1256", `{"DowngradeRegions":{"region_id":4398046511105,"flush_timeout":{"secs":1,"nanos":0}}}`,
			DowngradeRegions{{RegionID: NewRegionID(1024, 1), FlushTimeout: new(time.Second)}}},
		{"instruction.rs:1266", `{"UpgradeRegion":{"region_id":4398046511105,"last_entry_id":null,"metadata_last_entry_id":null,"replay_timeout":"1s","location_id":null,"replay_entry_id":null,"metadata_replay_entry_id":null}}`,
			UpgradeRegions{{RegionID: NewRegionID(1024, 1), ReplayTimeout: time.Second}}},
		{"instruction.rs:1548", `{"FlushRegions":{"region_ids":[4398046511105],"strategy":"Sync","error_strategy":"FailFast"}}`,
			FlushRegions{RegionIDs: []RegionID{NewRegionID(1024, 1)}, Strategy: FlushSync, ErrorStrategy: FlushFailFast}},
		{"flush defaults", `{"FlushRegions":{"region_ids":["4398046511105"]}}`,
			FlushRegions{RegionIDs: []RegionID{NewRegionID(1024, 1)}, Strategy: FlushSync, ErrorStrategy: FlushFailFast}},
		{"downgrade seq duration, no flush_timeout", `{"DowngradeRegion":[{"region_id":1,"flush_timeout":[2,1500000000]},{"region_id":2}]}`,
			DowngradeRegions{{RegionID: 1, FlushTimeout: new(3500 * time.Millisecond)}, {RegionID: 2}}},
		{"upgrade entry ids", `{"UpgradeRegions":[{"region_id":1,"last_entry_id":5,"replay_timeout":"1m 30s","replay_entry_id":4}]}`,
			UpgradeRegions{{RegionID: 1, LastEntryID: new(uint64(5)), ReplayTimeout: 90 * time.Second, ReplayEntryID: new(uint64(4))}}},
		{"wal option keys", `{"OpenRegions":[{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"","region_options":{},"region_wal_options":{"7":"x"},"reason":null}]}`,
			OpenRegions{{RegionIdent: ident(), RegionOptions: map[string]string{}, RegionWalOptions: map[uint32]string{7: "x"}}}},
	} {
		got, err := Decode([]byte(tc.in))
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

func TestDecodeRefusesWhatSerdeRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"CloseRegions":[{"datanode_id":2,"table_id":1024,"region_number":1}]}`,                    // engine missing
		`{"CloseRegions":[{"datanode_id":2,"table_id":1024,"region_number":1,"engine":null}]}`,      // null String
		`{"CloseRegions":[{"datanode_id":2,"table_id":4294967296,"region_number":1,"engine":"m"}]}`, // u32 overflow
		`{"CloseRegions":[{"Datanode_id":2,"table_id":1,"region_number":1,"engine":"m"}]}`,          // names are exact
		`{"CloseRegions":[null]}`,
		`{"CloseRegions":5}`,
		`{"FlushRegions":{"region_ids":[null]}}`,
		`{"FlushRegions":{"region_ids":[1],"strategy":"sync"}}`,
		`{"FlushRegions":{"region_ids":[1],"strategy":null}}`,
		`{"UpgradeRegions":[{"region_id":1,"replay_timeout":"1 fortnight"}]}`,
		`{"UpgradeRegions":[{"region_id":1}]}`,
		`{"DowngradeRegions":[{"region_id":1,"flush_timeout":{"secs":1}}]}`,
		`{"DowngradeRegions":[{"region_id":1,"flush_timeout":{"secs":1,"nanos":0,"x":1}}]}`,
		`{"OpenRegions":[{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"","region_options":{"a":null}}]}`,
		`{"OpenRegions":[{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"","region_options":{},"region_wal_options":{"x":"y"}}]}`,
		`{"OpenRegions":[{"region_ident":{"datanode_id":2,"table_id":1024,"region_number":1,"engine":"mito2"},"region_storage_path":"","region_options":{},"reason":"RegionFollower"}]}`,
		`{"InvalidateCaches":[{"TableId":null}]}`,
		`{"InvalidateCaches":[{"Table":1}]}`,
		`{"InvalidateCaches":{"TableId":1}}`,
		`{"OpenRegions":[],"CloseRegions":[]}`,
		`{"Nope":[]}`,
		`"Nope"`,
		`null`,
		`[]`,
	} {
		_, err := Decode([]byte(in))
		require.ErrorIs(t, err, ErrInvalid, in)
	}
	for _, in := range []string{`"Suspend"`, `{"GcRegions":{}}`, `{"SyncRegions":[]}`} {
		_, err := Decode([]byte(in))
		require.ErrorIs(t, err, ErrUnsupported, in)
		require.NotErrorIs(t, err, ErrInvalid, in)
	}
}

func TestExpectsReply(t *testing.T) {
	t.Parallel()
	require.True(t, ExpectsReply(CloseRegions{}))
	require.True(t, ExpectsReply(FlushRegions{}), "Sync is the default")
	require.False(t, ExpectsReply(FlushRegions{Strategy: FlushAsync}))
	require.False(t, ExpectsReply(InvalidateCaches{TableID(1)}))
}

func TestRegionID(t *testing.T) {
	t.Parallel()
	r := NewRegionID(1024, 1)
	require.Equal(t, RegionID(4398046511105), r)
	require.Equal(t, uint32(1024), r.TableID())
	require.Equal(t, uint32(1), r.RegionNumber())
	require.Equal(t, "4398046511105(1024, 1)", r.String())
	require.Equal(t, r, ident().RegionID())
}
