package greptimekey_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

func TestKeyFormats(t *testing.T) {
	t.Parallel()
	cases := []struct {
		got  []byte
		want string
	}{
		{greptimekey.DatanodeLeaseKey(3), "__meta_datanode_lease-0-3"},
		{greptimekey.DatanodeLeaseKey(0), "__meta_datanode_lease-0-0"},
		{greptimekey.FlownodeLeaseKey(18446744073709551615), "__meta_flownode_lease-0-18446744073709551615"},
		{greptimekey.DatanodeStatKey(42), "__meta_datanode_stat-0-42"},
		{greptimekey.NodeInfoKey(greptimekey.RoleDatanode, 2), "__meta_cluster_node_info-0-0-2"},
		{greptimekey.NodeInfoKey(greptimekey.RoleFrontend, 6217528761578684316), "__meta_cluster_node_info-0-1-6217528761578684316"},
		{greptimekey.NodeInfoKey(greptimekey.RoleFlownode, 7), "__meta_cluster_node_info-0-2-7"},
		{greptimekey.NodeInfoKey(greptimekey.RoleMetasrv, 1), "__meta_cluster_node_info-0-99-1"},
		{greptimekey.NodeInfoRolePrefix(greptimekey.RoleFrontend), "__meta_cluster_node_info-0-1-"},
		{greptimekey.NodeAddressKey(greptimekey.RoleDatanode, 3), "__node_address/0/3"},
		{greptimekey.NodeAddressKey(greptimekey.RoleFlownode, 7), "__node_address/2/7"},
		{greptimekey.CatalogNameKey("greptime"), "__catalog_name/greptime"},
		{greptimekey.SchemaNameKey("greptime", "public"), "__schema_name/greptime/public"},
		{greptimekey.SequenceKey(greptimekey.SeqTableID), "__meta_seq-table_id"},
		{greptimekey.SequenceKey(greptimekey.SeqFlowID), "__meta_seq-flow_id"},
		{greptimekey.SequenceKey(greptimekey.SeqHeartbeatMailbox), "__meta_seq-heartbeat_mailbox"},
		{[]byte(greptimekey.MaintenanceKey), "__switches/maintenance"},
		{[]byte(greptimekey.LegacyMaintenanceKey), "__maintenance"},
		{[]byte(greptimekey.PauseProcedureKey), "__switches/pause_procedure"},
		{[]byte(greptimekey.RecoveryKey), "__switches/recovery"},
		{[]byte(greptimekey.DatanodeLeasePrefix), "__meta_datanode_lease-0-"},
		{[]byte(greptimekey.FlownodeLeasePrefix), "__meta_flownode_lease-0-"},
		{[]byte(greptimekey.DatanodeStatPrefix), "__meta_datanode_stat-0-"},
		{[]byte(greptimekey.NodeInfoPrefix), "__meta_cluster_node_info-0-"},
	}
	for _, c := range cases {
		require.Equal(t, c.want, string(c.got))
	}
}

func TestDefaultMetadataValues(t *testing.T) {
	t.Parallel()
	require.Equal(t, "null", string(greptimekey.CatalogNameValue()))
	require.Equal(t, `{"ttl":null,"extra_options":{}}`, string(greptimekey.DefaultSchemaNameValue()))
	// Each call is a fresh slice: a caller's change does not leak.
	v := greptimekey.CatalogNameValue()
	v[0] = 'X'
	require.Equal(t, "null", string(greptimekey.CatalogNameValue()))
	s := greptimekey.DefaultSchemaNameValue()
	s[0] = 'X'
	require.Equal(t, byte('{'), greptimekey.DefaultSchemaNameValue()[0])
	require.Equal(t, []string{"greptime", "public", "information_schema", "greptime_private"},
		[]string{greptimekey.DefaultCatalog, greptimekey.DefaultSchema, greptimekey.InformationSchema, greptimekey.PrivateSchema})
}

func TestRoleString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Datanode", greptimekey.RoleDatanode.String())
	require.Equal(t, "Frontend", greptimekey.RoleFrontend.String())
	require.Equal(t, "Flownode", greptimekey.RoleFlownode.String())
	require.Equal(t, "Metasrv", greptimekey.RoleMetasrv.String())
	require.Equal(t, "Role(7)", greptimekey.Role(7).String())
	require.Equal(t, greptimekey.Role(0), greptimekey.RoleDatanode)
	require.Equal(t, greptimekey.Role(1), greptimekey.RoleFrontend)
	require.Equal(t, greptimekey.Role(2), greptimekey.RoleFlownode)
}

func TestParseNodeInfoKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		key  string
		role greptimekey.Role
		id   uint64
	}{
		{"__meta_cluster_node_info-0-0-2", greptimekey.RoleDatanode, 2},
		{"__meta_cluster_node_info-0-1-6217528761578684316", greptimekey.RoleFrontend, 6217528761578684316},
		{"__meta_cluster_node_info-0-2-18446744073709551615", greptimekey.RoleFlownode, 18446744073709551615},
		{"__meta_cluster_node_info-0-99-1", greptimekey.RoleMetasrv, 1},
		{"__meta_cluster_node_info-7-0-01", greptimekey.RoleDatanode, 1}, // any cluster number, leading zeros: as the regex
	} {
		role, id, err := greptimekey.ParseNodeInfoKey([]byte(c.key))
		require.NoError(t, err, c.key)
		require.Equal(t, c.role, role, c.key)
		require.Equal(t, c.id, id, c.key)
	}
	for _, c := range []struct{ key, want string }{
		{"__meta_cluster_node_info-0-3-1", "unknown role 3"},
		{"__meta_cluster_node_info-0-0-18446744073709551616", "node id"},
		{"__meta_cluster_node_info-0-0", "is not"},
		{"__meta_cluster_node_info-0-0-1-2", "is not"},
		{"__meta_cluster_node_info-0-0-", "is not"},
		{"__meta_cluster_node_info-0--1-1", "is not"},
		{"__meta_cluster_node_info-0-0-+1", "is not"},
		{"__meta_cluster_node_info-0-0-1\n", "is not"},
		{"__meta_datanode_lease-0-1", "does not start with"},
	} {
		_, _, err := greptimekey.ParseNodeInfoKey([]byte(c.key))
		require.ErrorIs(t, err, greptimekey.ErrInvalidKey, c.key)
		require.ErrorContains(t, err, c.want, c.key)
	}
	// Round trip.
	role, id, err := greptimekey.ParseNodeInfoKey(greptimekey.NodeInfoKey(greptimekey.RoleFlownode, 9))
	require.NoError(t, err)
	require.Equal(t, greptimekey.RoleFlownode, role)
	require.Equal(t, uint64(9), id)
}

func TestParseNodeKeys(t *testing.T) {
	t.Parallel()
	parsers := []struct {
		name  string
		parse func([]byte) (uint64, error)
		key   func(uint64) []byte
		other string
	}{
		{"datanode lease", greptimekey.ParseDatanodeLeaseKey, greptimekey.DatanodeLeaseKey, "__meta_flownode_lease-0-1"},
		{"flownode lease", greptimekey.ParseFlownodeLeaseKey, greptimekey.FlownodeLeaseKey, "__meta_datanode_lease-0-1"},
		{"datanode stat", greptimekey.ParseDatanodeStatKey, greptimekey.DatanodeStatKey, "__meta_datanode_lease-0-1"},
	}
	for _, p := range parsers {
		for _, id := range []uint64{0, 1, 42, 18446744073709551615} {
			got, err := p.parse(p.key(id))
			require.NoError(t, err, p.name)
			require.Equal(t, id, got, p.name)
		}
		_, err := p.parse([]byte(p.other))
		require.ErrorIs(t, err, greptimekey.ErrInvalidKey, p.name)
		for _, suffix := range []string{"0-", "0-x", "-1", "0-1-2", "0", "0-18446744073709551616"} {
			bad := append(p.key(0)[:len(p.key(0))-len("0-0")], suffix...)
			_, err := p.parse(bad)
			require.ErrorIs(t, err, greptimekey.ErrInvalidKey, "%s: %q", p.name, bad)
		}
	}
	// Any cluster number, as GreptimeDB's ^__meta_datanode_lease-([0-9]+)-([0-9]+)$.
	id, err := greptimekey.ParseDatanodeLeaseKey([]byte("__meta_datanode_lease-12-5"))
	require.NoError(t, err)
	require.Equal(t, uint64(5), id)
}

func TestFrontendNodeID(t *testing.T) {
	t.Parallel()
	// Rust's DefaultHasher over a &str: SipHash-1-3, keys 0, bytes + 0xFF.
	for _, c := range []struct {
		addr string
		want uint64
	}{
		{"", 3476900567878811119},
		{"hello", 16156531084128653017},
		{"127.0.0.1:4001", 6217528761578684316},
		{"127.0.0.1:4000", 7652573666054231695},
	} {
		require.Equal(t, c.want, greptimekey.FrontendNodeID(c.addr), "%q", c.addr)
	}
	// Messages of every length around the 8-byte blocks hash differently.
	seen := map[uint64]string{}
	for n := 0; n <= 24; n++ {
		addr := "abcdefghijklmnopqrstuvwxyz"[:n]
		id := greptimekey.FrontendNodeID(addr)
		_, dup := seen[id]
		require.False(t, dup, "%q", addr)
		seen[id] = addr
	}
}
