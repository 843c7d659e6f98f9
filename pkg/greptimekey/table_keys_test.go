package greptimekey_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

func TestTableKeyFormats(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		got  []byte
		want string
	}{
		// GreptimeDB v1.1.4 key tests: table_name.rs:348, table_info.rs:304,
		// table_route.rs:1004, datanode_table.rs:398.
		{greptimekey.TableNameKey("my_catalog", "my_schema", "my_table"), "__table_name/my_catalog/my_schema/my_table"},
		{greptimekey.TableInfoKey(42), "__table_info/42"},
		{greptimekey.TableRouteKey(42), "__table_route/42"},
		{greptimekey.DatanodeTableKey(1, 2), "__dn_table/1/2"},
		{greptimekey.TableRepartKey(1024), "__table_repart/1024"},
		{greptimekey.TableNameSchemaPrefix("greptime", "public"), "__table_name/greptime/public/"},
		{greptimekey.DatanodeTableNodePrefix(7), "__dn_table/7/"},
		{greptimekey.TableInfoKey(4294967295), "__table_info/4294967295"},
		{greptimekey.DatanodeTableKey(18446744073709551615, 4294967295), "__dn_table/18446744073709551615/4294967295"},
		{greptimekey.TopicRegionKey("greptimedb_wal_topic_0", greptimekey.RegionID(1024, 1)), "__topic_region/greptimedb_wal_topic_0/4398046511105"},
		{greptimekey.TombstoneKey(greptimekey.TableInfoKey(1024)), "__tombstone/__table_info/1024"},
		{[]byte(greptimekey.TableRoutePrefix), "__table_route/"},
		{[]byte(greptimekey.TombstonedTableNamePrefix), "__tombstone/__table_name/"},
	} {
		require.Equal(t, c.want, string(c.got))
	}
	// A name is not checked when building, only when parsing.
	require.Equal(t, "__table_name/greptime/👉/t", string(greptimekey.TableNameKey("greptime", "👉", "t")))
	require.Equal(t, "greptime.public.cpu", greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "cpu"}.String())
}

func TestParseTableNameKey(t *testing.T) {
	t.Parallel()
	// table_name.rs:315-324: the keys GreptimeDB refuses.
	for _, key := range []string{
		"",
		"\x00\x9f\x92\x96",
		"invalid_prefix/my_catalog/my_schema/my_table",
		"__table_name/",
		"__table_name/invalid_len_1",
		"__table_name/invalid_len_2/x",
		"__table_name/invalid_len_4/x/y/z",
		"__table_name/000_invalid_catalog/y/z",
		"__table_name/x/000_invalid_schema/z",
		"__table_name/x/y/000_invalid_table",
		"__table_name/x/y/",
		"__table_name/x/y/a b",
		"__table_name/greptime/👉/t",
	} {
		_, err := greptimekey.ParseTableNameKey([]byte(key))
		require.ErrorIs(t, err, greptimekey.ErrInvalidKey, key)
	}
	// table_name.rs:336-340: the table names it reads.
	for _, table := range []string{"my_table", "cpu:metrics", ":cpu:metrics", "sys.cpu.system", "foo-bar", "_x@y#1", "A"} {
		got, err := greptimekey.ParseTableNameKey(greptimekey.TableNameKey("my_catalog", "my_schema", table))
		require.NoError(t, err, table)
		require.Equal(t, greptimekey.TableName{Catalog: "my_catalog", Schema: "my_schema", Table: table}, got)
	}
}

func TestParseTableIDKeys(t *testing.T) {
	t.Parallel()
	for _, id := range []uint32{0, 42, 1024, 4294967295} {
		got, err := greptimekey.ParseTableInfoKey(greptimekey.TableInfoKey(id))
		require.NoError(t, err)
		require.Equal(t, id, got)
		got, err = greptimekey.ParseTableRouteKey(greptimekey.TableRouteKey(id))
		require.NoError(t, err)
		require.Equal(t, id, got)
	}
	for _, key := range []string{
		"__table_info/", "__table_info/x", "__table_info/1/2", "__table_info/-1", "__table_info/+1",
		"__table_info/4294967296", "__table_route/42", "__table_info/ 42",
	} {
		_, err := greptimekey.ParseTableInfoKey([]byte(key))
		require.ErrorIs(t, err, greptimekey.ErrInvalidKey, key)
	}
	_, err := greptimekey.ParseTableRouteKey([]byte("__table_info/42"))
	require.ErrorIs(t, err, greptimekey.ErrInvalidKey)
}

