package regionfailoverbench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/pkg/region"
)

// ErrTimeout is a wait of the run that ran out of time: a datanode without
// a lease, or a round whose regions were not all granted Leader elsewhere.
var ErrTimeout = errors.New("regionfailoverbench: timed out")

// Report is one run's figures. Every duration is in seconds from the
// victim's last heartbeat sent.
type Report struct {
	// Leader is the metasrv the DDL went to (the last one, if it changed).
	Leader    string `json:"leader"`
	Catalog   string `json:"catalog"`
	Schema    string `json:"schema"`
	Rounds    int    `json:"rounds"`
	Regions   int    `json:"regions"`
	Datanodes int    `json:"datanodes"`
	// HeartbeatIntervalMs is the interval the metasrv's handshake gave the
	// datanodes.
	HeartbeatIntervalMs uint64   `json:"heartbeat_interval_ms"`
	Detector            Detector `json:"failure_detector"`
	// Measured are the rounds carried through, in order.
	Measured []Round    `json:"measured"`
	Summary  Summary    `json:"summary"`
	Leases   LeaseCheck `json:"lease_check"`
	// DropDatabaseError is why the database could not be dropped at the end.
	DropDatabaseError string `json:"drop_database_error,omitempty"`
}

// Detector is the failure_detector options the floors were computed with.
type Detector struct {
	Threshold                  float64 `json:"threshold"`
	MinStdDeviationMs          int64   `json:"min_std_deviation_ms"`
	AcceptableHeartbeatPauseMs int64   `json:"acceptable_heartbeat_pause_ms"`
	FirstHeartbeatEstimateMs   int64   `json:"first_heartbeat_estimate_ms"`
}

func detectorOf(o region.PhiAccrualOptions) Detector {
	return Detector{Threshold: o.Threshold, MinStdDeviationMs: o.MinStdDeviation.Milliseconds(),
		AcceptableHeartbeatPauseMs: o.AcceptableHeartbeatPause.Milliseconds(), FirstHeartbeatEstimateMs: o.FirstHeartbeatEstimate.Milliseconds()}
}

// Round is one victim's failover.
type Round struct {
	Round   int    `json:"round"`
	TableID uint32 `json:"table_id"`
	Regions int    `json:"regions"`
	// Heartbeats is how many heartbeats the victim sent after the table
	// was made (the history its regions' detectors had).
	Heartbeats    int       `json:"heartbeats"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Floor is when the detector's phi first reached its threshold.
	Floor float64 `json:"floor_seconds"`
	// Detected is the first OpenRegions a live datanode executed.
	Detected float64 `json:"detected_seconds"`
	// UpgradedMax is the last UpgradeRegions executed.
	UpgradedMax float64 `json:"upgraded_max_seconds"`
	// LeaderMedian and LeaderMax are over the regions' first Leader
	// grants on a live datanode.
	LeaderMedian float64 `json:"leader_median_seconds"`
	LeaderMax    float64 `json:"leader_max_seconds"`
}

// Summary is each figure's median and p99 over the rounds.
type Summary struct {
	// LeaderMax is the figure: the time for all of a victim's regions to
	// be writable elsewhere.
	LeaderMax    Stat `json:"leader_max"`
	LeaderMedian Stat `json:"leader_median"`
	Detected     Stat `json:"detected"`
	Floor        Stat `json:"floor"`
	// Move is LeaderMax minus Floor: what the failover took once the
	// detector could say the victim failed.
	Move Stat `json:"move"`
	// UpgradedMax is the last UpgradeRegions executed, when GreptimeDB's
	// datanode makes the last region writable (its catch-up sets the
	// region writable; the next lease only renews it). UpgradedMove is it
	// minus Floor.
	UpgradedMax  Stat `json:"upgraded_max"`
	UpgradedMove Stat `json:"upgraded_move"`
}

// Stat is a median and a 99th percentile (nearest rank: with fewer than
// 100 rounds, the worst one), in seconds.
type Stat struct {
	Median float64 `json:"median_seconds"`
	P99    float64 `json:"p99_seconds"`
}

// LeaseCheck is the check of every Leader grant of the run.
type LeaseCheck struct {
	LeaseSeconds uint64 `json:"lease_seconds"`
	LeaderGrants uint64 `json:"leader_grants"`
	// Overlaps counts grants made while another datanode held the region;
	// Problems describes the first of them.
	Overlaps int      `json:"overlaps"`
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether no region was ever Leader on two datanodes at once.
func (c LeaseCheck) OK() bool { return c.Overlaps == 0 }

// Failure is the reason the run must count as failed: a region granted
// Leader on two datanodes at once.
func (r Report) Failure() error {
	if !r.Leases.OK() {
		return fmt.Errorf("regionfailoverbench: %d leader grants overlapped another datanode's: %s", r.Leases.Overlaps, r.Leases.Problems[0])
	}
	return nil
}

func summarize(rounds []Round) Summary {
	of := func(f func(Round) float64) Stat {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = f(r)
		}
		return Stat{Median: loadgen.Median(v), P99: percentile(v, 0.99)}
	}
	return Summary{
		LeaderMax:    of(func(r Round) float64 { return r.LeaderMax }),
		LeaderMedian: of(func(r Round) float64 { return r.LeaderMedian }),
		Detected:     of(func(r Round) float64 { return r.Detected }),
		Floor:        of(func(r Round) float64 { return r.Floor }),
		Move:         of(func(r Round) float64 { return r.LeaderMax - r.Floor }),
		UpgradedMax:  of(func(r Round) float64 { return r.UpgradedMax }),
		UpgradedMove: of(func(r Round) float64 { return r.UpgradedMax - r.Floor }),
	}
}

// percentile is the nearest-rank p-th value; 0 for none.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// measure turns what a round saw into its figures, from last.
func measure(w *roundWatch, last time.Time) Round {
	since := func(t time.Time) float64 { return t.Sub(last).Seconds() }
	var leader []float64
	for _, at := range w.leader {
		leader = append(leader, since(at))
	}
	out := Round{Regions: len(w.regions), LastHeartbeat: last, LeaderMedian: loadgen.Median(leader), LeaderMax: slices.Max(leader)}
	first := true
	for _, at := range w.opened {
		if d := since(at); first || d < out.Detected {
			out.Detected, first = d, false
		}
	}
	for _, at := range w.upgraded {
		out.UpgradedMax = max(out.UpgradedMax, since(at))
	}
	return out
}
