package failover

import "github.com/prometheus/client_golang/prometheus"

// The outcomes metasrv_region_failovers_total counts, per region.
const (
	// OutcomeSubmitted: a migration of the region was submitted.
	OutcomeSubmitted = "submitted"
	// OutcomeRefused: the migration manager refused it (the region is
	// migrating already, has moved, or the submission failed).
	OutcomeRefused = "refused"
	// OutcomeNoTarget: the selector found no live datanode to move it to;
	// it is tried again on the next tick, and counted again.
	OutcomeNoTarget = "no_target"
)

// metrics count the failovers the supervisor attempts, resolved once per
// outcome.
type metrics struct {
	vec                          *prometheus.CounterVec
	submitted, refused, noTarget prometheus.Counter
}

func newMetrics() *metrics {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metasrv_region_failovers_total",
		Help: "Failovers of failed regions the region supervisor attempted, one per region and attempt, by outcome (submitted, refused, no_target).",
	}, []string{"outcome"})
	return &metrics{
		vec:       vec,
		submitted: vec.WithLabelValues(OutcomeSubmitted),
		refused:   vec.WithLabelValues(OutcomeRefused),
		noTarget:  vec.WithLabelValues(OutcomeNoTarget),
	}
}

// RegisterMetrics exports metasrv_region_failovers_total on reg.
func (s *Supervisor) RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(s.metrics.vec)
}
