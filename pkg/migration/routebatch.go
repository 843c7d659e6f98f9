package migration

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// routeWriter commits the route updates of one table's migrations
// together. Each migration moves one region, and all of a table's regions
// share one __table_route value: a failover of a datanode's 100 regions
// makes 200 updates of that value (downgrade, then upgrade), and one
// compare-and-put each, even taken in turn, spent seconds. Instead an
// update is queued under its table, and whoever holds the table's gate
// commits every update queued so far in one compare-and-put (a flat
// combiner): under load one write carries many updates, alone one carries
// one. The compare stays: writers outside this leader's migrations (DDL,
// a deposed leader) still lose to it. Tables are striped over a fixed set
// of gates, so two tables may share one (they then take turns).
type routeWriter struct {
	gates   [64]chan struct{}
	decoded *greptimekey.RouteCache

	mu      sync.Mutex
	pending map[routeQueue][]*routeUpdate
}

// routeQueue is the queue of one table in one term: updates of different
// terms go through different fenced stores and are never combined.
type routeQueue struct {
	term  int64
	table uint32
}

// routeUpdate is one migration's change of its region's route, queued.
type routeUpdate struct {
	regionID uint64
	// done reports whether the region's route already is as wanted, so a
	// step run again after a commit whose answer was lost writes nothing.
	done func(greptimekey.RegionRoute) (bool, error)
	// change builds the update from the route as the updates before it in
	// the batch left it.
	change func(*routeSnapshot) (routeChange, error)
	// result gets the outcome once (buffered).
	result chan routeResult
}

type routeResult struct {
	changed bool
	err     error
}

// routeChange is what one route update writes: the region routes of the
// new value and other keys put or deleted with it, in one transaction.
type routeChange struct {
	routes []greptimekey.RegionRoute
	ops    []kv.TxnOp
}

func newRouteWriter(decoded *greptimekey.RouteCache) *routeWriter {
	if decoded == nil {
		decoded = greptimekey.NewRouteCache(0)
	}
	w := &routeWriter{pending: map[routeQueue][]*routeUpdate{}, decoded: decoded}
	for i := range w.gates {
		w.gates[i] = make(chan struct{}, 1)
	}
	return w
}

// updateRoute rewrites regionID's route in its table's route value, with
// the other updates queued for that table, and reports whether this update
// was written (false: done said it already was). It returns once the
// write carrying it committed or failed.
func (m *Manager) updateRoute(ctx context.Context, pc *procedure.Context, regionID uint64,
	done func(greptimekey.RegionRoute) (bool, error), change func(*routeSnapshot) (routeChange, error),
) (bool, error) {
	w := m.routes
	q := routeQueue{term: pc.Term, table: greptimekey.RegionTableID(regionID)}
	u := &routeUpdate{regionID: regionID, done: done, change: change, result: make(chan routeResult, 1)}
	w.mu.Lock()
	w.pending[q] = append(w.pending[q], u)
	w.mu.Unlock()

	gate := w.gates[q.table%uint32(len(w.gates))]
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		if w.withdraw(q, u) {
			return false, ctx.Err()
		}
		// A gate holder took the update and will answer for it.
		r := <-u.result
		return r.changed, r.err
	}
	defer func() { <-gate }()
	select {
	case r := <-u.result: // committed by the holder before us
		return r.changed, r.err
	default:
	}
	w.mu.Lock()
	batch := w.pending[q]
	delete(w.pending, q)
	w.mu.Unlock()
	w.commit(ctx, pc.Store, q.table, batch)
	r := <-u.result
	return r.changed, r.err
}

// withdraw takes u off its queue; false when a gate holder already took it.
func (w *routeWriter) withdraw(q routeQueue, u *routeUpdate) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.pending[q], u)
	if i < 0 {
		return false
	}
	w.pending[q] = slices.Delete(w.pending[q], i, i+1)
	if len(w.pending[q]) == 0 {
		delete(w.pending, q)
	}
	return true
}

