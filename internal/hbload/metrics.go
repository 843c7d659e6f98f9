package hbload

import (
	"context"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

const (
	metricRSS      = "process_resident_memory_bytes"
	metricIsLeader = "metasrv_is_leader"
)

// sample is one scrape of the leader: the process counters, and
// metasrv_is_leader when the node exports it (GreptimeDB's own metasrv does
// not).
type sample struct {
	cpu       float64
	rss       float64
	hasRSS    bool
	isLeader  float64
	hasLeader bool
}

func sampleOf(m loadgen.Metrics) sample {
	rss, hasRSS := m[metricRSS]
	leader, hasLeader := m[metricIsLeader]
	return sample{cpu: m[loadgen.MetricProcessCPU], rss: rss, hasRSS: hasRSS, isLeader: leader, hasLeader: hasLeader}
}

// scrape reads the leader's figures through s.
func scrape(ctx context.Context, s *loadgen.Scraper) (sample, error) {
	m, err := s.Scrape(ctx, metricRSS, metricIsLeader)
	if err != nil {
		return sample{}, err
	}
	return sampleOf(m), nil
}
