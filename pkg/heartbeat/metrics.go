package heartbeat

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
)

// roles are the roles metrics are broken down by.
func roles() []metapb.Role {
	return []metapb.Role{metapb.Role_DATANODE, metapb.Role_FRONTEND, metapb.Role_FLOWNODE}
}

// metrics count the heartbeats this node answered, by role and outcome
// (served or not_leader). The counters are resolved once, so a heartbeat
// pays no label lookup.
type metrics struct {
	served, refused map[metapb.Role]prometheus.Counter
	vec             *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		served:  make(map[metapb.Role]prometheus.Counter),
		refused: make(map[metapb.Role]prometheus.Counter),
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metasrv_heartbeats_total",
			Help: "GreptimeDB heartbeats answered, by node role and outcome (served, not_leader).",
		}, []string{"role", "outcome"}),
	}
	for _, r := range roles() {
		m.served[r] = m.vec.WithLabelValues(roleLabel(r), "served")
		m.refused[r] = m.vec.WithLabelValues(roleLabel(r), "not_leader")
	}
	return m
}

func roleLabel(r metapb.Role) string {
	switch r {
	case metapb.Role_FRONTEND:
		return "frontend"
	case metapb.Role_FLOWNODE:
		return "flownode"
	default:
		return "datanode"
	}
}

func (m *metrics) answered(r metapb.Role, notLeader bool) {
	c := m.served[r]
	if notLeader {
		c = m.refused[r]
	}
	if c != nil {
		c.Inc()
	}
}

// RegisterMetrics exports the heartbeat counters and, read at scrape time,
// the open sessions of the running term by role
// (metasrv_heartbeat_sessions).
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	errs := []error{reg.Register(s.metrics.vec)}
	for _, r := range roles() {
		errs = append(errs, reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "metasrv_heartbeat_sessions",
			Help:        "Open GreptimeDB heartbeat sessions of the term this node leads, by node role.",
			ConstLabels: prometheus.Labels{"role": roleLabel(r)},
		}, func() float64 { return float64(s.sessionCount(r)) })))
	}
	return errors.Join(errs...)
}

func (s *Service) sessionCount(r metapb.Role) int {
	ts := s.current()
	if ts == nil {
		return 0
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for id := range ts.sessions {
		if id.Role == r {
			n++
		}
	}
	return n
}
