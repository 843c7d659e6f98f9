package instruction

import (
	"encoding/json"
	"fmt"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
)

// CacheIdent names cached metadata an InvalidateCaches drops: one of
// TableID, TableName, SchemaName, FlowID, FlowName, FlownodeAddressChange,
// CreateFlow, DropFlow and User.
type CacheIdent interface{ isCacheIdent() }

// TableID is {"TableId":1024}.
type TableID uint32

// TableName is {"TableName":{"catalog_name":..,"schema_name":..,"table_name":..}}.
type TableName struct {
	CatalogName string `json:"catalog_name"`
	SchemaName  string `json:"schema_name"`
	TableName   string `json:"table_name"`
}

// SchemaName is {"SchemaName":{"catalog_name":..,"schema_name":..}}.
type SchemaName struct {
	CatalogName string `json:"catalog_name"`
	SchemaName  string `json:"schema_name"`
}

// FlowID is {"FlowId":1024}.
type FlowID uint32

// FlowName is {"FlowName":{"catalog_name":..,"flow_name":..}}.
type FlowName struct {
	CatalogName string `json:"catalog_name"`
	FlowName    string `json:"flow_name"`
}

// FlownodeAddressChange is {"FlowNodeAddressChange":3}: flownode 3 moved.
type FlownodeAddressChange uint64

// CreateFlow is a flow created: its sources and where its partitions run.
type CreateFlow struct {
	FlowID                 uint32
	SourceTableIDs         []uint32
	PartitionToPeerMapping []FlowPartitionPeer
}

// FlowPartitionPeer is one (partition, peer) pair, a two-element array.
type FlowPartitionPeer struct {
	Partition uint32
	Peer      greptimekey.Peer
}

// DropFlow is a flow dropped: its sources and the flownodes of its
// partitions.
type DropFlow struct {
	FlowID          uint32
	SourceTableIDs  []uint32
	FlowPart2NodeID []FlowPartitionNode
}

// FlowPartitionNode is one (partition, flownode id) pair.
type FlowPartitionNode struct {
	Partition uint32
	NodeID    uint64
}

// User is {"User":{"catalog":..,"username":..}}: a user's metadata changed.
type User struct {
	Catalog  string `json:"catalog"`
	Username string `json:"username"`
}

func (TableID) isCacheIdent()               {}
func (TableName) isCacheIdent()             {}
func (SchemaName) isCacheIdent()            {}
func (FlowID) isCacheIdent()                {}
func (FlowName) isCacheIdent()              {}
func (FlownodeAddressChange) isCacheIdent() {}
func (CreateFlow) isCacheIdent()            {}
func (DropFlow) isCacheIdent()              {}
func (User) isCacheIdent()                  {}

// cacheIdentJSON writes a CacheIdent externally tagged.
type cacheIdentJSON struct{ CacheIdent }

func (c cacheIdentJSON) MarshalJSON() ([]byte, error) {
	switch v := c.CacheIdent.(type) {
	case TableID:
		return encodeVariant("TableId", uint32(v))
	case TableName:
		type plain TableName
		return encodeVariant("TableName", plain(v))
	case SchemaName:
		type plain SchemaName
		return encodeVariant("SchemaName", plain(v))
	case FlowID:
		return encodeVariant("FlowId", uint32(v))
	case FlowName:
		type plain FlowName
		return encodeVariant("FlowName", plain(v))
	case FlownodeAddressChange:
		return encodeVariant("FlowNodeAddressChange", uint64(v))
	case CreateFlow:
		pairs := make([][2]any, len(v.PartitionToPeerMapping))
		for i, p := range v.PartitionToPeerMapping {
			pairs[i] = [2]any{p.Partition, p.Peer}
		}
		return encodeVariant("CreateFlow", struct {
			FlowID                 uint32   `json:"flow_id"`
			SourceTableIDs         []uint32 `json:"source_table_ids"`
			PartitionToPeerMapping [][2]any `json:"partition_to_peer_mapping"`
		}{v.FlowID, nonNil(v.SourceTableIDs), pairs})
	case DropFlow:
		pairs := make([][2]any, len(v.FlowPart2NodeID))
		for i, p := range v.FlowPart2NodeID {
			pairs[i] = [2]any{p.Partition, p.NodeID}
		}
		return encodeVariant("DropFlow", struct {
			FlowID          uint32   `json:"flow_id"`
			SourceTableIDs  []uint32 `json:"source_table_ids"`
			FlowPart2NodeID [][2]any `json:"flow_part2node_id"`
		}{v.FlowID, nonNil(v.SourceTableIDs), pairs})
	case User:
		type plain User
		return encodeVariant("User", plain(v))
	}
	return nil, fmt.Errorf("CacheIdent: cannot encode %T", c.CacheIdent)
}

