package greptimekey

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// The hand-written encoders write what encoding/json writes (as the package
// wrote before them), and every string comes back as it went in.
func TestAppendersMatchEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "10.0.0.1:4001", `q"uote\back`, "tab\tnl\ncr\r\x01\x1f", "<html>&amp;", "héllo, 世界"} {
		lease := LeaseValue{TimestampMillis: -5, NodeAddr: s, Workloads: NodeWorkloads{Role: RoleDatanode, Types: []int32{0, 7}}}
		type plainLease LeaseValue
		want, err := encode(plainLease(lease))
		require.NoError(t, err)
		got, err := lease.MarshalJSON()
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%q", s)

		info := NodeInfo{
			Peer: Peer{ID: 1<<64 - 1, Addr: s}, LastActivityTs: 1, Version: s, GitCommit: "abc", StartTimeMs: 2,
			TotalCPUMillicores: 3, TotalMemoryBytes: 4, CPUUsageMillicores: 5, MemoryUsageBytes: 6, Hostname: s,
			EnvVars: map[string]string{"b": s, "a": "1"},
		}
		for _, st := range []NodeStatus{
			{Role: RoleDatanode, Datanode: &DatanodeStatus{Rcus: 1, Wcus: 2, LeaderRegions: 3, FollowerRegions: 4, Workloads: []int32{0}}},
			{Role: RoleFrontend},
			{Role: RoleFlownode, Workloads: []int32{1}},
			{Role: RoleMetasrv, MetasrvIsLeader: true},
		} {
			info.Status = st
			type plainInfo NodeInfo
			want, err := encode(plainInfo(info))
			require.NoError(t, err)
			got, err := info.MarshalJSON()
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "%q %v", s, st.Role)
			back, err := Decode[NodeInfo](got)
			require.NoError(t, err)
			require.Equal(t, s, back.Hostname)
		}
	}
	// serde_json writes U+2028 as is (encoding/json escapes it): still the same string.
	got, err := LeaseValue{NodeAddr: "a\u2028b", Workloads: NodeWorkloads{Role: RoleFlownode}}.MarshalJSON()
	require.NoError(t, err)
	var back struct {
		NodeAddr string `json:"node_addr"`
	}
	require.NoError(t, json.Unmarshal(got, &back))
	require.Equal(t, "a\u2028b", back.NodeAddr)
	_, err = LeaseValue{Workloads: NodeWorkloads{Role: RoleMetasrv}}.MarshalJSON()
	require.ErrorIs(t, err, ErrInvalidValue)
	_, err = NodeInfo{Status: NodeStatus{Role: RoleDatanode}}.MarshalJSON()
	require.ErrorIs(t, err, ErrInvalidValue)
}

func TestStatAppenderMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	stats := StatValue{
		{TimestampMillis: 1, ID: 2, Addr: `a"b`, Rcus: -3, Wcus: 4, RegionNum: 2, NodeEpoch: 9, DatanodeWorkloads: []int32{0}},
		{
			ID: 3, Addr: "é\x02", GcStat: &GcStat{RunningGcTasks: 1, GcConcurrency: 4},
			RegionStats: []RegionStat{
				{ID: 1<<63 + 5, Rcus: 1, Wcus: 2, ApproximateBytes: 3, Engine: "mito", Role: RegionRoleLeader, NumRows: 4, RegionManifest: MitoManifest(1, 2, 3)},
				{ID: 6, Engine: "metric", Role: RegionRoleDowngradingLeader, RegionManifest: json.RawMessage(` { "Metric" : {"data_manifest_version":1} } `), WrittenBytes: 7},
			},
			TopicStats: []TopicStat{{Topic: "t\\1", LatestEntryID: 1, RecordSize: 2, RecordNum: 3}},
		},
	}
	want, err := encode(nonNil([]Stat(stats)))
	require.NoError(t, err)
	got, err := stats.Encode()
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	back, err := Decode[StatValue](got)
	require.NoError(t, err)
	require.Len(t, back, 2)

	empty, err := StatValue(nil).Encode()
	require.NoError(t, err)
	require.Equal(t, "[]", string(empty))
	_, err = StatValue{{RegionStats: []RegionStat{{Role: RegionRoleLeader, RegionManifest: json.RawMessage(`{bad`)}}}}.Encode()
	require.ErrorIs(t, err, ErrInvalidValue)
	_, err = StatValue{{RegionStats: []RegionStat{{Role: "Candidate", RegionManifest: MitoManifest(0, 0, 0)}}}}.Encode()
	require.ErrorIs(t, err, ErrInvalidValue)
}
