package greptimekey_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

// encoder is a value with GreptimeDB's bytes.
type encoder interface{ Encode() ([]byte, error) }

// requireBytes checks that v encodes to want, with Encode and with
// json.Marshal, and that want decodes back to v.
func requireBytes[T any](t *testing.T, v T, want string) {
	t.Helper()
	got, err := any(v).(encoder).Encode()
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	got, err = json.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	var back T
	require.NoError(t, json.Unmarshal([]byte(want), &back))
	require.Equal(t, v, back)
}

func TestLeaseValueBytes(t *testing.T) {
	t.Parallel()
	requireBytes(t, greptimekey.LeaseValue{
		TimestampMillis: 1700000000000,
		NodeAddr:        "10.0.0.3:4001",
		Workloads:       greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: []int32{0}},
	}, `{"timestamp_millis":1700000000000,"node_addr":"10.0.0.3:4001","workloads":{"Datanode":{"types":[0]}}}`)
	requireBytes(t, greptimekey.LeaseValue{
		TimestampMillis: 1,
		NodeAddr:        "10.0.0.7:6800",
		Workloads:       greptimekey.NodeWorkloads{Role: greptimekey.RoleFlownode, Types: []int32{}},
	}, `{"timestamp_millis":1,"node_addr":"10.0.0.7:6800","workloads":{"Flownode":{"types":[]}}}`)

	// Nil types are written as [], and read back as an empty list.
	got, err := greptimekey.LeaseValue{Workloads: greptimekey.NodeWorkloads{Role: greptimekey.RoleFrontend}}.Encode()
	require.NoError(t, err)
	require.Equal(t, `{"timestamp_millis":0,"node_addr":"","workloads":{"Frontend":{"types":[]}}}`, string(got))

	_, err = greptimekey.LeaseValue{Workloads: greptimekey.NodeWorkloads{Role: greptimekey.RoleMetasrv}}.Encode()
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
}

func TestLeaseValueDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`{"node_addr":"a","workloads":{"Datanode":{"types":[0]}}}`, `invalid LeaseValue: missing field "timestamp_millis"`},
		{`{"timestamp_millis":1,"workloads":{"Datanode":{"types":[0]}}}`, `missing field "node_addr"`},
		{`{"timestamp_millis":1,"node_addr":"a"}`, `missing field "workloads"`},
		{`{"timestamp_millis":1,"node_addr":"a","workloads":{"Datanode":{}}}`, `missing field "workloads.Datanode.types"`},
		{`{"timestamp_millis":1,"node_addr":"a","workloads":{"Metasrv":{"types":[]}}}`, `field "workloads": unknown variant "Metasrv"`},
		{`{"timestamp_millis":1,"node_addr":"a","workloads":{}}`, `field "workloads": want an object with exactly one variant`},
		{`{"timestamp_millis":1,"node_addr":"a","workloads":{"Datanode":{"types":[0]},"Flownode":{"types":[]}}}`, `exactly one variant, got 2`},
		{`{"timestamp_millis":1,"node_addr":null,"workloads":{"Datanode":{"types":[0]}}}`, `field "node_addr": null is not allowed`},
		{`{"timestamp_millis":1.5,"node_addr":"a","workloads":{"Datanode":{"types":[0]}}}`, `field "timestamp_millis"`},
		{`{"Timestamp_Millis":1,"node_addr":"a","workloads":{"Datanode":{"types":[0]}}}`, `missing field "timestamp_millis"`},
		{`null`, `invalid LeaseValue: null, want an object`},
		{`[1]`, `invalid LeaseValue`},
	} {
		var v greptimekey.LeaseValue
		err := json.Unmarshal([]byte(c.in), &v)
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
	// Unknown fields are ignored, as serde does by default.
	var v greptimekey.LeaseValue
	require.NoError(t, json.Unmarshal([]byte(`{"timestamp_millis":1,"node_addr":"a","extra":true,"workloads":{"Datanode":{"types":[0]}}}`), &v))
}

