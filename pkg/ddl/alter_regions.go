package ddl

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// columnMetadataExtension is the region response extension carrying the
// region's columns after a create or alter (store-api's
// TABLE_COLUMN_METADATA_EXTENSION_KEY).
const columnMetadataExtension = "TABLE_COLUMN_METADATA"

// columnID is one column's id as a datanode reported it.
type columnID struct {
	Name string `json:"name"`
	ID   uint32 `json:"column_id"`
}

// regionAlterTemplate is the AlterRequest every region gets, without its
// region id: GreptimeDB's create_proto_alter_kind. Columns the table has are
// skipped; the others get ids from the table's next_column_id on, in the
// order asked.
func regionAlterTemplate(info greptimekey.TableInfo, e *greptimepb.AlterTableExpr) *regionpb.AlterRequest {
	switch k := e.GetKind().(type) {
	case *greptimepb.AlterTableExpr_AddColumns:
		names := map[string]bool{}
		for _, c := range info.Meta.Schema.ColumnSchemas {
			names[c.Name] = true
		}
		next := info.Meta.NextColumnID
		adds := &regionpb.AddColumns{}
		for _, ac := range k.AddColumns.GetAddColumns() {
			if names[ac.GetColumnDef().GetName()] {
				continue
			}
			adds.AddColumns = append(adds.AddColumns, &regionpb.AddColumn{
				ColumnDef: &regionpb.RegionColumnDef{ColumnDef: proto.CloneOf(ac.GetColumnDef()), ColumnId: next},
				Location:  proto.CloneOf(ac.GetLocation()),
			})
			next++
		}
		return &regionpb.AlterRequest{Kind: &regionpb.AlterRequest_AddColumns{AddColumns: adds}}
	case *greptimepb.AlterTableExpr_DropColumns:
		drops := &regionpb.DropColumns{}
		for _, d := range k.DropColumns.GetDropColumns() {
			drops.DropColumns = append(drops.DropColumns, &regionpb.DropColumn{Name: d.GetName()})
		}
		return &regionpb.AlterRequest{Kind: &regionpb.AlterRequest_DropColumns{DropColumns: drops}}
	default:
		return &regionpb.AlterRequest{}
	}
}

// alterResult is one leader region's answer.
type alterResult struct {
	resp *regionpb.RegionResponse
	err  error
}

