package heartbeat

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	metapb "github.com/pgmetasrv/metasrv/pkg/api/greptime/v1/meta"
	"github.com/pgmetasrv/metasrv/pkg/instruction"
)

// roles are the roles metrics are broken down by.
func roles() []metapb.Role {
	return []metapb.Role{metapb.Role_DATANODE, metapb.Role_FRONTEND, metapb.Role_FLOWNODE}
}

// metrics count the heartbeats this node answered, by role and outcome
// (served or not_leader), and the mailbox's messages, by instruction and
// outcome. The counters are resolved once, so a heartbeat or a message pays
// no label lookup.
type metrics struct {
	served, refused map[metapb.Role]prometheus.Counter
	vec             *prometheus.CounterVec

	mailbox      map[instruction.Kind]*mailboxCounters
	mailboxVec   *prometheus.CounterVec
	replyDropped prometheus.Counter
}

// mailboxCounters are one instruction's outcomes: sent (every message
// queued for a node's stream), then for Send replied or timed_out, and
// failed (not sent, or Send's other errors).
type mailboxCounters struct{ sent, replied, timedOut, failed prometheus.Counter }

func newMetrics() *metrics {
	m := &metrics{
		mailbox: make(map[instruction.Kind]*mailboxCounters),
		mailboxVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metasrv_mailbox_messages_total",
			Help: "GreptimeDB mailbox messages of this leader, by instruction and outcome (sent: queued for a node's stream; replied, timed_out: of those sent with a reply awaited; failed).",
		}, []string{"instruction", "outcome"}),
		replyDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metasrv_mailbox_replies_dropped_total",
			Help: "Mailbox replies no message waited for (one-way, too late, or from another node), dropped.",
		}),
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
	for _, k := range instruction.Kinds() {
		m.mailbox[k] = &mailboxCounters{
			sent:     m.mailboxVec.WithLabelValues(string(k), "sent"),
			replied:  m.mailboxVec.WithLabelValues(string(k), "replied"),
			timedOut: m.mailboxVec.WithLabelValues(string(k), "timed_out"),
			failed:   m.mailboxVec.WithLabelValues(string(k), "failed"),
		}
	}
	return m
}

// mailboxOf is kind's counters; every Kind has them (instruction.Kinds).
func (m *metrics) mailboxOf(k instruction.Kind) *mailboxCounters { return m.mailbox[k] }

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

// RegisterMetrics exports the heartbeat and mailbox counters and, read at scrape time,
// the open sessions of the running term by role
// (metasrv_heartbeat_sessions).
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	errs := []error{reg.Register(s.metrics.vec), reg.Register(s.metrics.mailboxVec), reg.Register(s.metrics.replyDropped)}
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
