package admin

import (
	"cmp"
	"errors"
	"net/http"
	"slices"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

// leader answers the leader's address as plain text, the same address
// `metasrv ctl leader` prints.
func (h *handlers) leader(w http.ResponseWriter, r *http.Request) {
	l, err := h.cluster.Leader(r.Context())
	if err == nil && l.Addr == "" {
		// A leader without an address cannot be reached: the same as none.
		err = election.ErrNoLeader
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(l.Addr))
}

// Member is one entry of GET /admin/members.
type Member struct {
	election.NodeInfo
	IsLeader bool `json:"is_leader"`
}

func (h *handlers) members(w http.ResponseWriter, r *http.Request) {
	nodes, err := h.cluster.Candidates(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	leader, err := h.cluster.Leader(r.Context())
	switch {
	case errors.Is(err, election.ErrNoLeader):
		leader = election.Leader{}
	case err != nil:
		h.fail(w, r, err)
		return
	}
	out := make([]Member, 0, len(nodes)+1)
	seenLeader := false
	for _, n := range nodes {
		isLeader := leader.Addr != "" && n.Addr == leader.Addr
		seenLeader = seenLeader || isLeader
		out = append(out, Member{NodeInfo: n, IsLeader: isLeader})
	}
	// The leader's candidate record can lapse (a slow renewal) while it still
	// leads; it is still a member.
	if !seenLeader && leader.Addr != "" {
		info := leader.Info
		if info.Addr == "" {
			info.Addr = leader.Addr
		}
		out = append(out, Member{NodeInfo: info, IsLeader: true})
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Addr, b.Addr) })
	writeJSON(w, http.StatusOK, out)
}
