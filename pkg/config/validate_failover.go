package config

import (
	"math"
	"time"
)

// validateFailover checks the failure detector's options (whether or not
// failover is on: nothing starts on a bad config) and refuses failover on a
// local WAL unless it is explicitly allowed, as GreptimeDB's metasrv builder
// does.
func validateFailover(o Options) error {
	if o.RegionFailureDetectorInitializationDelay < 0 {
		return invalid("region_failure_detector_initialization_delay", "must be 0s or more, got %s",
			formatDuration(o.RegionFailureDetectorInitializationDelay))
	}
	f := o.FailureDetector
	if math.IsNaN(f.Threshold) || f.Threshold <= 0 || f.Threshold > math.MaxFloat32 {
		return invalid("failure_detector.threshold", "must be a number greater than 0, got %v", f.Threshold)
	}
	// The detector counts whole milliseconds, and phi needs a standard
	// deviation above zero; MaxDetectorDuration keeps its integer
	// sums from overflowing.
	for _, d := range []struct {
		key string
		v   time.Duration
		min time.Duration
	}{
		{"failure_detector.min_std_deviation", f.MinStdDeviation, time.Millisecond},
		{"failure_detector.acceptable_heartbeat_pause", f.AcceptableHeartbeatPause, 0},
		{"failure_detector.first_heartbeat_estimate", f.FirstHeartbeatEstimate, time.Millisecond},
	} {
		if d.v < d.min || d.v > MaxDetectorDuration || d.v%time.Millisecond != 0 {
			return invalid(d.key, "must be whole milliseconds from %s to %s, got %s",
				formatDuration(d.min), formatDuration(MaxDetectorDuration), formatDuration(d.v))
		}
	}
	if o.EnableRegionFailover && !o.RemoteWAL() && !o.AllowRegionFailoverOnLocalWAL {
		return invalid("enable_region_failover", "region failover is not supported on a local WAL, and this metasrv's WAL "+
			"is always local (raft_engine: the wal table is not supported); set allow_region_failover_on_local_wal = true "+
			"to enable it anyway, accepting that a failover loses what the failed datanode had not flushed")
	}
	return nil
}

// MaxDetectorDuration bounds every failure_detector duration: pkg/region's
// detector computes in milliseconds, and refuses longer ones (its
// MaxDetectorDuration; pkg/node's tests check the two agree).
const MaxDetectorDuration = time.Hour
