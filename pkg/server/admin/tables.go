package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/tableroute"
)

// tableRoute answers GET /admin/tables/route?table=NAME, NAME being
// CATALOG.SCHEMA.TABLE, SCHEMA.TABLE (catalog greptime) or TABLE
// (greptime.public), parsed as a GreptimeDB frontend parses a table name
// (unquoted parts lowercased; "..." or `...` taken as written): where the
// table's regions live and how their peers stand with this leader, the view
// `metasrv ctl table route` prints. The table and its route are read from
// the leader's store, the peers' liveness and reported roles from its
// in-memory KV (empty after every leadership change until the datanodes
// heartbeat again). The answer, a tableroute.Table:
//
//	{"table":"greptime.public.cpu","catalog":"greptime","schema":"public","name":"cpu",
//	 "table_id":1024,"table_type":"Base","engine":"mito",
//	 "columns":[{"name":"ts","data_type":{"Timestamp":{"Millisecond":null}},
//	             "is_nullable":false,"is_time_index":true,"primary_key":false}],
//	 "route_type":"physical",            // or "logical" (+ "physical_table_id"), or "none"
//	 "route_version":0,                  // left out without a route
//	 "regions":[{"region_id":4398046511104,"region_number":0,
//	   "leader":{"id":3,"addr":"10.0.0.3:4001",
//	             "lease":"current",      // or "expired", or "none": no heartbeat this term
//	             "last_heartbeat":"2025-06-01T12:00:00Z","last_heartbeat_age_ms":1200,
//	             "stat_time":"2025-06-01T11:59:58Z",
//	             "reported_role":"Leader"},  // left out when the last stat does not report it
//	   "followers":[],                   // peers of the same shape
//	   "leader_state":"Downgrading",     // left out for a normal leader; also "Staging"
//	   "leader_down_since":"2025-06-01T11:59:00Z",  // left out unless set
//	   "partition_expr":""}]}
//
// "leader" is null when the route names none. A table that does not exist
// is 404, a missing or malformed table parameter 400, each with an error
// saying so; a follower answers the not-leader refusal, as /admin/nodes does.
func (h *handlers) tableRoute(memory Memory, heartbeatInterval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if memory == nil {
			writeError(w, http.StatusNotImplemented, "this server does not keep GreptimeDB nodes")
			return
		}
		name, err := tableParam(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx := r.Context()
		store, err := h.store.LeaderBackend(ctx)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		// One term's in-memory KV: the core replaces it on every change.
		mem := memory.MemoryBackend()
		t, err := tableroute.Get(ctx, name, tableroute.Sources{Store: batchGetter(store), Memory: batchGetter(mem)},
			tableroute.Options{HeartbeatInterval: heartbeatInterval})
		// Still leading: a node that stepped down meanwhile read a term
		// that is over, and its "not found" may be as stale.
		if _, lerr := h.store.LeaderBackend(ctx); lerr != nil {
			h.fail(w, r, lerr)
			return
		}
		switch {
		case errors.Is(err, tableroute.ErrTableNotFound):
			writeError(w, http.StatusNotFound, fmt.Sprintf("table %s not found", name))
		case err != nil:
			h.fail(w, r, err)
		default:
			writeJSON(w, http.StatusOK, t)
		}
	}
}

// tableParam is the one table query parameter, parsed.
func tableParam(r *http.Request) (greptimekey.TableName, error) {
	values := r.URL.Query()["table"]
	switch len(values) {
	case 0:
		return greptimekey.TableName{}, fmt.Errorf("missing query parameter table: expected ?table=%s", tableroute.NameForms)
	case 1:
		return tableroute.ParseName(values[0])
	default:
		return greptimekey.TableName{}, fmt.Errorf("query parameter table given %d times: expected one %s", len(values), tableroute.NameForms)
	}
}

func batchGetter(b kv.Backend) tableroute.Getter {
	return func(ctx context.Context, keys [][]byte) ([]kv.KeyValue, error) {
		resp, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: keys})
		return resp.Kvs, err
	}
}