func TestParseDatanodeTableKey(t *testing.T) {
	t.Parallel()
	// datanode_table.rs:519-529.
	for _, key := range []string{
		"", "\x00\x9f\x92\x96", "invalid_prefix/1/2", "__dn_table/", "__dn_table/invalid_len_1",
		"__dn_table/invalid_len_3/1/2", "__dn_table/invalid_node_id/2", "__dn_table/1/invalid_table_id",
		"__dn_table/1/2/3", "__dn_table/1/4294967296", "__dn_table/18446744073709551616/1", "__dn_table/1/",
	} {
		_, _, err := greptimekey.ParseDatanodeTableKey([]byte(key))
		require.ErrorIs(t, err, greptimekey.ErrInvalidKey, key)
	}
	node, table, err := greptimekey.ParseDatanodeTableKey([]byte("__dn_table/11/21"))
	require.NoError(t, err)
	require.Equal(t, uint64(11), node)
	require.Equal(t, uint32(21), table)

	node, table, err = greptimekey.ParseDatanodeTableKey(greptimekey.DatanodeTableKey(18446744073709551615, 4294967295))
	require.NoError(t, err)
	require.Equal(t, uint64(18446744073709551615), node)
	require.Equal(t, uint32(4294967295), table)
}

func TestTombstoneKeys(t *testing.T) {
	t.Parallel()
	key := greptimekey.TableNameKey("greptime", "public", "cpu")
	tomb := greptimekey.TombstoneKey(key)
	require.Equal(t, "__tombstone/__table_name/greptime/public/cpu", string(tomb))
	back, err := greptimekey.StripTombstonePrefix(tomb)
	require.NoError(t, err)
	require.Equal(t, key, back)
	// The tombstone is a copy: changing it leaves the key alone.
	tomb[len(tomb)-1] = 'X'
	require.Equal(t, "__table_name/greptime/public/cpu", string(key))

	_, err = greptimekey.StripTombstonePrefix(key)
	require.ErrorIs(t, err, greptimekey.ErrInvalidKey)
	_, err = greptimekey.StripTombstonePrefix([]byte("__tombstone"))
	require.ErrorIs(t, err, greptimekey.ErrInvalidKey)
}

func TestTableMetadataKeys(t *testing.T) {
	t.Parallel()
	name := greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "cpu"}
	routes := []greptimekey.RegionRoute{
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 1)}, LeaderPeer: &greptimekey.Peer{ID: 5, Addr: "a5"},
			FollowerPeers: []greptimekey.Peer{{ID: 9, Addr: "a9"}}},
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 0)}, LeaderPeer: &greptimekey.Peer{ID: 3, Addr: "a3"}},
		{Region: greptimekey.Region{ID: greptimekey.RegionID(1024, 2)}}, // no leader: no datanode
	}
	wal := map[uint32]greptimekey.WALOptions{
		0: {Provider: greptimekey.WALKafka, KafkaTopic: "t0"},
		1: {Provider: greptimekey.WALRaftEngine},
		2: {Provider: greptimekey.WALKafka, KafkaTopic: "t1"},
	}
	got := greptimekey.TableMetadataKeys(name, 1024, greptimekey.NewPhysicalTableRoute(routes), wal)
	want := []string{
		"__table_name/greptime/public/cpu", "__table_info/1024", "__table_route/1024", "__table_repart/1024",
		"__dn_table/3/1024", "__dn_table/5/1024", "__dn_table/9/1024",
		"__topic_region/t0/4398046511104", "__topic_region/t1/4398046511106",
	}
	require.Equal(t, want, asStrings(got))

	// A logical table has no __dn_table keys of its own.
	got = greptimekey.TableMetadataKeys(greptimekey.TableName{Catalog: "greptime", Schema: "public", Table: "m"}, 1025,
		greptimekey.NewLogicalTableRoute(1024), nil)
	require.Equal(t, []string{"__table_name/greptime/public/m", "__table_info/1025", "__table_route/1025", "__table_repart/1025"}, asStrings(got))
}

func asStrings(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}
