package metasrv

import (
	"context"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/server/rpcheader"
)

// leaderHintRefresh is how often a node re-reads who leads, so the header of
// every response can name the leader without a query per call.
const leaderHintRefresh = time.Second

// HeaderInfo answers, from memory, the header every gRPC response carries:
// this node, the leader it last saw and the term it leads (0 if none).
func (m *Metasrv) HeaderInfo() rpcheader.Info {
	info := rpcheader.Info{NodeAddr: m.addr(), Term: m.elector.Term()}
	if p := m.leaderHint.Load(); p != nil {
		info.LeaderAddr = *p
	}
	if info.Term != 0 {
		info.LeaderAddr = info.NodeAddr
	}
	return info
}

// LeaderHint is the leader address this node last saw ("" when unknown).
func (m *Metasrv) LeaderHint() string { return m.HeaderInfo().LeaderAddr }

func (m *Metasrv) refreshLeaderHint(ctx context.Context) {
	l, err := m.elector.Leader(ctx)
	addr := ""
	if err == nil {
		addr = l.Addr
	}
	m.leaderHint.Store(&addr)
}

// watchLeader keeps the leader hint fresh until ctx ends.
func (m *Metasrv) watchLeader(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(leaderHintRefresh)
	defer ticker.Stop()
	for {
		m.refreshLeaderHint(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
