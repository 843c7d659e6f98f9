package ddl

import (
	"context"
	"maps"
	"slices"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// updateMetadata is GreptimeDB's on_update_metadata: one transaction that
// compares the table info with the bytes prepare read and puts the new
// value (version +1). A rename (rename_table) changes only the info's name
// and, in the same transaction, deletes the old __table_name key and puts
// the new one; an alter of columns (update_table_info) puts the info built
// in prepare, with the column ids the datanodes reported, and rewrites the
// __dn_table values when the table's region options changed. A failed
// compare that finds exactly the new value is this step's own earlier
// commit.
func (p *alterTable) updateMetadata(ctx context.Context, pc *procedure.Context) error {
	id := p.data.TableID
	old, err := greptimekey.Decode[greptimekey.TableInfoValue](p.data.InfoValue)
	if err != nil {
		return statuscode.Errorf(statuscode.Unexpected, "Unexpected: table info of table id %d: %v", id, err)
	}
	var next greptimekey.TableInfoValue
	var ops []kv.TxnOp
	op := "the updating table info"
	if to := p.newName(); to != "" {
		op = "the renaming table metadata"
		renamed := normalized(old.TableInfo)
		renamed.Name = to
		next = old.Next(renamed)
		nameValue, err := greptimekey.TableNameValue{TableID: id}.Encode()
		if err != nil {
			return err
		}
		cur := old.TableInfo
		ops = append(ops,
			kv.OpDelete(greptimekey.TableNameKey(cur.CatalogName, cur.SchemaName, cur.Name)),
			kv.OpPut(greptimekey.TableNameKey(cur.CatalogName, cur.SchemaName, to), nameValue))
	} else {
		info := *p.data.NewInfo
		if len(p.data.Columns) > 0 {
			info = withColumnIDs(info, p.data.Columns)
		}
		next = old.Next(info)
	}
	infoKey := greptimekey.TableInfoKey(id)
	raw, err := next.Encode()
	if err != nil {
		return err
	}
	ops = append(ops, kv.OpPut(infoKey, raw))
	if p.newName() == "" {
		dn, err := p.datanodeTableOps(ctx, pc.Store, next.TableInfo)
		if err != nil {
			return err
		}
		ops = append(ops, dn...)
	}
	resp, err := pc.Store.Txn(ctx, kv.TxnRequest{
		Compare: []kv.Compare{kv.CompareValue(infoKey, kv.CompareEqual, p.data.InfoValue)},
		Success: ops,
		Failure: []kv.TxnOp{kv.OpGet(infoKey)},
	})
	if err != nil {
		return storeError(err)
	}
	if !resp.Succeeded {
		got := resp.Responses[0].Kvs
		if len(got) == 0 {
			return statuscode.Errorf(statuscode.Unexpected, "Unexpected: Reads the empty table info in comparing operation of %s", op)
		}
		if !jsonEqual(got[0].Value, raw) {
			return statuscode.Errorf(statuscode.Unexpected, "Unexpected: Reads the different value of table id %d during %s: %s, expected: %s", id, op, got[0].Value, raw)
		}
	}
	pc.Logger.Info("table metadata updated", "table", p.data.Table.String(), "table_id", id, "version", next.Version)
	p.data.State = stateInvalidateCache
	return nil
}

// datanodeTableOps is GreptimeDB's build_update_table_options_txn: when the
// region options of the table's first datanode (the lowest id) differ from
// the new info's, every datanode's __dn_table value is put again with the
// new options (no compare, as GreptimeDB).
func (p *alterTable) datanodeTableOps(ctx context.Context, store kv.Backend, info greptimekey.TableInfo) ([]kv.TxnOp, error) {
	id := p.data.TableID
	dist := greptimekey.RegionDistribution(p.data.Routes)
	if len(dist) == 0 {
		return nil, nil
	}
	datanodes := slices.Sorted(maps.Keys(dist))
	kvp, err := kv.Get(ctx, store, greptimekey.DatanodeTableKey(datanodes[0], id))
	if err != nil {
		return nil, storeError(err)
	}
	if kvp == nil {
		return nil, statuscode.Errorf(statuscode.Internal, "Datanode table info not found, table id: %d, datanode id: %d", id, datanodes[0])
	}
	v, err := greptimekey.Decode[greptimekey.DatanodeTableValue](kvp.Value)
	if err != nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Unexpected: datanode table value of table id %d on datanode %d: %v", id, datanodes[0], err)
	}
	options := info.Meta.Options.RegionOptions()
	if maps.Equal(v.RegionInfo.RegionOptions, options) {
		return nil, nil
	}
	regionInfo := v.RegionInfo
	regionInfo.RegionOptions = options
	ops := make([]kv.TxnOp, 0, len(datanodes))
	for _, dn := range datanodes {
		value, err := greptimekey.NewDatanodeTableValue(id, dist[dn], regionInfo).Encode()
		if err != nil {
			return nil, err
		}
		ops = append(ops, kv.OpPut(greptimekey.DatanodeTableKey(dn, id), value))
	}
	return ops, nil
}
