package metasrv

import (
	"context"
	"time"
)

// leaderHintRefresh is how often a node re-reads who leads, so the header of
// every response can name the leader without a query per call.
const leaderHintRefresh = time.Second

// HeaderInfo is what the answering node knows of the leadership when it
// answers: the API layers (package server's metasrvapi, and the GreptimeDB
// one) put it in the header of every response, each in its own wire form.
type HeaderInfo struct {
	// NodeAddr is this node's advertised address (grpc.server_addr).
	NodeAddr string
	// LeaderAddr is the leader's advertised address; empty when unknown.
	LeaderAddr string
	// Term is LeaderAddr's election term; 0 when unknown.
	Term int64
}

// HeaderInfo answers, from memory, the header every gRPC response carries:
// this node, the leader it last saw and the term it leads (0 if none).
//
// The term is the election's view at the moment of the call, not when the
// node last heard of a change: it is reported only while the elector trusts
// this node's leadership (IsLeader, inside the lease's trust window). A leader
// that was frozen (SIGSTOP, a long GC pause) and resumes after a newer term
// began answers with term 0 and without naming itself, even before its
// leadership watcher has processed the step-down, so no client adopts it as
// the leader from such a reply.
func (m *Metasrv) HeaderInfo() HeaderInfo {
	info := HeaderInfo{NodeAddr: m.addr(), Term: m.trustedTerm()}
	if p := m.leaderHint.Load(); p != nil {
		info.LeaderAddr = *p
	}
	switch {
	case info.Term != 0:
		info.LeaderAddr = info.NodeAddr
	case info.LeaderAddr == info.NodeAddr:
		// A hint naming this node while it does not trust its leadership
		// is stale: it names nobody known to lead.
		info.LeaderAddr = ""
	}
	return info
}

// trustedTerm is the term this node leads if it trusts its leadership right
// now, else 0: the election's one record, read once.
func (m *Metasrv) trustedTerm() int64 { return m.elector.TrustedTerm() }

// ServingLeader reports, at the moment of the call, whether this node would
// serve a leader-only request: it is LeaderReady, its cache is loaded, and
// the elector still trusts the term (the same test as LeaderBackend). Health
// checks of the leader service ask it per answer, so a node whose trust
// window lapsed never answers SERVING, whatever state it last recorded.
func (m *Metasrv) ServingLeader() bool {
	t := m.current.Load()
	return t != nil && State(t.phase.Load()) == LeaderReady && t.cache.ready.Load() && m.servesTerm(t)
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
