package admin

import (
	"net/http"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/migration"
)

// Migrations lists the region migrations the leader runs;
// *migration.Manager satisfies it.
type Migrations interface {
	Running() []migration.Info
}

// Migration is one entry of GET /admin/migrations.
type Migration struct {
	// ProcedureID is empty for a migration resumed from an earlier term
	// that has not run a step on this leader yet.
	ProcedureID   string           `json:"procedure_id"`
	RegionID      uint64           `json:"region_id"`
	TableID       uint32           `json:"table_id"`
	RegionNumber  uint32           `json:"region_number"`
	From          greptimekey.Peer `json:"from_peer"`
	To            greptimekey.Peer `json:"to_peer"`
	TriggerReason string           `json:"trigger_reason"`
	TimeoutMillis int64            `json:"timeout_ms"`
	// Step is the step the migration is at: migration_start,
	// open_candidate_region, flush_leader_region, update_metadata_downgrade,
	// downgrade_leader_region, upgrade_candidate_region,
	// update_metadata_upgrade or close_downgraded_region.
	Step  string    `json:"step"`
	Since time.Time `json:"since"`
}

// migrations answers GET /admin/migrations: {"migrations":[...]}, the
// region migrations this node runs as leader, by region id. A follower
// refuses with the not-leader answer naming the leader.
func (h *handlers) migrations(m Migrations) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if m == nil {
			writeError(w, http.StatusNotImplemented, "this server runs no region migrations")
			return
		}
		if _, err := h.store.LeaderBackend(r.Context()); err != nil {
			h.fail(w, r, err)
			return
		}
		out := []Migration{}
		for _, in := range m.Running() {
			out = append(out, Migration{
				ProcedureID: string(in.ProcedureID), RegionID: in.RegionID,
				TableID: greptimekey.RegionTableID(in.RegionID), RegionNumber: greptimekey.RegionNumber(in.RegionID),
				From: in.From, To: in.To, TriggerReason: string(in.Reason), TimeoutMillis: in.Timeout.Milliseconds(),
				Step: in.Step, Since: in.Since.UTC(),
			})
		}
		writeJSON(w, http.StatusOK, map[string][]Migration{"migrations": out})
	}
}
