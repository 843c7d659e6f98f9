package ddl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	greptimepb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	regionpb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/region"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// walOptionsKey is the region option carrying a region's encoded WAL
// options (common_wal's WAL_OPTIONS_KEY).
const walOptionsKey = "wal_options"

// regionTemplate is GreptimeDB's build_template: the CreateRequest every
// region of the table shares. A column is the time index, a tag (in the
// primary key) or a field; column ids are the columns' positions.
func regionTemplate(e *greptimepb.CreateTableExpr) (*regionpb.CreateRequest, error) {
	tmpl := &regionpb.CreateRequest{Engine: e.GetEngine(), Options: maps.Clone(e.GetTableOptions())}
	ids := make(map[string]uint32, len(e.GetColumnDefs()))
	for i, c := range e.GetColumnDefs() {
		semantic := greptimepb.SemanticType_FIELD
		switch {
		case c.GetName() == e.GetTimeIndex():
			semantic = greptimepb.SemanticType_TIMESTAMP
		case slices.Contains(e.GetPrimaryKeys(), c.GetName()):
			semantic = greptimepb.SemanticType_TAG
		}
		def := &greptimepb.ColumnDef{
			Name: c.GetName(), DataType: c.GetDataType(), IsNullable: c.GetIsNullable(),
			DefaultConstraint: c.GetDefaultConstraint(), SemanticType: semantic,
			DatatypeExtension: c.GetDatatypeExtension(), Options: c.GetOptions(),
		}
		tmpl.ColumnDefs = append(tmpl.ColumnDefs, &regionpb.RegionColumnDef{ColumnDef: def, ColumnId: uint32(i)})
		ids[c.GetName()] = uint32(i)
	}
	for _, k := range e.GetPrimaryKeys() {
		id, ok := ids[k]
		if !ok {
			return nil, statuscode.Errorf(statuscode.InvalidArguments, "Primary key '%s' not found when creating region request", k)
		}
		tmpl.PrimaryKey = append(tmpl.PrimaryKey, id)
	}
	return tmpl, nil
}

// createRequest is GreptimeDB's build_one: the template for one region, with
// its id, storage path, WAL options and partition expression.
func createRequest(tmpl *regionpb.CreateRequest, r greptimekey.RegionRoute, path string, wal map[uint32]string) *regionpb.RegionRequest {
	req := proto.CloneOf(tmpl)
	req.RegionId = r.Region.ID
	req.Path = path
	req.Requirements = &regionpb.RegionRequirements{}
	if req.Options == nil {
		req.Options = map[string]string{}
	}
	if w, ok := wal[greptimekey.RegionNumber(r.Region.ID)]; ok {
		req.Options[walOptionsKey] = w
	}
	req.Partition = &metapb.Partition{Expression: r.Region.PartitionExpr}
	return &regionpb.RegionRequest{Header: &regionpb.RegionRequestHeader{}, Body: &regionpb.RegionRequest_Create{Create: req}}
}

// leaderRole is the keeper role of a route's leader region.
func leaderRole(r greptimekey.RegionRoute) metapb.RegionRole {
	role, _ := r.LeaderRegionRole()
	switch role {
	case greptimekey.RegionRoleDowngradingLeader:
		return metapb.RegionRole_DowngradingLeader
	case greptimekey.RegionRoleStagingLeader:
		return metapb.RegionRole_StagingLeader
	default:
		return metapb.RegionRole_Leader
	}
}

// hold registers the leader regions of routes as operating (GreptimeDB's
// operating_leader_region_roles), all or none.
func hold(k *region.Keeper, routes []greptimekey.RegionRoute) ([]*region.Guard, error) {
	var guards []*region.Guard
	for _, r := range routes {
		if r.LeaderPeer == nil {
			continue
		}
		g, err := k.Register(r.LeaderPeer.ID, r.Region.ID, leaderRole(r))
		if err != nil {
			for _, g := range guards {
				g.Release()
			}
			return nil, err
		}
		guards = append(guards, g)
	}
	return guards, nil
}