func decodeCacheIdent(data []byte, dst *CacheIdent) error {
	tag, body, err := variant("CacheIdent", data)
	if err != nil {
		return err
	}
	typ := "CacheIdent::" + tag
	var out CacheIdent
	switch tag {
	case "TableId":
		var v uint32
		err = decodeScalar(typ, body, &v)
		out = TableID(v)
	case "FlowId":
		var v uint32
		err = decodeScalar(typ, body, &v)
		out = FlowID(v)
	case "FlowNodeAddressChange":
		var v uint64
		err = decodeScalar(typ, body, &v)
		out = FlownodeAddressChange(v)
	case "TableName":
		var v TableName
		err = decodeObject(typ, body, required("catalog_name", &v.CatalogName), required("schema_name", &v.SchemaName), required("table_name", &v.TableName))
		out = v
	case "SchemaName":
		var v SchemaName
		err = decodeObject(typ, body, required("catalog_name", &v.CatalogName), required("schema_name", &v.SchemaName))
		out = v
	case "FlowName":
		var v FlowName
		err = decodeObject(typ, body, required("catalog_name", &v.CatalogName), required("flow_name", &v.FlowName))
		out = v
	case "User":
		var v User
		err = decodeObject(typ, body, required("catalog", &v.Catalog), required("username", &v.Username))
		out = v
	case "CreateFlow":
		out, err = decodeCreateFlow(typ, body)
	case "DropFlow":
		out, err = decodeDropFlow(typ, body)
	default:
		return fmt.Errorf("CacheIdent: unknown variant %q", tag)
	}
	if err != nil {
		return err
	}
	*dst = out
	return nil
}

// decodeScalar reads a number that must not be null.
func decodeScalar[T any](typ string, body json.RawMessage, dst *T) error {
	if isNull(body) {
		return fmt.Errorf("%s: null is not allowed", typ)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	return nil
}

// pair reads a two-element array, a Rust tuple, into a and b.
func pair(typ string, data []byte, a, b any) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil || len(raws) != 2 {
		return fmt.Errorf("%s: want a two-element array, got %s", typ, data)
	}
	return decodeFields(typ, map[string]json.RawMessage{"0": raws[0], "1": raws[1]}, required("0", a), required("1", b))
}

func decodeCreateFlow(typ string, body json.RawMessage) (CreateFlow, error) {
	var v CreateFlow
	var raw json.RawMessage
	err := decodeObject(typ, body, required("flow_id", &v.FlowID),
		required("source_table_ids", &strictList[uint32]{"source_table_ids", &v.SourceTableIDs}),
		required("partition_to_peer_mapping", &raw))
	if err != nil {
		return v, err
	}
	v.PartitionToPeerMapping, err = decodeList(typ+".partition_to_peer_mapping", raw, func(b []byte, p *FlowPartitionPeer) error {
		return pair("(FlowPartitionId, Peer)", b, &p.Partition, &p.Peer)
	})
	return v, err
}

func decodeDropFlow(typ string, body json.RawMessage) (DropFlow, error) {
	var v DropFlow
	var raw json.RawMessage
	err := decodeObject(typ, body, required("flow_id", &v.FlowID),
		required("source_table_ids", &strictList[uint32]{"source_table_ids", &v.SourceTableIDs}),
		required("flow_part2node_id", &raw))
	if err != nil {
		return v, err
	}
	v.FlowPart2NodeID, err = decodeList(typ+".flow_part2node_id", raw, func(b []byte, p *FlowPartitionNode) error {
		return pair("(FlowPartitionId, FlownodeId)", b, &p.Partition, &p.NodeID)
	})
	return v, err
}
