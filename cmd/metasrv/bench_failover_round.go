package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"syscall"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/backoff"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// stopGrace bounds a graceful shutdown (resign) before the node is killed.
const stopGrace = 30 * time.Second

// round injects one fault on the leader and measures what follows.
func (r *failoverRun) round(ctx context.Context, i int) (failoverRound, error) {
	f, c := r.f, r.cluster
	if err := r.ensureUp(ctx); err != nil {
		return failoverRound{}, err
	}
	leader, err := r.writableLeader(ctx)
	if err != nil {
		return failoverRound{}, err
	}
	old := c.node(leader.Addr)
	if old == nil {
		return failoverRound{}, fmt.Errorf("the leader %s is not one of the benchmark's nodes", leader.Addr)
	}
	// Let the followers settle into their campaign loop, and fault at a
	// random phase of it: a fixed pause would line the fault up with the
	// newest node's attempts and flatter the figures.
	if err := backoff.Sleep(ctx, 500*time.Millisecond+mrand.N(f.campaign)); err != nil {
		return failoverRound{}, err
	}

	key := fmt.Appendf(nil, "bench/failover/%d", i)
	newValue := fmt.Appendf(nil, "new-%d", i)
	stopPinned := make(chan struct{})
	pinned := startPinnedWriters(ctx, old, key, f.lease+3*time.Second, stopPinned)
	stopped := false
	defer func() {
		if !stopped {
			close(stopPinned)
			pinned.wait()
		}
	}()

	probeKey := fmt.Appendf(nil, "bench/failover/%d/client", i)
	if err := warmClientProbe(ctx, r.probe, probeKey); err != nil {
		return failoverRound{}, err
	}

	t0 := time.Now()
	endFault, err := r.inject(ctx, old)
	if err != nil {
		return failoverRound{}, err
	}
	pctx, cancelProbes := context.WithDeadline(ctx, t0.Add(f.roundTimeout))
	defer cancelProbes()
	probes := startClientProbes(pctx, r.probe, probeKey, t0)
	cands := make([]*benchNode, 0, len(c.nodes))
	for _, n := range c.nodes {
		if n != old || f.fault == faultTerminate {
			cands = append(cands, n)
		}
	}
	mctx, cancel := context.WithTimeout(ctx, f.roundTimeout)
	at, newLeader, newTerm, merr := firstNewTermWrite(mctx, cands, key, newValue, leader.Term)
	cancel()
	if ctx.Err() != nil {
		return failoverRound{}, context.Cause(ctx)
	}
	res := failoverRound{Round: i, OldLeader: leader.Addr, OldTerm: leader.Term}
	if merr != nil {
		res.TimedOut = true
	} else {
		res.NewLeader, res.NewTerm, res.Took = newLeader, newTerm, at.Sub(t0)
		res.TookMs = float64(res.Took.Microseconds()) / 1000
	}
	// The probes finish before the fault ends, so what they measure is the
	// client getting past the fault, not the fault going away.
	cw, cr := probes.wait()
	if ctx.Err() != nil {
		return failoverRound{}, context.Cause(ctx)
	}
	res.ClientWriteMs, res.ClientWriteTimedOut = float64(cw.took.Microseconds())/1000, cw.timedOut
	res.ClientReadMs, res.ClientReadTimedOut = float64(cr.took.Microseconds())/1000, cr.timedOut
	if err := endFault(ctx, t0); err != nil {
		return res, err
	}
	// A deposed leader that is alive again (woken, healed, reconnected) gets
	// a moment to misbehave before the pinned writers stop.
	if f.fault == faultPause || f.fault == faultPartition || f.fault == faultTerminate {
		if err := backoff.Sleep(ctx, time.Second); err != nil {
			return res, err
		}
	}
	close(stopPinned)
	stopped = true
	writes := pinned.wait()
	for _, w := range writes {
		if w.sent.Before(t0) {
			continue
		}
		if w.acked {
			res.PinnedAcked++
		} else {
			res.PinnedRefused++
		}
	}
	if !res.TimedOut {
		if err := r.checkFencing(ctx, &res, writes, at, key, newValue); err != nil {
			return res, err
		}
	}
	return res, nil
}

