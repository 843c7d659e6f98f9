package region

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// detectorCollector reads the detector at scrape time, so a datanode whose
// regions are no longer watched leaves the output with them.
type detectorCollector struct {
	d         *FailureDetector
	phi       *prometheus.Desc
	detectors *prometheus.Desc
}

// RegisterMetrics exports, read at each scrape on the detector's clock,
// metasrv_region_failure_detector_phi (per datanode, the highest phi of its
// watched regions; +Inf once it is far past the threshold) and
// metasrv_region_failure_detectors (the watched pairs of the running term).
func (d *FailureDetector) RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(&detectorCollector{
		d: d,
		phi: prometheus.NewDesc("metasrv_region_failure_detector_phi",
			"Phi-accrual suspicion of each datanode: the highest phi of its watched regions (failed from failure_detector.threshold).",
			[]string{"datanode_id"}, nil),
		detectors: prometheus.NewDesc("metasrv_region_failure_detectors",
			"Region failure detectors, one per (datanode, region), of the term this node leads.", nil, nil),
	})
}

func (c *detectorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.phi
	ch <- c.detectors
}

func (c *detectorCollector) Collect(ch chan<- prometheus.Metric) {
	for id, p := range c.d.Phi(c.d.now()) {
		c.emit(ch, c.phi, p, strconv.FormatUint(id, 10))
	}
	c.emit(ch, c.detectors, float64(c.d.Len()))
}

func (c *detectorCollector) emit(ch chan<- prometheus.Metric, desc *prometheus.Desc, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	ch <- m
}
