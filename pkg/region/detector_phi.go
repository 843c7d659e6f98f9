package region

import (
	"fmt"
	"math"
	"time"
)

// GreptimeDB's failure detector defaults (v1.1.4 failure_detector.rs: the
// options' Default, Akka's reference.conf values, and the first heartbeat
// estimate, a constant there).
const (
	DefaultPhiThreshold             = 8.0
	DefaultMinStdDeviation          = 100 * time.Millisecond
	DefaultAcceptableHeartbeatPause = 10 * time.Second
	DefaultFirstHeartbeatEstimate   = time.Second
)

// MaxDetectorDuration bounds every duration of PhiAccrualOptions. The
// detector keeps sums of squared intervals in int64 milliseconds, as
// GreptimeDB does; an hour keeps them far from overflow, and a failover that
// waits longer than that is not one.
const MaxDetectorDuration = time.Hour

// historySize is how many inter-arrival intervals a detector keeps
// (GreptimeDB's HeartbeatHistory::new(1000)).
const historySize = 1000

// PhiAccrualOptions configure a phi-accrual failure detector (GreptimeDB's
// PhiAccrualFailureDetectorOptions, plus the first heartbeat estimate that
// GreptimeDB fixes at one second).
type PhiAccrualOptions struct {
	// Threshold is the phi from which the monitored node counts as failed.
	// Lower detects sooner, with more false suspicions.
	Threshold float64
	// MinStdDeviation is the least standard deviation phi is computed with,
	// so that very regular heartbeats do not make a small delay look fatal.
	MinStdDeviation time.Duration
	// AcceptableHeartbeatPause is added to the mean interval: a grace for
	// lost or delayed heartbeats before phi rises.
	AcceptableHeartbeatPause time.Duration
	// FirstHeartbeatEstimate seeds the history at the first heartbeat, with
	// a standard deviation of a quarter of it, so a node seen once still
	// fails when it goes silent.
	FirstHeartbeatEstimate time.Duration
}

// DefaultPhiAccrualOptions are GreptimeDB v1.1.4's.
func DefaultPhiAccrualOptions() PhiAccrualOptions {
	return PhiAccrualOptions{
		Threshold:                DefaultPhiThreshold,
		MinStdDeviation:          DefaultMinStdDeviation,
		AcceptableHeartbeatPause: DefaultAcceptableHeartbeatPause,
		FirstHeartbeatEstimate:   DefaultFirstHeartbeatEstimate,
	}
}

// Validate reports the first option out of range. The detector counts whole
// milliseconds, as GreptimeDB does, so a duration must be a whole number of
// them; phi needs a standard deviation above zero, so MinStdDeviation and
// FirstHeartbeatEstimate are at least 1ms.
func (o PhiAccrualOptions) Validate() error {
	if math.IsNaN(o.Threshold) || o.Threshold <= 0 || o.Threshold > math.MaxFloat32 {
		return fmt.Errorf("region: PhiAccrualOptions.Threshold is %v: expected a number greater than 0", o.Threshold)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"MinStdDeviation", o.MinStdDeviation, time.Millisecond},
		{"AcceptableHeartbeatPause", o.AcceptableHeartbeatPause, 0},
		{"FirstHeartbeatEstimate", o.FirstHeartbeatEstimate, time.Millisecond},
	} {
		if d.v < d.min || d.v > MaxDetectorDuration || d.v%time.Millisecond != 0 {
			return fmt.Errorf("region: PhiAccrualOptions.%s is %s: expected whole milliseconds from %s to %s", d.name, d.v, d.min, MaxDetectorDuration)
		}
	}
	return nil
}

// PhiAccrualDetector is the phi-accrual failure detector of one monitored
// node (Hayashibara et al.; GreptimeDB's PhiAccrualFailureDetector, itself
// Akka's). Timestamps are milliseconds on one clock. It is not safe for
// concurrent use: FailureDetector guards its detectors.
type PhiAccrualDetector struct {
	// threshold is held as GreptimeDB holds it, an f32, so that phi is
	// compared with the very same number.
	threshold       float64
	minStdDevMillis float64
	pauseMillis     float64
	firstEstimate   int64
	history         heartbeatHistory
	last            int64
	seen            bool // a heartbeat arrived: last is set
}

// NewPhiAccrualDetector validates o and returns a detector that has seen no
// heartbeat.
func NewPhiAccrualDetector(o PhiAccrualOptions) (*PhiAccrualDetector, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return newPhiAccrual(o, historySize), nil
}