// commit applies batch, in order, to one read of the table's route
// and writes the result with a compare-and-put against the bytes read, as
// GreptimeDB's table metadata manager does; every update gets its result.
// An update whose done or change fails gets that error alone. A compare
// that fails (a writer outside the batch) gives each written update the
// answer done gives on a fresh read, or a retry.
func (w *routeWriter) commit(ctx context.Context, store kv.Backend, table uint32, batch []*routeUpdate) {
	// The holder's context is the batch's: when it ends, the others' steps
	// are retried, not failed.
	answer := func(u *routeUpdate, changed bool, err error) {
		if err != nil && ctx.Err() != nil {
			err = procedure.Retryable(err)
		}
		u.result <- routeResult{changed: changed, err: err}
	}
	snap, err := readTableRoute(ctx, store, w.decoded, table)
	if err != nil {
		for _, u := range batch {
			answer(u, false, err)
		}
		return
	}
	routes, ops, written := snap.value.Physical.RegionRoutes, newOpSet(), batch[:0:0]
	for _, u := range batch {
		c, ok, err := applyUpdate(snap, routes, u)
		if err != nil || !ok {
			answer(u, false, err)
			continue
		}
		routes = c.routes
		ops.add(c.ops)
		written = append(written, u)
	}
	if len(written) == 0 {
		return
	}
	next := greptimekey.TableRouteValue{Physical: new(snap.value.Physical.Next(routes))}
	raw, err := next.Encode()
	if err != nil {
		err = fmt.Errorf("encode the route of table %d: %w", table, err)
	}
	var resp kv.TxnResponse
	if err == nil {
		key := greptimekey.TableRouteKey(table)
		resp, err = store.Txn(ctx, kv.TxnRequest{
			Compare: []kv.Compare{kv.CompareValue(key, kv.CompareEqual, snap.raw)},
			Success: append(ops.list(), kv.OpPut(key, raw)),
		})
		if err != nil {
			err = storeError(fmt.Errorf("update the route of table %d (%d regions' updates): %w", table, len(written), err))
		}
	}
	switch {
	case err != nil:
		for _, u := range written {
			answer(u, false, err)
		}
	case resp.Succeeded:
		for _, u := range written {
			answer(u, true, nil)
		}
	default:
		w.recheck(ctx, store, table, written, answer)
	}
}

// applyUpdate runs u against routes (the route value's region routes as
// the batch left them so far); ok is false when u has nothing to write.
func applyUpdate(read *routeSnapshot, routes []greptimekey.RegionRoute, u *routeUpdate) (routeChange, bool, error) {
	cur := &routeSnapshot{tableID: read.tableID, raw: read.raw, value: greptimekey.TableRouteValue{Physical: new(*read.value.Physical)}}
	cur.value.Physical.RegionRoutes = routes
	if err := cur.find(u.regionID); err != nil {
		return routeChange{}, false, err
	}
	if ok, err := u.done(cur.route()); ok || err != nil {
		return routeChange{}, false, err
	}
	c, err := u.change(cur)
	return c, err == nil, err
}

// recheck answers the updates of a compare-and-put that lost to another
// writer: written already (done on a fresh read), or retried later.
func (w *routeWriter) recheck(ctx context.Context, store kv.Backend, table uint32, written []*routeUpdate, answer func(*routeUpdate, bool, error)) {
	again, err := readTableRoute(ctx, store, w.decoded, table)
	for _, u := range written {
		if err != nil {
			answer(u, false, err)
			continue
		}
		if ferr := again.find(u.regionID); ferr != nil {
			answer(u, false, ferr)
			continue
		}
		ok, derr := u.done(again.route())
		switch {
		case ok || derr != nil:
			answer(u, false, derr)
		default:
			answer(u, false, retryLater("the route of table %d changed while region %s was updated", table, regionName(u.regionID)))
		}
	}
}

// opSet merges the other keys' operations of a batch's updates: each
// update computed its operations from the state the ones before it left,
// so the last operation on a key is the one to keep (a transaction may
// not name one key twice).
type opSet struct {
	order []string
	ops   map[string]kv.TxnOp
}

func newOpSet() *opSet { return &opSet{ops: map[string]kv.TxnOp{}} }

func (s *opSet) add(ops []kv.TxnOp) {
	for _, op := range ops {
		k := string(op.Key)
		if _, ok := s.ops[k]; !ok {
			s.order = append(s.order, k)
		}
		s.ops[k] = op
	}
}

func (s *opSet) list() []kv.TxnOp {
	out := make([]kv.TxnOp, 0, len(s.order)+1)
	for _, k := range s.order {
		out = append(out, s.ops[k])
	}
	return out
}
