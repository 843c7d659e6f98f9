package admin

import (
	"net/http"

	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// ProcedureStatus is the body of GET /admin/procedure-manager/status.
type ProcedureStatus struct {
	// Paused is the stored pause switch.
	Paused bool `json:"paused"`
	// Active counts the unfinished procedures by state (running, retrying,
	// rolling_back); every such state is present.
	Active map[procedure.State]int `json:"active"`
	// WaitingForLocks counts active procedures waiting for their key locks.
	WaitingForLocks int `json:"waiting_for_locks"`
	// Unloadable counts stored unfinished procedures this leader could not resume.
	Unloadable int `json:"unloadable"`
	// Finished counts procedures that reached each final state on this node.
	Finished map[procedure.State]uint64 `json:"finished"`
	Fenced   uint64                     `json:"fenced"`
	Stalled  uint64                     `json:"stalled"`
}

// procedureStatus answers on the leader only, where the manager runs; a
// follower refuses with 503 naming the leader.
func (h *handlers) procedureStatus(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	paused, err := h.procs.Paused(ctx)
	if err != nil {
		h.fail(w, r, h.leaderOnly(ctx, err))
		return
	}
	s := h.procs.Stats()
	out := ProcedureStatus{
		Paused:          paused,
		Active:          map[procedure.State]int{},
		WaitingForLocks: s.WaitingForLocks,
		Unloadable:      s.Unloadable,
		Finished:        map[procedure.State]uint64{},
		Fenced:          s.Fenced,
		Stalled:         s.Stalled,
	}
	for _, st := range procedure.States {
		if st.Final() {
			out.Finished[st] = s.Finished[st]
		} else {
			out.Active[st] = s.Active[st]
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handlers) pauseProcedures(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := discardBody(r); err != nil {
			h.fail(w, r, err)
			return
		}
		op := h.procs.Resume
		if pause {
			op = h.procs.Pause
		}
		if err := op(ctx); err != nil {
			h.fail(w, r, h.leaderOnly(ctx, err))
			return
		}
		h.log.InfoContext(ctx, "procedure manager switch changed", "paused", pause, "remote_addr", r.RemoteAddr, "auth", h.authMethod(r))
		writeJSON(w, http.StatusOK, struct {
			Paused bool `json:"paused"`
		}{pause})
	}
}
