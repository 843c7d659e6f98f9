package failoverbench

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"syscall"
	"time"

	"github.com/pgmetasrv/metasrv/internal/proccluster"
	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// roundState is what one round carries from the fault to its checks.
type roundState struct {
	i        int
	old      *proccluster.Node
	key      []byte
	newValue []byte
	t0       time.Time
	res      Round
	at       time.Time // the new leader's first acknowledged write
}

// round injects one fault on the leader and measures what follows.
func (r *run) round(ctx context.Context, i int) (Round, error) {
	s, err := r.prepareRound(ctx, i)
	if err != nil {
		return Round{}, err
	}
	stopPinned := make(chan struct{})
	pinned, err := startPinnedWriters(ctx, s.old, s.key, r.cfg.Lease+3*time.Second, stopPinned)
	if err != nil {
		return Round{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			close(stopPinned)
			pinned.wait()
		}
	}()
	probeKey := fmt.Appendf(nil, "bench/failover/%d/client", i)
	if err := warmClientProbe(ctx, r.probe, probeKey); err != nil {
		return Round{}, err
	}
	s.t0 = time.Now()
	endFault, err := r.inject(ctx, s.old)
	if err != nil {
		return Round{}, err
	}
	if err := r.measure(ctx, s, probeKey); err != nil {
		return Round{}, err
	}
	if err := endFault(ctx); err != nil {
		return s.res, err
	}
	// A deposed leader that is alive again (woken, healed, reconnected) gets
	// a moment to misbehave before the pinned writers stop.
	if f := r.cfg.Fault; f == FaultPause || f == FaultPartition || f == FaultTerminate {
		if err := backoff.Sleep(ctx, time.Second); err != nil {
			return s.res, err
		}
	}
	close(stopPinned)
	stopped = true
	return s.res, r.tally(ctx, s, pinned.wait())
}

// prepareRound brings every node up, finds the leader, and waits for a
// random phase of the followers' campaign loop.
func (r *run) prepareRound(ctx context.Context, i int) (*roundState, error) {
	if err := r.ensureUp(ctx); err != nil {
		return nil, err
	}
	leader, err := r.writableLeader(ctx)
	if err != nil {
		return nil, err
	}
	old := r.cluster.Node(leader.Addr)
	if old == nil {
		return nil, fmt.Errorf("the leader %s is not one of the benchmark's nodes", leader.Addr)
	}
	// Let the followers settle into their campaign loop, and fault at a
	// random phase of it: a fixed pause would line the fault up with the
	// newest node's attempts and flatter the figures.
	if err := backoff.Sleep(ctx, 500*time.Millisecond+mrand.N(r.cfg.Campaign)); err != nil {
		return nil, err
	}
	return &roundState{
		i:        i,
		old:      old,
		key:      fmt.Appendf(nil, "bench/failover/%d", i),
		newValue: fmt.Appendf(nil, "new-%d", i),
		res:      Round{Round: i, OldLeader: leader.Addr, OldTerm: leader.Term},
	}, nil
}

// measure waits for the first write under a newer term, and for the client
// probes, from the fault on.
func (r *run) measure(ctx context.Context, s *roundState, probeKey []byte) error {
	pctx, cancelProbes := context.WithDeadline(ctx, s.t0.Add(r.cfg.RoundTimeout))
	defer cancelProbes()
	probes := startClientProbes(pctx, r.probe, probeKey, s.t0)
	cands := make([]*proccluster.Node, 0, len(r.cluster.Nodes))
	for _, n := range r.cluster.Nodes {
		if n != s.old || r.cfg.Fault == FaultTerminate {
			cands = append(cands, n)
		}
	}
	mctx, cancel := context.WithTimeout(ctx, r.cfg.RoundTimeout)
	at, newLeader, newTerm, merr := firstNewTermWrite(mctx, cands, s.key, s.newValue, s.res.OldTerm)
	cancel()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if merr != nil {
		s.res.TimedOut = true
	} else {
		s.at = at
		s.res.NewLeader, s.res.NewTerm, s.res.Took = newLeader, newTerm, at.Sub(s.t0)
		s.res.TookMs = float64(s.res.Took.Microseconds()) / 1000
	}
	// The probes finish before the fault ends, so what they measure is the
	// client getting past the fault, not the fault going away.
	cw, cr := probes.wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	s.res.ClientWriteMs, s.res.ClientWriteTimedOut = float64(cw.took.Microseconds())/1000, cw.timedOut
	s.res.ClientReadMs, s.res.ClientReadTimedOut = float64(cr.took.Microseconds())/1000, cr.timedOut
	return nil
}

// tally counts the pinned writes sent after the fault and checks fencing.
func (r *run) tally(ctx context.Context, s *roundState, writes []pinnedWrite) error {
	for _, w := range writes {
		if w.sent.Before(s.t0) {
			continue
		}
		if w.acked {
			s.res.PinnedAcked++
		} else {
			s.res.PinnedRefused++
		}
	}
	if s.res.TimedOut {
		return nil
	}
	return r.checkFencing(ctx, &s.res, writes, s.at, s.key, s.newValue)
}

