package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgmetasrv/metasrv/pkg/procedure"
)

// ProcedureStatser is what the procedure collector reads;
// *procedure.Manager satisfies it.
type ProcedureStatser interface {
	Stats() procedure.Stats
}

// ProcedureCollector exports the procedure manager's counts, read at scrape
// time.
type ProcedureCollector struct {
	m ProcedureStatser

	active, finished, waiting, unloadable *prometheus.Desc
	running, paused, fenced, stalled      *prometheus.Desc
}

var _ prometheus.Collector = (*ProcedureCollector)(nil)

// NewProcedureCollector reads m's Stats at every scrape.
func NewProcedureCollector(m ProcedureStatser) *ProcedureCollector {
	return &ProcedureCollector{
		m:          m,
		active:     prometheus.NewDesc("metasrv_procedures", "Unfinished procedures this leader drives, by state.", []string{"state"}, nil),
		finished:   prometheus.NewDesc("metasrv_procedures_finished_total", "Procedures that reached a final state on this node, by state.", []string{"state"}, nil),
		waiting:    prometheus.NewDesc("metasrv_procedures_waiting_for_locks", "Active procedures waiting for their key locks.", nil, nil),
		unloadable: prometheus.NewDesc("metasrv_procedures_unloadable", "Unfinished stored procedures this leader could not resume (unknown type or unreadable state).", nil, nil),
		running:    prometheus.NewDesc("metasrv_procedure_manager_running", "1 while the procedure manager runs (on the leader), else 0.", nil, nil),
		paused:     prometheus.NewDesc("metasrv_procedure_manager_paused", "1 while the running procedure manager is paused, else 0.", nil, nil),
		fenced:     prometheus.NewDesc("metasrv_procedures_fenced_total", "Procedures stopped because the store refused this node's writes (a deposed leader).", nil, nil),
		stalled:    prometheus.NewDesc("metasrv_procedures_stalled_total", "Procedures given up because a state change could not be stored; the next leader resumes them.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ProcedureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.finished, c.waiting, c.unloadable, c.running, c.paused, c.fenced, c.stalled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ProcedureCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Stats()
	// Every state is exported, at zero when empty, so dashboards and alerts
	// see a series from the first scrape.
	for _, st := range procedure.States {
		if st.Final() {
			ch <- prometheus.MustNewConstMetric(c.finished, prometheus.CounterValue, float64(s.Finished[st]), string(st))
		} else {
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(s.Active[st]), string(st))
		}
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.WaitingForLocks))
	ch <- prometheus.MustNewConstMetric(c.unloadable, prometheus.GaugeValue, float64(s.Unloadable))
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, boolFloat(s.Running))
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, boolFloat(s.Paused))
	ch <- prometheus.MustNewConstMetric(c.fenced, prometheus.CounterValue, float64(s.Fenced))
	ch <- prometheus.MustNewConstMetric(c.stalled, prometheus.CounterValue, float64(s.Stalled))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
