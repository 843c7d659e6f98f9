package ddlload

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/grpc"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

const (
	// scanPage is the limit of one Range of a prefix scan.
	scanPage = 1000
	// getBatch is how many keys one BatchGet asks for.
	getBatch = 128
)

// heldRegions is one fake datanode's regions at a check.
type heldRegions struct {
	id      uint64
	addr    string
	regions map[uint64]greptimefake.RegionRole
}

// checker reads the metadata through the leader's Store service, as a
// GreptimeDB frontend reads it.
type checker struct {
	store   metapb.StoreClient
	opts    []grpc.CallOption
	catalog string
	schema  string
	// regions is the regions each table has (one per partition, at least
	// one).
	regions int
}

// checkCreated checks that the tables the run made, and only those, exist:
// one __table_name key each under the schema naming the id the create
// answered, want of them in all; a physical __table_route placing the
// table's regions on the run's datanodes; and each region held, as leader,
// by the datanode its route names, with no other region on them. An error
// is a read that failed; what it read wrong is in the Check.
func (k *checker) checkCreated(ctx context.Context, want int, made map[string]uint32, held []heldRegions) (Check, error) {
	c := Check{ExpectedTables: want}
	if err := k.checkNames(ctx, &c, made); err != nil {
		return c, err
	}
	ids := slices.Sorted(maps.Values(made))
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		keys[i] = greptimekey.TableRouteKey(id)
	}
	routes, err := k.batchGet(ctx, keys)
	if err != nil {
		return c, err
	}
	placed := map[uint64]uint64{} // region -> datanode id
	for _, id := range ids {
		if k.checkRoute(&c, id, routes[string(greptimekey.TableRouteKey(id))], held, placed) {
			c.Routes++
		}
	}
	checkRegions(&c, held, placed)
	return c, nil
}

// checkNames scans the schema's table names: exactly c.ExpectedTables of
// them, each one of made with made's id.
func (k *checker) checkNames(ctx context.Context, c *Check, made map[string]uint32) error {
	kvs, err := k.scan(ctx, greptimekey.TableNameSchemaPrefix(k.catalog, k.schema))
	if err != nil {
		return err
	}
	c.TableNames = len(kvs)
	if c.TableNames != c.ExpectedTables {
		c.problem("%d __table_name keys under %s, expected %d", c.TableNames, greptimekey.TableNameSchemaPrefix(k.catalog, k.schema), c.ExpectedTables)
	}
	seen := map[string]bool{}
	for _, e := range kvs {
		name, err := greptimekey.ParseTableNameKey(e.GetKey())
		if err != nil {
			c.problem("%v", err)
			continue
		}
		v, err := greptimekey.Decode[greptimekey.TableNameValue](e.GetValue())
		id, ok := made[name.Table]
		switch {
		case err != nil:
			c.problem("%s: %v", e.GetKey(), err)
		case !ok:
			c.problem("%s (table id %d) is not a table this run made", e.GetKey(), v.TableID)
		case v.TableID != id:
			c.problem("%s names table id %d; its create answered %d", e.GetKey(), v.TableID, id)
		}
		seen[name.Table] = true
	}
	for _, name := range slices.Sorted(maps.Keys(made)) {
		if !seen[name] {
			c.problem("table %s (id %d) has no __table_name key", name, made[name])
		}
	}
	return nil
}

// checkRoute checks one table's route and records where its regions are;
// true when it is as expected.
func (k *checker) checkRoute(c *Check, id uint32, value []byte, held []heldRegions, placed map[uint64]uint64) bool {
	key := greptimekey.TableRouteKey(id)
	if value == nil {
		c.problem("%s is missing", key)
		return false
	}
	route, err := greptimekey.Decode[greptimekey.TableRouteValue](value)
	switch {
	case err != nil:
		c.problem("%s: %v", key, err)
		return false
	case route.Physical == nil:
		c.problem("%s is not a physical route", key)
		return false
	case len(route.Physical.RegionRoutes) != k.regions:
		c.problem("%s has %d regions, expected %d", key, len(route.Physical.RegionRoutes), k.regions)
		return false
	}
	ok := true
	for i, rr := range route.Physical.RegionRoutes {
		region := greptimekey.RegionID(id, uint32(i))
		if rr.Region.ID != region {
			c.problem("%s: region %d is %d, expected %d", key, i, rr.Region.ID, region)
			ok = false
			continue
		}
		if rr.LeaderPeer == nil || !slices.ContainsFunc(held, func(h heldRegions) bool {
			return h.id == rr.LeaderPeer.ID && h.addr == rr.LeaderPeer.Addr
		}) {
			c.problem("%s: region %d's leader %+v is none of the fake datanodes", key, region, rr.LeaderPeer)
			ok = false
			continue
		}
		placed[region] = rr.LeaderPeer.ID
	}
	return ok
}

