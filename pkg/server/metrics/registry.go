// Package metrics holds metasrv's Prometheus instrumentation that is not
// owned by one component: the registry every metric goes to, the gRPC
// request interceptors, and the collectors that read the PostgreSQL pool and
// the procedure manager at scrape time.
//
// Nothing here registers on Prometheus' default registry: every constructor
// takes the Registerer to use, so tests and several nodes in one process
// never share state.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// LatencyBuckets span what a metadata request takes: from an answer out of
// the leader cache (tens of microseconds) to a PostgreSQL transaction stuck
// behind a failover (seconds).
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors, the base every metasrv node exports.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