// newPhiAccrual takes valid options; samples caps the history.
func newPhiAccrual(o PhiAccrualOptions, samples int) *PhiAccrualDetector {
	return &PhiAccrualDetector{
		threshold:       float64(float32(o.Threshold)),
		minStdDevMillis: float64(o.MinStdDeviation.Milliseconds()),
		pauseMillis:     float64(o.AcceptableHeartbeatPause.Milliseconds()),
		firstEstimate:   o.FirstHeartbeatEstimate.Milliseconds(),
		history:         heartbeatHistory{max: samples},
	}
}

// Heartbeat records a heartbeat at tsMillis. The first one seeds the history
// with estimate ± estimate/4; a later one adds its interval, unless it comes
// after the node was already judged failed (such a gap would teach the
// detector that long silences are normal) or before the last one (it is
// ignored).
func (d *PhiAccrualDetector) Heartbeat(tsMillis int64) {
	if !d.seen {
		std := d.firstEstimate / 4
		d.history.add(d.firstEstimate - std)
		d.history.add(d.firstEstimate + std)
	} else {
		if tsMillis < d.last {
			return
		}
		if d.Available(tsMillis) {
			d.history.add(tsMillis - d.last)
		}
	}
	d.last, d.seen = tsMillis, true
}

// Available reports whether phi at tsMillis is below the threshold.
func (d *PhiAccrualDetector) Available(tsMillis int64) bool { return d.Phi(tsMillis) < d.threshold }

// Phi is the suspicion level at tsMillis: phi = -log10(1 - F(t)), F the
// normal distribution of the intervals seen, shifted by the acceptable
// pause. A node that has sent no heartbeat is not suspected: 0.
func (d *PhiAccrualDetector) Phi(tsMillis int64) float64 {
	if !d.seen {
		return 0
	}
	std := d.history.stdDeviation()
	// !(std >= min) also catches NaN, the root of a variance that rounding
	// took below zero; Rust's f64::max, which GreptimeDB uses, drops NaN.
	if !(std >= d.minStdDevMillis) {
		std = d.minStdDevMillis
	}
	return phi(tsMillis-d.last, d.history.mean()+d.pauseMillis, std)
}

// Threshold is the phi from which the node counts as failed.
func (d *PhiAccrualDetector) Threshold() float64 { return d.threshold }

// LastHeartbeat is the time of the last heartbeat taken, false before the
// first.
func (d *PhiAccrualDetector) LastHeartbeat() (tsMillis int64, ok bool) { return d.last, d.seen }

// phi is -log10(1 - CDF(timeDiff)) for N(mean, stdDeviation), with the
// logistic approximation of the CDF GreptimeDB and Akka use (error 0.00014
// at ±3.16). The two branches keep precision on either side of the mean.
func phi(timeDiff int64, mean, stdDeviation float64) float64 {
	diff := float64(timeDiff)
	y := (diff - mean) / stdDeviation
	e := math.Exp(-y * (1.5976 + 0.070566*y*y))
	var p float64
	if diff > mean {
		p = -math.Log10(e / (1 + e))
	} else {
		p = -math.Log10(1 - 1/(1+e))
	}
	if p == 0 {
		return 0 // -log10(1) is -0, which metrics would print as "-0"
	}
	return p
}

// heartbeatHistory holds the last max inter-arrival intervals and their
// running sums, in integer milliseconds, as GreptimeDB's HeartbeatHistory.
// It grows up to max and then overwrites the oldest (a ring), so a detector
// of a region seen for a minute does not hold a thousand slots.
type heartbeatHistory struct {
	max       int
	intervals []int64
	oldest    int // index of the oldest interval once the ring is full
	sum       int64
	squareSum int64
}

func (h *heartbeatHistory) add(interval int64) {
	if len(h.intervals) < h.max {
		h.intervals = append(h.intervals, interval)
	} else {
		old := h.intervals[h.oldest]
		h.sum -= old
		h.squareSum -= old * old
		h.intervals[h.oldest] = interval
		h.oldest = (h.oldest + 1) % h.max
	}
	h.sum += interval
	h.squareSum += interval * interval
}

// mean of the intervals: NaN when there are none, which never happens to a
// detector that has seen a heartbeat (the first seeds two).
func (h *heartbeatHistory) mean() float64 { return float64(h.sum) / float64(len(h.intervals)) }

func (h *heartbeatHistory) variance() float64 {
	m := h.mean()
	return float64(h.squareSum)/float64(len(h.intervals)) - m*m
}

func (h *heartbeatHistory) stdDeviation() float64 { return math.Sqrt(h.variance()) }