// remapAddresses replaces each peer's address with the one in its
// __node_address key, where a datanode that restarted on another address
// reported it (GreptimeDB remaps when a step is retried; reading the cache
// is cheap enough to do it always).
func remapAddresses(ctx context.Context, store kv.Backend, routes []greptimekey.RegionRoute) ([]greptimekey.RegionRoute, error) {
	ids := map[uint64]bool{}
	for _, r := range routes {
		if r.LeaderPeer != nil {
			ids[r.LeaderPeer.ID] = true
		}
		for _, f := range r.FollowerPeers {
			ids[f.ID] = true
		}
	}
	keys := make([][]byte, 0, len(ids))
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		keys = append(keys, greptimekey.NodeAddressKey(greptimekey.RoleDatanode, id))
	}
	resp, err := store.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
	if err != nil {
		return nil, storeError(err)
	}
	addrs := map[uint64]string{}
	for _, p := range resp.Kvs {
		v, err := greptimekey.Decode[greptimekey.NodeAddressValue](p.Value)
		if err != nil {
			continue // unreadable: keep the route's address
		}
		addrs[v.Peer.ID] = v.Peer.Addr
	}
	out := make([]greptimekey.RegionRoute, len(routes))
	for i, r := range routes {
		if r.LeaderPeer != nil {
			p := *r.LeaderPeer
			if a, ok := addrs[p.ID]; ok {
				p.Addr = a
			}
			r.LeaderPeer = &p
		}
		r.FollowerPeers = slices.Clone(r.FollowerPeers)
		for j, f := range r.FollowerPeers {
			if a, ok := addrs[f.ID]; ok {
				r.FollowerPeers[j].Addr = a
			}
		}
		out[i] = r
	}
	return out, nil
}

// eachLeader runs fn for every route with a leader, concurrently, as
// GreptimeDB sends one request per region; the first error is returned once
// all have ended.
func eachLeader(ctx context.Context, routes []greptimekey.RegionRoute, fn func(context.Context, greptimekey.RegionRoute) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range routes {
		if r.LeaderPeer == nil {
			continue
		}
		g.Go(func() error { return fn(ctx, r) })
	}
	return g.Wait()
}

// dropRegions is GreptimeDB's on_drop_regions: drop every leader region on
// its leader (a region the datanode does not have counts as dropped), then
// close the follower regions (a failure there is only logged by GreptimeDB,
// and returned as nil here too).
func dropRegions(ctx context.Context, regions Regions, store kv.Backend, routes []greptimekey.RegionRoute, fastPath bool) error {
	routes, err := remapAddresses(ctx, store, routes)
	if err != nil {
		return err
	}
	err = eachLeader(ctx, routes, func(ctx context.Context, r greptimekey.RegionRoute) error {
		req := &regionpb.RegionRequest{Header: &regionpb.RegionRequestHeader{},
			Body: &regionpb.RegionRequest_Drop{Drop: &regionpb.DropRequest{RegionId: r.Region.ID, FastPath: fastPath}}}
		_, err := regions.Handle(ctx, r.LeaderPeer.Addr, req)
		if code, ok := statuscode.Of(err); ok && code == statuscode.RegionNotFound {
			return nil
		}
		if err != nil {
			return regionError(fmt.Errorf("drop region %d on datanode %d: %w", r.Region.ID, r.LeaderPeer.ID, err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	var g errgroup.Group
	for _, r := range routes {
		for _, f := range r.FollowerPeers {
			g.Go(func() error {
				req := &regionpb.RegionRequest{Header: &regionpb.RegionRequestHeader{},
					Body: &regionpb.RegionRequest_Close{Close: &regionpb.CloseRequest{RegionId: r.Region.ID}}}
				_, err := regions.Handle(ctx, f.Addr, req)
				return err
			})
		}
	}
	_ = g.Wait() // GreptimeDB logs follower close failures and goes on
	return nil
}

// tableIDOf reads the id under a table name, nil when there is none.
func tableIDOf(ctx context.Context, store kv.Backend, n greptimekey.TableName) (*uint32, error) {
	p, err := kv.Get(ctx, store, greptimekey.TableNameKey(n.Catalog, n.Schema, n.Table))
	if err != nil {
		return nil, storeError(err)
	}
	if p == nil {
		return nil, nil
	}
	v, err := greptimekey.Decode[greptimekey.TableNameValue](p.Value)
	if err != nil {
		return nil, statuscode.Errorf(statuscode.Unexpected, "Unexpected: table name value of %s: %v", n, err)
	}
	return &v.TableID, nil
}

// jsonEqual compares two JSON values by meaning (GreptimeDB compares the
// decoded values), so a value re-encoded with other key order still matches.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
