package greptimeapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/election"
)

const (
	// leaderFresh is how long one read of the election answers AskLeader
	// on this node: after a failover every GreptimeDB node asks at once,
	// and without it each ask is a query of the election.
	leaderFresh = 100 * time.Millisecond
	// noLeaderWait bounds how long AskLeader waits for a leader to be
	// elected before answering that there is none. GreptimeDB's client
	// waits out its whole ask timeout (3s) when no peer names a leader, so
	// answering a moment later with the new leader is much faster.
	noLeaderWait = 2 * time.Second
	// noLeaderPoll is how often that wait looks again.
	noLeaderPoll = 50 * time.Millisecond
)

// leaderLookup shares reads of the election between concurrent AskLeader
// calls: one read at a time, its answer reused for leaderFresh.
type leaderLookup struct {
	elector Elector

	mu       sync.Mutex
	at       time.Time
	addr     string
	err      error
	inflight chan struct{} // closed when the read in flight ends
}

// get is the leader's address the election records ("" with
// election.ErrNoLeader when none), at most leaderFresh old.
func (l *leaderLookup) get(ctx context.Context) (string, error) {
	for {
		l.mu.Lock()
		if !l.at.IsZero() && time.Since(l.at) < leaderFresh {
			addr, err := l.addr, l.err
			l.mu.Unlock()
			return addr, err
		}
		if wait := l.inflight; wait != nil {
			l.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		done := make(chan struct{})
		l.inflight = done
		l.mu.Unlock()

		leader, err := l.elector.Leader(ctx)
		l.mu.Lock()
		l.inflight = nil
		close(done)
		if ctx.Err() == nil { // a read cut short by its caller says nothing
			l.at, l.addr, l.err = time.Now(), leader.Addr, err
		}
		l.mu.Unlock()
		return leader.Addr, err
	}
}

// leaderAddr answers AskLeader: this node while it trusts its leadership,
// else the leader the election records; while there is none it waits up to
// noLeaderWait (and never past the caller's deadline) for one.
func (s *heartbeatService) leaderAddr(ctx context.Context) (string, error) {
	wait, cancel := context.WithTimeout(ctx, noLeaderWait)
	defer cancel()
	if d, ok := ctx.Deadline(); ok {
		// Leave the caller time to hear the answer.
		wait, cancel = context.WithDeadline(wait, d.Add(-time.Until(d)/4))
		defer cancel()
	}
	tick := time.NewTicker(noLeaderPoll)
	defer tick.Stop()
	for {
		h := s.core.HeaderInfo()
		if h.Term != 0 {
			return h.NodeAddr, nil
		}
		addr, err := s.leaders.get(ctx)
		switch {
		case err == nil && addr != h.NodeAddr:
			return addr, nil
		case err != nil && !errors.Is(err, election.ErrNoLeader):
			return "", err
		}
		// No leader, or the record names this node, which no longer trusts
		// its lease: nobody leads yet.
		select {
		case <-tick.C:
		case <-wait.Done():
			return "", election.ErrNoLeader
		}
	}
}