// checkRegions checks that the datanodes hold exactly the placed regions,
// each as leader on the datanode placed on.
func checkRegions(c *Check, held []heldRegions, placed map[uint64]uint64) {
	found := map[uint64]bool{}
	c.RegionsPerDatanode = make([]int, len(held))
	for i, h := range held {
		c.RegionsPerDatanode[i] = len(h.regions)
		c.Regions += len(h.regions)
		for _, region := range slices.Sorted(maps.Keys(h.regions)) {
			on, ok := placed[region]
			switch {
			case !ok:
				c.problem("datanode %d holds region %d, which no route of this run's tables places", h.id, region)
				continue
			case on != h.id:
				c.problem("datanode %d holds region %d, which its route places on datanode %d", h.id, region, on)
				continue
			}
			found[region] = true
			if role := h.regions[region]; role != greptimefake.RegionLeader {
				c.problem("datanode %d holds region %d as %s, not leader", h.id, region, role)
			}
		}
	}
	for _, region := range slices.Sorted(maps.Keys(placed)) {
		if !found[region] {
			c.problem("region %d is not held by datanode %d, where its route places it", region, placed[region])
		}
	}
}

// checkDropped checks that of the tables the run made only left (those
// whose drop failed) remain: no other __table_name key under the schema,
// no tombstoned one (a finished drop deletes its tombstones), no
// __table_route or __table_info of a dropped table, and no region of one
// on the datanodes.
func (k *checker) checkDropped(ctx context.Context, dropped, left map[string]uint32, held []heldRegions) (Check, error) {
	c := Check{ExpectedTables: len(left)}
	if err := k.checkNames(ctx, &c, left); err != nil {
		return c, err
	}
	tombstones, err := k.scan(ctx, greptimekey.TombstoneKey(greptimekey.TableNameSchemaPrefix(k.catalog, k.schema)))
	if err != nil {
		return c, err
	}
	c.Tombstones = len(tombstones)
	for _, e := range tombstones {
		c.problem("%s is left", e.GetKey())
	}
	gone := map[uint32]bool{}
	var keys [][]byte
	for _, id := range slices.Sorted(maps.Values(dropped)) {
		gone[id] = true
		keys = append(keys, greptimekey.TableRouteKey(id), greptimekey.TableInfoKey(id))
	}
	found, err := k.batchGet(ctx, keys)
	if err != nil {
		return c, err
	}
	for _, key := range slices.Sorted(maps.Keys(found)) {
		c.Routes++
		c.problem("%s of a dropped table is left", key)
	}
	c.RegionsPerDatanode = make([]int, len(held))
	for i, h := range held {
		c.RegionsPerDatanode[i] = len(h.regions)
		c.Regions += len(h.regions)
		for _, region := range slices.Sorted(maps.Keys(h.regions)) {
			if gone[uint32(region>>32)] {
				c.problem("datanode %d still holds region %d of a dropped table", h.id, region)
			}
		}
	}
	return c, nil
}

// scan reads every key under prefix, a page at a time.
func (k *checker) scan(ctx context.Context, prefix []byte) ([]*metapb.KeyValue, error) {
	end := kv.PrefixEnd(prefix)
	var out []*metapb.KeyValue
	for from := prefix; ; {
		resp, err := k.store.Range(ctx, &metapb.RangeRequest{Header: frontendHeader(), Key: from, RangeEnd: end, Limit: scanPage}, k.opts...)
		if err == nil && resp.GetHeader().GetError() != nil {
			err = fmt.Errorf("header error %d: %s", resp.GetHeader().GetError().GetCode(), resp.GetHeader().GetError().GetErrMsg())
		}
		if err != nil {
			return nil, fmt.Errorf("ddlload: check: range %s: %w", prefix, err)
		}
		out = append(out, resp.GetKvs()...)
		if !resp.GetMore() || len(resp.GetKvs()) == 0 {
			return out, nil
		}
		from = append(bytes.Clone(resp.GetKvs()[len(resp.GetKvs())-1].GetKey()), 0)
	}
}

// batchGet reads keys, getBatch at a time: the values found by key.
func (k *checker) batchGet(ctx context.Context, keys [][]byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	for chunk := range slices.Chunk(keys, getBatch) {
		resp, err := k.store.BatchGet(ctx, &metapb.BatchGetRequest{Header: frontendHeader(), Keys: chunk}, k.opts...)
		if err == nil && resp.GetHeader().GetError() != nil {
			err = fmt.Errorf("header error %d: %s", resp.GetHeader().GetError().GetCode(), resp.GetHeader().GetError().GetErrMsg())
		}
		if err != nil {
			return nil, fmt.Errorf("ddlload: check: batch get: %w", err)
		}
		for _, e := range resp.GetKvs() {
			out[string(e.GetKey())] = e.GetValue()
		}
	}
	return out, nil
}