func TestNodeInfoBytes(t *testing.T) {
	t.Parallel()
	datanode := greptimekey.NodeInfo{
		Peer:           greptimekey.Peer{ID: 3, Addr: "10.0.0.3:4001"},
		LastActivityTs: 1700000000000,
		Status: greptimekey.NodeStatus{Role: greptimekey.RoleDatanode, Datanode: &greptimekey.DatanodeStatus{
			Rcus: 1, Wcus: 2, LeaderRegions: 3, FollowerRegions: 4, Workloads: []int32{0},
		}},
		Version:            "v1.1.4",
		GitCommit:          "16e9abe4a9",
		StartTimeMs:        1699999999000,
		TotalCPUMillicores: 4000,
		TotalMemoryBytes:   8589934592,
		CPUUsageMillicores: 120,
		MemoryUsageBytes:   1048576,
		Hostname:           "dn-0",
		EnvVars:            map[string]string{},
	}
	requireBytes(t, datanode, `{"peer":{"id":3,"addr":"10.0.0.3:4001"},"last_activity_ts":1700000000000,`+
		`"status":{"Datanode":{"rcus":1,"wcus":2,"leader_regions":3,"follower_regions":4,"workloads":{"types":[0]}}},`+
		`"version":"v1.1.4","git_commit":"16e9abe4a9","start_time_ms":1699999999000,"total_cpu_millicores":4000,`+
		`"total_memory_bytes":8589934592,"cpu_usage_millicores":120,"memory_usage_bytes":1048576,"hostname":"dn-0","env_vars":{}}`)

	frontend := greptimekey.NodeInfo{
		Peer:           greptimekey.Peer{ID: 0, Addr: "127.0.0.1:4001"},
		LastActivityTs: 5,
		Status:         greptimekey.NodeStatus{Role: greptimekey.RoleFrontend, Workloads: []int32{}},
		EnvVars:        map[string]string{"AZ": "us-east-1a"},
	}
	requireBytes(t, frontend, `{"peer":{"id":0,"addr":"127.0.0.1:4001"},"last_activity_ts":5,"status":{"Frontend":{"workloads":{"types":[]}}},`+
		`"version":"","git_commit":"","start_time_ms":0,"total_cpu_millicores":0,"total_memory_bytes":0,"cpu_usage_millicores":0,`+
		`"memory_usage_bytes":0,"hostname":"","env_vars":{"AZ":"us-east-1a"}}`)

	for _, c := range []struct {
		status greptimekey.NodeStatus
		want   string
	}{
		{greptimekey.NodeStatus{Role: greptimekey.RoleFlownode, Workloads: []int32{}}, `{"Flownode":{"workloads":{"types":[]}}}`},
		{greptimekey.NodeStatus{Role: greptimekey.RoleMetasrv, MetasrvIsLeader: true}, `{"Metasrv":{"is_leader":true}}`},
		{greptimekey.NodeStatus{Role: greptimekey.RoleDatanode, Datanode: &greptimekey.DatanodeStatus{Workloads: []int32{}}},
			`{"Datanode":{"rcus":0,"wcus":0,"leader_regions":0,"follower_regions":0,"workloads":{"types":[]}}}`},
	} {
		got, err := json.Marshal(c.status)
		require.NoError(t, err)
		require.Equal(t, c.want, string(got))
		var back greptimekey.NodeStatus
		require.NoError(t, json.Unmarshal(got, &back))
		require.Equal(t, c.status, back)
	}

	// Empty env_vars and nil workloads are written as {} and [].
	got, err := greptimekey.NodeInfo{Status: greptimekey.NodeStatus{Role: greptimekey.RoleFlownode}}.Encode()
	require.NoError(t, err)
	require.Contains(t, string(got), `"status":{"Flownode":{"workloads":{"types":[]}}}`)
	require.True(t, strings.HasSuffix(string(got), `"env_vars":{}}`), string(got))

	// Encode does not escape HTML characters (serde_json does not); json.Marshal does.
	got, err = greptimekey.NodeInfo{Status: greptimekey.NodeStatus{Role: greptimekey.RoleFrontend}, Hostname: "a<b>&c"}.Encode()
	require.NoError(t, err)
	require.Contains(t, string(got), `"hostname":"a<b>&c"`)

	_, err = json.Marshal(greptimekey.NodeStatus{Role: greptimekey.RoleDatanode})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	_, err = json.Marshal(greptimekey.NodeStatus{Role: 5})
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
}

