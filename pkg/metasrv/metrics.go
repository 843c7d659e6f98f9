package metasrv

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics exports the node's leadership and leader-cache figures on
// reg. The values are read at scrape time, so nothing on the hot path pays for
// them.
func (m *Metasrv) RegisterMetrics(reg prometheus.Registerer) error {
	leader := func() float64 {
		if m.State() != Follower && m.elector.TrustedTerm() != 0 {
			return 1
		}
		return 0
	}
	collectors := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "metasrv_is_leader",
			Help: "1 while this node leads and trusts its lease, else 0.",
		}, leader),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "metasrv_state",
			Help: "Node state: 0 follower, 1 leader with the cache loading, 2 leader ready.",
		}, func() float64 { return float64(m.State()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "metasrv_election_term",
			Help: "The election term this node leads, 0 while following.",
		}, func() float64 { return float64(m.elector.Term()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "metasrv_leader_changes_total",
			Help: "Leadership changes (elected and step-down) seen by this node.",
		}, func() float64 { return float64(m.elector.Changes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "metasrv_leader_cache_keys",
			Help: "Keys held by the leader cache.",
		}, func() float64 { k, _ := m.CacheStats(); return float64(k) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "metasrv_leader_cache_bytes",
			Help: "Bytes of keys and values held by the leader cache.",
		}, func() float64 { _, b := m.CacheStats(); return float64(b) }),
	}
	var errs []error
	for _, c := range collectors {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