// alterRegions is GreptimeDB's submit_alter_region_requests: one
// AlterRequest per leader region (schema_version left 0, as GreptimeDB
// leaves it), all answers awaited, then handle_multiple_results: all done
// goes on; retryable failures without refusals are retried; every region
// refusing fails the alter with nothing changed; a mix of refusals and
// successes fails it with the regions partly altered (GreptimeDB poisons
// the table).
func (p *alterTable) alterRegions(ctx context.Context, pc *procedure.Context) error {
	p.untouched = true
	routes, err := p.physicalRoutes(ctx, pc.Store)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(routes, func(r greptimekey.RegionRoute) bool { return r.LeaderPeer != nil }) {
		return statuscode.Errorf(statuscode.TableUnavailable, "No leader found for table_id: %d", p.data.TableID)
	}
	old, err := greptimekey.Decode[greptimekey.TableInfoValue](p.data.InfoValue)
	if err != nil {
		return statuscode.Errorf(statuscode.Unexpected, "Unexpected: table info of table id %d: %v", p.data.TableID, err)
	}
	tmpl := regionAlterTemplate(old.TableInfo, p.expr())
	remapped, err := remapAddresses(ctx, pc.Store, routes)
	if err != nil {
		return err
	}
	p.untouched = false
	results := p.sendAlters(ctx, remapped, tmpl)
	var done, retry, refused int
	var firstRetry, firstRefusal error
	var resps []*regionpb.RegionResponse
	for _, r := range results {
		switch {
		case r.err == nil:
			done++
			resps = append(resps, r.resp)
		case procedure.IsRetryable(r.err):
			retry++
			firstRetry = cmpOr(firstRetry, r.err)
		default:
			refused++
			firstRefusal = cmpOr(firstRefusal, r.err)
		}
	}
	switch {
	case retry == len(results), retry > 0 && refused == 0:
		return firstRetry
	case refused == len(results):
		p.untouched = true
		return firstRefusal
	case refused > 0:
		pc.Logger.Error("datanodes refused to alter some regions of the table while others altered theirs",
			"table", p.data.Table.String(), "table_id", p.data.TableID, "refused", refused, "altered", done, "err", firstRefusal)
		return firstRefusal
	}
	cols, err := columnMetadatas(resps)
	if err != nil {
		return err
	}
	p.data.Routes, p.data.Columns = routes, cols
	p.data.State = stateUpdateMetadata
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// sendAlters sends every leader region its request concurrently and waits
// for all the answers, in route order.
func (p *alterTable) sendAlters(ctx context.Context, routes []greptimekey.RegionRoute, tmpl *regionpb.AlterRequest) []alterResult {
	var leaders []greptimekey.RegionRoute
	for _, r := range routes {
		if r.LeaderPeer != nil {
			leaders = append(leaders, r)
		}
	}
	results := make([]alterResult, len(leaders))
	var wg sync.WaitGroup
	for i, r := range leaders {
		wg.Go(func() {
			req := proto.CloneOf(tmpl)
			req.RegionId = r.Region.ID
			resp, err := p.s.opts.Regions.Handle(ctx, r.LeaderPeer.Addr, &regionpb.RegionRequest{
				Header: &regionpb.RegionRequestHeader{}, Body: &regionpb.RegionRequest_Alter{Alter: req},
			})
			if err != nil {
				err = regionError(fmt.Errorf("alter region %d on datanode %d: %w", r.Region.ID, r.LeaderPeer.ID, err))
			}
			results[i] = alterResult{resp: resp, err: err}
		})
	}
	wg.Wait()
	return results
}

// columnMetadatas is GreptimeDB's extract_column_metadatas: the columns the
// datanodes report after the alter, which must be the same on every one;
// none when the first reports none.
func columnMetadatas(resps []*regionpb.RegionResponse) ([]columnID, error) {
	if len(resps) == 0 {
		return nil, nil
	}
	first, has := resps[0].GetExtensions()[columnMetadataExtension]
	for _, r := range resps[1:] {
		other, otherHas := r.GetExtensions()[columnMetadataExtension]
		if has != otherHas || (has && !jsonEqual(first, other)) {
			return nil, statuscode.Errorf(statuscode.Unexpected, "Metadata corruption: The table column metadata schemas from datanodes are not the same. First: %s, Current: %s", first, other)
		}
	}
	if !has {
		return nil, nil
	}
	var list []struct {
		ColumnSchema struct {
			Name string `json:"name"`
		} `json:"column_schema"`
		ColumnID *uint32 `json:"column_id"`
	}
	if err := json.Unmarshal(first, &list); err != nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Failed to decode json: %v", err)
	}
	out := make([]columnID, 0, len(list))
	for _, c := range list {
		if c.ColumnID == nil {
			return nil, statuscode.Errorf(statuscode.Unexpected, "Failed to decode json: missing field `column_id`")
		}
		out = append(out, columnID{Name: c.ColumnSchema.Name, ID: *c.ColumnID})
	}
	return out, nil
}

// withColumnIDs is GreptimeDB's update_table_info_column_ids: the column ids
// in schema order when the reported columns are exactly the table's, else
// the info unchanged.
func withColumnIDs(info greptimekey.TableInfo, cols []columnID) greptimekey.TableInfo {
	reported := make([]string, 0, len(cols))
	ids := make(map[string]uint32, len(cols))
	for _, c := range cols {
		reported = append(reported, c.Name)
		ids[c.Name] = c.ID
	}
	names := info.Meta.ColumnNames()
	slices.Sort(reported)
	sorted := slices.Sorted(slices.Values(names))
	if !slices.Equal(sorted, reported) {
		return info
	}
	out := make([]uint32, 0, len(names))
	for _, n := range names {
		out = append(out, ids[n])
	}
	info.Meta.ColumnIDs = out
	return info
}
