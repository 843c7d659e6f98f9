package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The maintenance switch is GreptimeDB's: maintenance mode is on while
// __switches/maintenance (or the legacy __maintenance) exists, whatever its
// value, so it survives leader changes and restarts and a GreptimeDB metasrv
// sharing the table sees the same switch. Like GreptimeDB, metasrv writes it
// with an empty value and only ever writes the new key.

// MaintenanceEnabled reads the maintenance switch from b.
func MaintenanceEnabled(ctx context.Context, b kv.Backend) (bool, error) {
	resp, err := b.BatchGet(ctx, kv.BatchGetRequest{Keys: maintenanceKeys()})
	if err != nil {
		return false, fmt.Errorf("admin: read maintenance switch %q: %w", greptimekey.MaintenanceKey, err)
	}
	return len(resp.Kvs) > 0, nil
}

// SetMaintenance turns the maintenance switch on or off in b (the leader's
// store). changed is false when it already was in that position. On writes
// __switches/maintenance, in one transaction with the check that neither key
// exists; off deletes both keys in one BatchDelete.
func SetMaintenance(ctx context.Context, b kv.Backend, on bool) (changed bool, err error) {
	key := []byte(greptimekey.MaintenanceKey)
	if on {
		resp, err := b.Txn(ctx, kv.TxnRequest{
			Compare: []kv.Compare{kv.CompareAbsent(key), kv.CompareAbsent([]byte(greptimekey.LegacyMaintenanceKey))},
			Success: []kv.TxnOp{kv.OpPut(key, []byte{})},
		})
		if err != nil {
			return false, fmt.Errorf("admin: enable maintenance (%q): %w", key, err)
		}
		return resp.Succeeded, nil
	}
	resp, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: maintenanceKeys(), PrevKv: true})
	if err != nil {
		return false, fmt.Errorf("admin: disable maintenance (%q): %w", key, err)
	}
	return len(resp.PrevKvs) > 0, nil
}

// maintenanceKeys are the keys whose presence turns maintenance on.
func maintenanceKeys() [][]byte {
	return [][]byte{[]byte(greptimekey.MaintenanceKey), []byte(greptimekey.LegacyMaintenanceKey)}
}

type maintenanceState struct {
	Enabled bool `json:"enabled"`
}

// getMaintenance reads through the leader cache on the leader, and straight
// from the durable store on a follower, so every node can answer.
func (h *handlers) getMaintenance(w http.ResponseWriter, r *http.Request) {
	b, err := h.store.LeaderBackend(r.Context())
	if errors.Is(err, election.ErrNotLeader) {
		b, err = h.store.SerializableBackend(), nil
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	on, err := MaintenanceEnabled(r.Context(), b)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, maintenanceState{Enabled: on})
}

func (h *handlers) setMaintenance(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := discardBody(r); err != nil {
			h.fail(w, r, err)
			return
		}
		h.applyMaintenance(w, r, on)
	}
}

// postMaintenance takes {"enabled": bool}, decoded strictly: an unknown
// field, a missing "enabled", a wrong type or trailing data is a 400 and
// changes nothing.
func (h *handlers) postMaintenance(w http.ResponseWriter, r *http.Request) {
	on, err := decodeMaintenance(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.fail(w, r, err)
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.applyMaintenance(w, r, on)
}

const maintenanceBodyHint = `expected a JSON body {"enabled": true} or {"enabled": false}`

func decodeMaintenance(body io.Reader) (bool, error) {
	var req struct {
		Enabled *bool `json:"enabled"`
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return false, err
		}
		if errors.Is(err, io.EOF) {
			return false, errors.New("empty body; " + maintenanceBodyHint)
		}
		return false, fmt.Errorf("invalid body: %s; %s", err.Error(), maintenanceBodyHint)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return false, err
		}
		return false, errors.New("invalid body: data after the JSON object; " + maintenanceBodyHint)
	}
	if req.Enabled == nil {
		return false, errors.New(`invalid body: missing field "enabled"; ` + maintenanceBodyHint)
	}
	return *req.Enabled, nil
}

func (h *handlers) applyMaintenance(w http.ResponseWriter, r *http.Request, on bool) {
	b, err := h.store.LeaderBackend(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	changed, err := SetMaintenance(r.Context(), b, on)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if changed {
		h.log.InfoContext(r.Context(), "maintenance mode changed", "enabled", on, "remote_addr", r.RemoteAddr, "auth", h.authMethod(r))
	}
	writeJSON(w, http.StatusOK, maintenanceState{Enabled: on})
}