// checkFencing counts the deposed leader's accepted writes after the new
// leader's first one, and checks the key still holds the new leader's value
// unless a later write of a newer term legitimately replaced it.
func (r *failoverRun) checkFencing(ctx context.Context, res *failoverRound, writes []pinnedWrite, newAck time.Time, key, newValue []byte) error {
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
func (r *failoverRun) inject(ctx context.Context, n *benchNode) (func(ctx context.Context, t0 time.Time) error, error) {
	f := r.f
	switch f.fault {
	case faultKill:
		if err := n.signal(syscall.SIGKILL); err != nil {
			return nil, err
		}
		return func(ctx context.Context, _ time.Time) error { return n.waitExit(ctx, stopGrace) }, nil
	case faultResign:
		if err := n.signal(syscall.SIGTERM); err != nil {
			return nil, err
		}
		return func(ctx context.Context, _ time.Time) error { return n.waitExit(ctx, stopGrace) }, nil
	case faultPause:
		if err := n.signal(syscall.SIGSTOP); err != nil {
			return nil, err
		}
		// The pause ends on its own clock, not after the measurement: a
		// takeover that cannot finish while the leader is frozen must show
		// up as a long failover, not as a round timeout.
		resumed := make(chan error, 1)
		timer := time.AfterFunc(f.lease+time.Second, func() {
			resumed <- n.signal(syscall.SIGCONT)
		})
		return func(ctx context.Context, _ time.Time) error {
			select {
			case err := <-resumed:
				return err
			case <-ctx.Done():
				if timer.Stop() {
					return n.signal(syscall.SIGCONT)
				}
				return <-resumed
			}
		}, nil
	case faultPartition:
		n.proxy.Partition()
		return func(context.Context, time.Time) error { n.proxy.Heal(); return nil }, nil
	default: // terminate
		var killed int
		err := r.adminDB.QueryRow(ctx,
			"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
			"metasrv-election-"+n.name()).Scan(&killed)
		if err != nil {
			return nil, fmt.Errorf("pg_terminate_backend of %s's election session: %w", n.name(), err)
		}
		if killed == 0 {
			return nil, fmt.Errorf("no election session of the leader %s found in pg_stat_activity", n.name())
		}
		return func(context.Context, time.Time) error { return nil }, nil
	}
}

// ensureUp starts every node that is not running and waits until every
// node is a live candidate.
func (r *failoverRun) ensureUp(ctx context.Context) error {
	c := r.cluster
	for _, n := range c.nodes {
		if n.stopped {
			if err := n.signal(syscall.SIGCONT); err != nil {
				return err
			}
		}
		if !n.running() {
			if err := c.start(ctx, n); err != nil {
				return err
			}
		}
	}
	return r.until(ctx, 60*time.Second, "every node to register as a candidate", func(ctx context.Context) error {
		ms, err := r.client.Members(ctx)
		if err == nil && len(ms) != len(c.nodes) {
			err = fmt.Errorf("%d of %d nodes are members", len(ms), len(c.nodes))
		}
		return err
	})
}

// writableLeader waits for a leader that accepts a write, and returns it.
func (r *failoverRun) writableLeader(ctx context.Context) (client.Leader, error) {
	var l client.Leader
	err := r.until(ctx, 60*time.Second, "a leader that accepts writes", func(ctx context.Context) error {
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
func (r *failoverRun) until(ctx context.Context, timeout time.Duration, what string, fn func(ctx context.Context) error) error {
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

func (c *benchCluster) node(addr string) *benchNode {
	for _, n := range c.nodes {
		if n.grpcAddr == addr {
			return n
		}
	}
	return nil
}