// checkFencing counts the deposed leader's accepted writes after the new
// leader's first one, and checks the key still holds the new leader's value
// unless a later write of a newer term legitimately replaced it.
func (r *run) checkFencing(ctx context.Context, res *Round, writes []pinnedWrite, newAck time.Time, key, newValue []byte) error {
	bad := fencingViolations(writes, res.OldTerm, newAck, newValue)
	res.Violations = len(bad)
	if len(bad) > 0 {
		res.ViolationNote = describeViolation(bad[0], newAck)
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := r.client.Get(gctx, key)
	if err != nil {
		return fmt.Errorf("read back %q: %w", key, err)
	}
	if got == nil {
		return fmt.Errorf("read back %q: the new leader's acknowledged write is missing", key)
	}
	if string(got.Value) == string(newValue) {
		return nil
	}
	for _, w := range writes {
		if string(w.value) != string(got.Value) {
			continue
		}
		if w.acked && w.term > res.OldTerm {
			return nil // the old node won a newer term and wrote under it
		}
		for _, b := range bad {
			if string(b.value) == string(w.value) {
				return nil // already counted
			}
		}
		res.Violations++
		if res.ViolationNote == "" {
			res.ViolationNote = fmt.Sprintf("the key holds %q, written by the deposed leader after the new leader's write (acknowledged: %v)", w.value, w.acked)
		}
		return nil
	}
	return fmt.Errorf("read back %q: holds %q, written by no one in this round", key, got.Value)
}

// inject applies the fault to node n and returns how to end it: what must
// happen after the measurement before the next round.
func (r *run) inject(ctx context.Context, n *proccluster.Node) (func(ctx context.Context) error, error) {
	waitExit := func(ctx context.Context) error { return n.WaitExit(ctx, stopGrace) }
	switch r.cfg.Fault {
	case FaultKill:
		return waitExit, n.Signal(syscall.SIGKILL)
	case FaultResign:
		return waitExit, n.Signal(syscall.SIGTERM)
	case FaultPause:
		return r.pause(n)
	case FaultPartition:
		if err := r.cluster.Partition(n); err != nil {
			return nil, err
		}
		return func(context.Context) error { r.cluster.Heal(n); return nil }, nil
	default: // terminate
		if err := proccluster.TerminateElection(ctx, r.adminDB, n); err != nil {
			return nil, err
		}
		return func(context.Context) error { return nil }, nil
	}
}

// pause freezes n for lease + 1s. The pause ends on its own clock, not
// after the measurement: a takeover that cannot finish while the leader is
// frozen must show up as a long failover, not as a round timeout.
func (r *run) pause(n *proccluster.Node) (func(ctx context.Context) error, error) {
	if err := n.Pause(); err != nil {
		return nil, err
	}
	resumed := make(chan error, 1)
	timer := time.AfterFunc(r.cfg.Lease+time.Second, func() {
		resumed <- n.Resume()
	})
	return func(ctx context.Context) error {
		select {
		case err := <-resumed:
			return err
		case <-ctx.Done():
			if timer.Stop() {
				return n.Resume()
			}
			return <-resumed
		}
	}, nil
}

// ensureUp starts every node that is not running and waits until every
// node is a live candidate.
func (r *run) ensureUp(ctx context.Context) error {
	for _, n := range r.cluster.Nodes {
		if n.Paused() {
			if err := n.Resume(); err != nil {
				return err
			}
		}
		if !n.Running() {
			if err := r.startNode(ctx, n); err != nil {
				return err
			}
		}
	}
	return until(ctx, 60*time.Second, "every node to register as a candidate", func(ctx context.Context) error {
		ms, err := r.client.Members(ctx)
		if err == nil && len(ms) != len(r.cluster.Nodes) {
			err = fmt.Errorf("%d of %d nodes are members", len(ms), len(r.cluster.Nodes))
		}
		return err
	})
}

// writableLeader waits for a leader that accepts a write, and returns it.
func (r *run) writableLeader(ctx context.Context) (client.Leader, error) {
	var l client.Leader
	err := until(ctx, 60*time.Second, "a leader that accepts writes", func(ctx context.Context) error {
		before, err := r.client.Leader(ctx)
		if err != nil {
			return err
		}
		if _, err := r.client.Put(ctx, kv.PutRequest{Key: []byte("bench/failover/ready"), Value: []byte("ok")}); err != nil {
			return err
		}
		after, err := r.client.Leader(ctx)
		if err != nil {
			return err
		}
		if before != after || after.Addr == "" {
			return fmt.Errorf("leadership moved from %v to %v", before, after)
		}
		l = after
		return nil
	})
	return l, err
}

// until retries fn (each try bounded by 5s) until it succeeds or timeout.
func until(ctx context.Context, timeout time.Duration, what string, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s: %w", timeout, what, err)
		}
		if err := backoff.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}
