package greptimekey

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// Table metadata keys (key.rs). The prefixes end with the '/' that follows
// them in every key, so each also selects its keys in a range scan.
const (
	TableNamePrefix     = "__table_name/"
	TableInfoPrefix     = "__table_info/"
	TableRoutePrefix    = "__table_route/"
	TableRepartPrefix   = "__table_repart/"
	ViewInfoPrefix      = "__view_info/"
	DatanodeTablePrefix = "__dn_table/"
)

// TableName is a table's full name.
type TableName struct {
	Catalog string
	Schema  string
	Table   string
}

// String is GreptimeDB's format_full_table_name: catalog.schema.table.
func (n TableName) String() string { return n.Catalog + "." + n.Schema + "." + n.Table }

// TableNameKey is __table_name/{catalog}/{schema}/{table}. Like GreptimeDB it
// does not check the names; ParseTableNameKey does.
func TableNameKey(catalog, schema, table string) []byte {
	return append(TableNameSchemaPrefix(catalog, schema), table...)
}

// TableNameSchemaPrefix selects the table names of one schema:
// __table_name/{catalog}/{schema}/ (table_name.rs prefix_to_table, which a
// drop database scans).
func TableNameSchemaPrefix(catalog, schema string) []byte {
	return []byte(TableNamePrefix + catalog + "/" + schema + "/")
}

// ParseTableNameKey parses a table name key as GreptimeDB's pattern
// ^__table_name/(N)/(N)/(N)$ does, each N being a name of
// [a-zA-Z_:-][a-zA-Z0-9_:\-.@#]* (common_base regex_pattern.rs NAME_PATTERN).
func ParseTableNameKey(key []byte) (TableName, error) {
	rest, ok := bytes.CutPrefix(key, []byte(TableNamePrefix))
	if !ok {
		return TableName{}, fmt.Errorf("%w: %q does not start with %q", ErrInvalidKey, key, TableNamePrefix)
	}
	parts := bytes.Split(rest, []byte("/"))
	if len(parts) != 3 || !validName(parts[0]) || !validName(parts[1]) || !validName(parts[2]) {
		return TableName{}, fmt.Errorf("%w: %q is not %s{catalog}/{schema}/{table} with valid names", ErrInvalidKey, key, TableNamePrefix)
	}
	return TableName{Catalog: string(parts[0]), Schema: string(parts[1]), Table: string(parts[2])}, nil
}

// validName is the regular expression NAME_PATTERN, anchored.
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':', c == '-':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '@' || c == '#'):
		default:
			return false
		}
	}
	return true
}

// TableInfoKey is __table_info/{table_id}.
func TableInfoKey(tableID uint32) []byte { return tableIDKey(TableInfoPrefix, tableID) }

// ParseTableInfoKey returns the table id of __table_info/{table_id}.
func ParseTableInfoKey(key []byte) (uint32, error) { return parseTableIDKey(TableInfoPrefix, key) }

// TableRouteKey is __table_route/{table_id}.
func TableRouteKey(tableID uint32) []byte { return tableIDKey(TableRoutePrefix, tableID) }

// ParseTableRouteKey returns the table id of __table_route/{table_id}.
func ParseTableRouteKey(key []byte) (uint32, error) { return parseTableIDKey(TableRoutePrefix, key) }

// TableRepartKey is __table_repart/{table_id}, which only repartitioning
// writes; dropping a table tombstones and deletes it with the others.
func TableRepartKey(tableID uint32) []byte { return tableIDKey(TableRepartPrefix, tableID) }

// ViewInfoKey is __view_info/{table_id}: a view's definition.
func ViewInfoKey(tableID uint32) []byte { return tableIDKey(ViewInfoPrefix, tableID) }

func tableIDKey(prefix string, tableID uint32) []byte {
	return strconv.AppendUint([]byte(prefix), uint64(tableID), 10)
}

// parseTableIDKey parses {prefix}{table_id}, GreptimeDB's ^{prefix}([0-9]+)$
// with a table id that fits its u32.
func parseTableIDKey(prefix string, key []byte) (uint32, error) {
	rest, ok := bytes.CutPrefix(key, []byte(prefix))
	if !ok || !allDigits(rest) {
		return 0, fmt.Errorf("%w: %q is not %s{table_id}", ErrInvalidKey, key, prefix)
	}
	id, err := strconv.ParseUint(string(rest), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: table id: %w", ErrInvalidKey, key, err)
	}
	return uint32(id), nil
}

// DatanodeTableKey is __dn_table/{datanode_id}/{table_id}: which regions of
// the table the datanode holds, read by the datanode when it starts.
func DatanodeTableKey(datanodeID uint64, tableID uint32) []byte {
	return strconv.AppendUint(DatanodeTableNodePrefix(datanodeID), uint64(tableID), 10)
}

// DatanodeTableNodePrefix selects one datanode's __dn_table keys:
// __dn_table/{datanode_id}/.
func DatanodeTableNodePrefix(datanodeID uint64) []byte {
	b := strconv.AppendUint([]byte(DatanodeTablePrefix), datanodeID, 10)
	return append(b, '/')
}

// ParseDatanodeTableKey parses __dn_table/{datanode_id}/{table_id}.
func ParseDatanodeTableKey(key []byte) (datanodeID uint64, tableID uint32, err error) {
	rest, ok := bytes.CutPrefix(key, []byte(DatanodeTablePrefix))
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q does not start with %q", ErrInvalidKey, key, DatanodeTablePrefix)
	}
	node, table, ok := bytes.Cut(rest, []byte("/"))
	if !ok || !allDigits(node) || !allDigits(table) {
		return 0, 0, fmt.Errorf("%w: %q is not %s{datanode_id}/{table_id}", ErrInvalidKey, key, DatanodeTablePrefix)
	}
	datanodeID, err = strconv.ParseUint(string(node), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %q: datanode id: %w", ErrInvalidKey, key, err)
	}
	id, err := strconv.ParseUint(string(table), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %q: table id: %w", ErrInvalidKey, key, err)
	}
	return datanodeID, uint32(id), nil
}

// TableMetadataKeys is every key a table's metadata may occupy (key.rs
// table_metadata_keys), which dropping the table tombstones, restores or
// deletes: its name, info, route and repartition keys, the __dn_table key of
// every datanode in a physical route, and the __topic_region key of every
// region on Kafka. walOptions are the table's regions' WAL options, as read
// from its __dn_table values (none for a logical table). Datanodes and
// regions come in ascending order.
func TableMetadataKeys(name TableName, tableID uint32, route TableRouteValue, walOptions map[uint32]WALOptions) [][]byte {
	keys := [][]byte{
		TableNameKey(name.Catalog, name.Schema, name.Table),
		TableInfoKey(tableID),
		TableRouteKey(tableID),
		TableRepartKey(tableID),
	}
	if route.Physical != nil {
		dist := RegionDistribution(route.Physical.RegionRoutes)
		for _, id := range slices.Sorted(maps.Keys(dist)) {
			keys = append(keys, DatanodeTableKey(id, tableID))
		}
	}
	for _, number := range slices.Sorted(maps.Keys(walOptions)) {
		if o := walOptions[number]; o.Provider == WALKafka {
			keys = append(keys, TopicRegionKey(o.KafkaTopic, RegionID(tableID, number)))
		}
	}
	return keys
}
