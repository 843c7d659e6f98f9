package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/election"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// MaintenanceKey is the stored maintenance switch: maintenance mode is on
// while the key exists, GreptimeDB's convention, so the flag survives leader
// changes and restarts. Its value records when it was turned on.
const MaintenanceKey = "__maintenance"

// MaintenanceEnabled reads the maintenance switch from b.
func MaintenanceEnabled(ctx context.Context, b kv.Backend) (bool, error) {
	e, err := kv.Get(ctx, b, []byte(MaintenanceKey))
	if err != nil {
		return false, fmt.Errorf("admin: read maintenance switch: %w", err)
	}
	return e != nil, nil
}

// SetMaintenance turns the maintenance switch on or off in b (the leader's
// store). changed is false when it already was in that position; an existing
// switch keeps its original time.
func SetMaintenance(ctx context.Context, b kv.Backend, on bool, now time.Time) (changed bool, err error) {
	key := []byte(MaintenanceKey)
	if on {
		value, err := json.Marshal(struct {
			EnabledAt time.Time `json:"enabled_at"`
		}{now.UTC()})
		if err != nil {
			return false, fmt.Errorf("admin: encode maintenance switch: %w", err)
		}
		// An empty Expect means "absent": set only if not already on.
		resp, err := b.CompareAndPut(ctx, kv.CompareAndPutRequest{Key: key, Value: value})
		if err != nil {
			return false, fmt.Errorf("admin: enable maintenance: %w", err)
		}
		return resp.Success, nil
	}
	resp, err := b.BatchDelete(ctx, kv.BatchDeleteRequest{Keys: [][]byte{key}, PrevKv: true})
	if err != nil {
		return false, fmt.Errorf("admin: disable maintenance: %w", err)
	}
	return len(resp.PrevKvs) > 0, nil
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
	changed, err := SetMaintenance(r.Context(), b, on, time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if changed {
		h.log.InfoContext(r.Context(), "maintenance mode changed", "enabled", on, "remote_addr", r.RemoteAddr, "auth", h.authMethod(r))
	}
	writeJSON(w, http.StatusOK, maintenanceState{Enabled: on})
}
