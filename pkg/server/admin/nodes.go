package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/kv"
	"github.com/pgmetasrv/metasrv/pkg/nodelist"
)

// Memory is the node's in-memory KV, where the leader keeps the leases and
// node info of the GreptimeDB nodes that heartbeat to it (it starts empty in
// every term); *metasrv.Metasrv satisfies it.
type Memory interface {
	MemoryBackend() kv.Backend
}

// nodes answers GET /admin/nodes[?role=datanode|frontend|flownode]: the
// GreptimeDB nodes registered with this node while it leads, as a JSON array
// of nodelist.Node sorted by role, then id, the list `metasrv ctl nodes` gets
// over gRPC. A follower refuses with the not-leader answer naming the leader:
// what it holds are the leases of heartbeats it refused, not the cluster's.
func (h *handlers) nodes(memory Memory, heartbeatInterval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if memory == nil {
			writeError(w, http.StatusNotImplemented, "this server does not keep GreptimeDB nodes")
			return
		}
		role := nodelist.NodeRole(r.URL.Query().Get("role"))
		if role != "" && !role.Valid() {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("role %q: expected datanode, frontend or flownode", role))
			return
		}
		ctx := r.Context()
		if _, err := h.store.LeaderBackend(ctx); err != nil {
			h.fail(w, r, err)
			return
		}
		// The in-memory KV of the term this node leads now: the core
		// replaces it on every leadership change, so one handle is one
		// term's.
		mem := memory.MemoryBackend()
		nodes, err := nodelist.List(ctx, func(ctx context.Context, prefix []byte) ([]kv.KeyValue, error) {
			resp, err := mem.Range(ctx, kv.RangeRequest{Key: prefix, RangeEnd: kv.PrefixEnd(prefix)})
			return resp.Kvs, err
		}, nodelist.Options{Role: role, HeartbeatInterval: heartbeatInterval})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		// Still leading: a node that stepped down meanwhile read a term
		// that is over.
		if _, err := h.store.LeaderBackend(ctx); err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, nodes)
	}
}