func TestNodeInfoDecode(t *testing.T) {
	t.Parallel()
	// GreptimeDB's own backward-compatibility inputs: no env_vars, and a
	// flownode status without workloads.
	var n greptimekey.NodeInfo
	require.NoError(t, json.Unmarshal([]byte(`{
		"peer":{"id":1,"addr":"127.0.0.1"},
		"last_activity_ts":123,
		"status":{"Datanode":{"rcus":0,"wcus":0,"leader_regions":0,"follower_regions":0,"workloads":{"types":[0]}}},
		"version":"",
		"git_commit":"",
		"start_time_ms":1,
		"total_cpu_millicores":0,
		"total_memory_bytes":0,
		"cpu_usage_millicores":0,
		"memory_usage_bytes":0,
		"hostname":"test"
	}`), &n))
	require.Equal(t, map[string]string{}, n.EnvVars)
	require.Equal(t, []int32{0}, n.Status.Datanode.Workloads)

	n = greptimekey.NodeInfo{}
	require.NoError(t, json.Unmarshal([]byte(`{"peer":{"id":1,"addr":"127.0.0.1"},"last_activity_ts":123,"status":{"Flownode":{}},`+
		`"version":"","git_commit":"","start_time_ms":1}`), &n))
	require.Equal(t, greptimekey.NodeStatus{Role: greptimekey.RoleFlownode, Workloads: []int32{}}, n.Status)
	require.Equal(t, "", n.Hostname)

	base := `"peer":{"id":1,"addr":"a"},"last_activity_ts":1,"version":"","git_commit":"","start_time_ms":1`
	for _, c := range []struct{ in, want string }{
		{`{"last_activity_ts":1,"status":{"Metasrv":{"is_leader":false}},"version":"","git_commit":"","start_time_ms":1}`, `invalid NodeInfo: missing field "peer"`},
		{`{"peer":{"id":1},"last_activity_ts":1,"status":{"Metasrv":{"is_leader":false}},"version":"","git_commit":"","start_time_ms":1}`, `missing field "peer.addr"`},
		{`{` + base + `}`, `missing field "status"`},
		{`{"peer":{"id":1,"addr":"a"},"last_activity_ts":1,"status":{"Metasrv":{"is_leader":false}},"git_commit":"","start_time_ms":1}`, `missing field "version"`},
		{`{"peer":{"id":1,"addr":"a"},"last_activity_ts":1,"status":{"Metasrv":{"is_leader":false}},"version":"","start_time_ms":1}`, `missing field "git_commit"`},
		{`{"peer":{"id":1,"addr":"a"},"last_activity_ts":1,"status":{"Metasrv":{"is_leader":false}},"version":"","git_commit":""}`, `missing field "start_time_ms"`},
		{`{` + base + `,"status":{"Datanode":{"rcus":0,"wcus":0,"leader_regions":0,"follower_regions":0}}}`, `missing field "status.Datanode.workloads"`},
		{`{` + base + `,"status":{"Datanode":{"rcus":0,"wcus":0,"follower_regions":0,"workloads":{"types":[]}}}}`, `missing field "status.Datanode.leader_regions"`},
		{`{` + base + `,"status":{"Metasrv":{}}}`, `missing field "status.Metasrv.is_leader"`},
		{`{` + base + `,"status":"Standalone"}`, `field "status": variant "Standalone" is not supported`},
		{`{` + base + `,"status":{"Cloud":{}}}`, `field "status": unknown variant "Cloud"`},
		{`{` + base + `,"status":{"Frontend":{"workloads":{}}}}`, `missing field "status.Frontend.workloads.types"`},
		{`{` + base + `,"status":{"Frontend":{}},"env_vars":{"a":1}}`, `field "env_vars"`},
	} {
		var v greptimekey.NodeInfo
		err := json.Unmarshal([]byte(c.in), &v)
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
}

func TestNodeAddressValueBytes(t *testing.T) {
	t.Parallel()
	requireBytes(t, greptimekey.NodeAddressValue{Peer: greptimekey.Peer{ID: 3, Addr: "10.0.0.3:4001"}},
		`{"peer":{"id":3,"addr":"10.0.0.3:4001"}}`)
	var v greptimekey.NodeAddressValue
	err := json.Unmarshal([]byte(`{"peer":{"addr":"x"}}`), &v)
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	require.ErrorContains(t, err, `invalid NodeAddressValue: missing field "peer.id"`)
}

func sampleRegion() greptimekey.RegionStat {
	return greptimekey.RegionStat{
		ID: 4398046511104, Rcus: 10, Wcus: 20, ApproximateBytes: 300, Engine: "mito", Role: greptimekey.RegionRoleLeader,
		NumRows: 5, MemtableSize: 6, ManifestSize: 7, SstSize: 8, SstNum: 9, IndexSize: 10,
		RegionManifest: greptimekey.MitoManifest(1, 2, 3),
		WrittenBytes:   11, DataTopicLatestEntryID: 12, MetadataTopicLatestEntryID: 13,
	}
}

const sampleRegionJSON = `{"id":4398046511104,"rcus":10,"wcus":20,"approximate_bytes":300,"engine":"mito","role":"Leader",` +
	`"num_rows":5,"memtable_size":6,"manifest_size":7,"sst_size":8,"sst_num":9,"index_size":10,` +
	`"region_manifest":{"Mito":{"manifest_version":1,"flushed_entry_id":2,"file_removed_cnt":3}},` +
	`"written_bytes":11,"data_topic_latest_entry_id":12,"metadata_topic_latest_entry_id":13}`

func TestStatValueBytes(t *testing.T) {
	t.Parallel()
	// GreptimeDB's admin heartbeat test prints this stat (inside its own array).
	requireBytes(t, greptimekey.StatValue{{
		TimestampMillis: 3, Addr: "127.0.0.1:3001", RegionStats: []greptimekey.RegionStat{}, TopicStats: []greptimekey.TopicStat{},
		DatanodeWorkloads: []int32{},
	}}, `[{"timestamp_millis":3,"id":0,"addr":"127.0.0.1:3001","rcus":0,"wcus":0,"region_num":0,"region_stats":[],`+
		`"topic_stats":[],"node_epoch":0,"datanode_workloads":{"types":[]},"gc_stat":null}]`)

	full := greptimekey.StatValue{{
		TimestampMillis: 1700000000000, ID: 1, Addr: "10.0.0.1:4001", Rcus: 10, Wcus: 20, RegionNum: 1,
		RegionStats:       []greptimekey.RegionStat{sampleRegion()},
		TopicStats:        []greptimekey.TopicStat{{Topic: "greptimedb_wal_topic_0", LatestEntryID: 1, RecordSize: 2, RecordNum: 3}},
		NodeEpoch:         1699999999000,
		DatanodeWorkloads: []int32{0},
		GcStat:            &greptimekey.GcStat{RunningGcTasks: 1, GcConcurrency: 4},
	}}
	requireBytes(t, full, `[{"timestamp_millis":1700000000000,"id":1,"addr":"10.0.0.1:4001","rcus":10,"wcus":20,"region_num":1,`+
		`"region_stats":[`+sampleRegionJSON+`],`+
		`"topic_stats":[{"topic":"greptimedb_wal_topic_0","latest_entry_id":1,"record_size":2,"record_num":3}],`+
		`"node_epoch":1699999999000,"datanode_workloads":{"types":[0]},"gc_stat":{"running_gc_tasks":1,"gc_concurrency":4}}]`)

	// Nil slices are written as [].
	got, err := greptimekey.StatValue(nil).Encode()
	require.NoError(t, err)
	require.Equal(t, "[]", string(got))
	got, err = greptimekey.StatValue{{}}.Encode()
	require.NoError(t, err)
	require.Equal(t, `[{"timestamp_millis":0,"id":0,"addr":"","rcus":0,"wcus":0,"region_num":0,"region_stats":[],"topic_stats":[],`+
		`"node_epoch":0,"datanode_workloads":{"types":[]},"gc_stat":null}]`, string(got))

	// A metric region's manifest.
	require.Equal(t, `{"Metric":{"data_manifest_version":1,"data_flushed_entry_id":2,"metadata_manifest_version":3,"metadata_flushed_entry_id":4}}`,
		string(greptimekey.MetricManifest(1, 2, 3, 4)))

	// A region stat GreptimeDB could not read is refused.
	bad := sampleRegion()
	bad.RegionManifest = nil
	_, err = greptimekey.StatValue{{RegionStats: []greptimekey.RegionStat{bad}}}.Encode()
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
	require.ErrorContains(t, err, "region_manifest")
	bad = sampleRegion()
	bad.Role = "leader"
	_, err = json.Marshal(bad)
	require.ErrorIs(t, err, greptimekey.ErrInvalidValue)
}

func TestStatValueDecode(t *testing.T) {
	t.Parallel()
	// A missing gc_stat is None; a region id may be a string.
	var v greptimekey.StatValue
	require.NoError(t, json.Unmarshal([]byte(`[{"timestamp_millis":3,"id":0,"addr":"a","rcus":0,"wcus":0,"region_num":1,`+
		`"region_stats":[`+strings.Replace(sampleRegionJSON, `"id":4398046511104`, `"id":"4398046511104"`, 1)+`],"topic_stats":[],"node_epoch":0,"datanode_workloads":{"types":[]}}]`), &v))
	require.Len(t, v, 1)
	require.Nil(t, v[0].GcStat)
	require.Equal(t, sampleRegion(), v[0].RegionStats[0])
	for _, role := range []greptimekey.RegionRole{greptimekey.RegionRoleFollower, greptimekey.RegionRoleLeader,
		greptimekey.RegionRoleStagingLeader, greptimekey.RegionRoleDowngradingLeader} {
		var r greptimekey.RegionRole
		require.NoError(t, json.Unmarshal([]byte(`"`+string(role)+`"`), &r))
		require.Equal(t, role, r)
	}
	require.True(t, greptimekey.RegionRoleStagingLeader.IsLeader())
	require.False(t, greptimekey.RegionRoleDowngradingLeader.IsLeader())

	stat := func(regions string) string {
		return `[{"timestamp_millis":3,"id":0,"addr":"a","rcus":0,"wcus":0,"region_num":1,"region_stats":[` + regions +
			`],"topic_stats":[],"node_epoch":0,"datanode_workloads":{"types":[]}}]`
	}
	for _, c := range []struct{ in, want string }{
		{`{"stats":[]}`, `invalid StatValue`},
		{`null`, `invalid StatValue: null, want an array`},
		{`[null]`, `field "[0]": null, want an object`},
		{`[{"timestamp_millis":3}]`, `invalid StatValue: missing field "[0].id"`},
		{`[{"timestamp_millis":3,"id":0,"addr":"a","rcus":0,"wcus":0,"region_num":0,"region_stats":[],"topic_stats":[],"node_epoch":0}]`,
			`missing field "[0].datanode_workloads"`},
		{stat(sampleRegionJSON + `,` + strings.Replace(sampleRegionJSON, `"role":"Leader"`, `"role":"Candidate"`, 1)),
			`field "[0].region_stats[1].role": unknown variant "Candidate"`},
		{stat(strings.Replace(sampleRegionJSON, `"engine":"mito",`, ``, 1)), `missing field "[0].region_stats[0].engine"`},
		{stat(strings.Replace(sampleRegionJSON, `"id":4398046511104`, `"id":"x"`, 1)), `field "[0].region_stats[0].id"`},
		{stat(strings.Replace(sampleRegionJSON, `"id":4398046511104`, `"id":-1`, 1)), `field "[0].region_stats[0].id"`},
		{stat(strings.Replace(sampleRegionJSON, `{"Mito":{"manifest_version":1,"flushed_entry_id":2,"file_removed_cnt":3}}`, `null`, 1)),
			`field "[0].region_stats[0].region_manifest": null is not allowed`},
		{`[{"timestamp_millis":3,"id":0,"addr":"a","rcus":0,"wcus":0,"region_num":0,"region_stats":[],"topic_stats":[{"topic":"t"}],"node_epoch":0,"datanode_workloads":{"types":[]}}]`,
			`missing field "[0].topic_stats[0].latest_entry_id"`},
		{`[{"timestamp_millis":3,"id":0,"addr":"a","rcus":0,"wcus":0,"region_num":0,"region_stats":[],"topic_stats":[],"node_epoch":0,"datanode_workloads":{"types":[]},"gc_stat":{"running_gc_tasks":1}}]`,
			`missing field "[0].gc_stat.gc_concurrency"`},
	} {
		var v greptimekey.StatValue
		err := json.Unmarshal([]byte(c.in), &v)
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	v, err := greptimekey.Decode[greptimekey.NodeAddressValue]([]byte(`{"peer":{"id":3,"addr":"a"}}`))
	require.NoError(t, err)
	require.Equal(t, greptimekey.Peer{ID: 3, Addr: "a"}, v.Peer)
	// Malformed JSON, which json.Unmarshal reports before the decoder runs,
	// is an ErrInvalidValue too.
	for _, in := range []string{`[1`, `{"peer":{"id":3,"addr":"a"}} x`, ``} {
		_, err = greptimekey.Decode[greptimekey.NodeAddressValue]([]byte(in))
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, in)
		_, err = greptimekey.Decode[greptimekey.StatValue]([]byte(in))
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, in)
		_, err = greptimekey.Decode[greptimekey.LeaseValue]([]byte(in))
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, in)
		_, err = greptimekey.Decode[greptimekey.NodeInfo]([]byte(in))
		require.ErrorIs(t, err, greptimekey.ErrInvalidValue, in)
	}
	lease, err := greptimekey.Decode[greptimekey.LeaseValue]([]byte(`{"timestamp_millis":1,"node_addr":"a","workloads":{"Datanode":{"types":[0]}}}`))
	require.NoError(t, err)
	require.Equal(t, greptimekey.NodeWorkloads{Role: greptimekey.RoleDatanode, Types: []int32{0}}, lease.Workloads)
}
