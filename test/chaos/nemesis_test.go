package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// faultKind is one thing the nemesis does to the current leader.
type faultKind string

const (
	faultKill      faultKind = "kill"       // SIGKILL the leader, restart it a little later
	faultPause     faultKind = "pause"      // SIGSTOP the leader for longer than the lease, then SIGCONT
	faultPartition faultKind = "partition"  // blackhole the leader's PostgreSQL traffic, then heal
	faultPGRestart faultKind = "pg-restart" // restart PostgreSQL (fast shutdown)
)

var allFaults = []faultKind{faultKill, faultPause, faultPartition, faultPGRestart}

// nemesis injects faults one at a time, each on the leader of the moment,
// waiting for the cluster to be whole again (every node serving, a leader
// accepting writes) before the next.
type nemesis struct {
	c     *chaosCluster
	h     *history
	rng   *rand.Rand
	lease time.Duration

	counts    map[faultKind]int
	recovered []time.Duration // from the end of each fault to a writable leader
}

func newNemesis(c *chaosCluster, h *history, lease time.Duration, seed uint64) *nemesis {
	return &nemesis{c: c, h: h, lease: lease, rng: rand.New(rand.NewPCG(seed, 7)), counts: map[faultKind]int{}}
}

// between returns a random duration in [lo, hi).
func (n *nemesis) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
}

// inject runs one fault on the current leader and waits for recovery.
// It runs on the test goroutine: the PostgreSQL harness fails through t.
func (n *nemesis) inject(t *testing.T, kind faultKind) {
	t.Helper()
	leader, term := n.c.waitHealthy(t, "the previous fault")
	start := n.h.now()
	var what string
	switch kind {
	case faultKill:
		down := n.between(0, 2*n.lease)
		if err := leader.kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(down)
		if err := leader.start(); err != nil {
			t.Fatal(err)
		}
		what = fmt.Sprintf("SIGKILL %s, restarted after %s", leader, down.Round(time.Millisecond))
	case faultPause:
		hold := n.between(2*n.lease, 4*n.lease)
		if err := leader.pause(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(hold)
		if err := leader.resume(); err != nil {
			t.Fatal(err)
		}
		what = fmt.Sprintf("SIGSTOP %s for %s", leader, hold.Round(time.Millisecond))
	case faultPartition:
		hold := n.between(2*n.lease, 5*n.lease)
		n.c.proxies[leader.idx].Partition()
		time.Sleep(hold)
		if err := n.c.heal(t.Context(), leader.idx); err != nil {
			t.Fatal(err)
		}
		what = fmt.Sprintf("partition %s from PostgreSQL for %s", leader, hold.Round(time.Millisecond))
	case faultPGRestart:
		down := n.between(0, n.lease)
		n.c.pg.Stop(t)
		time.Sleep(down)
		n.c.pg.Start(t)
		what = fmt.Sprintf("restart PostgreSQL, down %s (leader was %s)", down.Round(time.Millisecond), leader)
	default:
		t.Fatalf("unknown fault %q", kind)
	}
	end := n.h.now()
	n.counts[kind]++
	n.h.annotate(start, end, "nemesis", fmt.Sprintf("%s (term %d)", what, term))
	healedAt := time.Now()
	newLeader, newTerm := n.c.waitHealthy(t, what)
	took := time.Since(healedAt)
	n.recovered = append(n.recovered, took)
	t.Logf("fault %d: %s (term %d); writable again %s later, leader %s term %d",
		n.total(), what, term, took.Round(time.Millisecond), newLeader, newTerm)
	// Let the clients run on a whole cluster for a while, so that the
	// history also holds quiet stretches between faults.
	time.Sleep(n.between(time.Second, 3*time.Second))
}

func (n *nemesis) total() int {
	sum := 0
	for _, c := range n.counts {
		sum += c
	}
	return sum
}

// plan is the sequence of faults: the short version runs each kind a
// fixed number of times; the long one keeps going until its deadline, in a
// fresh random order per round.
func (n *nemesis) run(t *testing.T, rounds int, until time.Time) {
	t.Helper()
	for round := 0; ; round++ {
		if rounds > 0 && round >= rounds {
			return
		}
		order := append([]faultKind(nil), allFaults...)
		n.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			if rounds == 0 && time.Now().After(until) {
				return
			}
			n.inject(t, k)
		}
	}
}

func (n *nemesis) summary() string {
	var parts []string
	for _, k := range allFaults {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n.counts[k]))
	}
	var maxRec, sum time.Duration
	for _, d := range n.recovered {
		sum += d
		maxRec = max(maxRec, d)
	}
	avg := time.Duration(0)
	if len(n.recovered) > 0 {
		avg = sum / time.Duration(len(n.recovered))
	}
	return fmt.Sprintf("%d faults (%s); back to a writable leader: mean %s, max %s",
		n.total(), strings.Join(parts, " "), avg.Round(time.Millisecond), maxRec.Round(time.Millisecond))
}
