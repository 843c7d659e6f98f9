package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolStater is what the pool collector reads; *pgxpool.Pool satisfies it.
type PoolStater interface {
	Stat() *pgxpool.Stat
}

// PoolCollector exports a pgx pool's statistics, read at scrape time, as
// metasrv_pg_pool_* with a "pool" label naming the pool.
type PoolCollector struct {
	name string
	pool PoolStater

	total, idle, acquired, constructing, maxConns *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires       *prometheus.Desc
	emptyAcquireWait, canceledAcquires, newConns  *prometheus.Desc
	lifetimeDestroys, idleDestroys                *prometheus.Desc
}

var _ prometheus.Collector = (*PoolCollector)(nil)

// NewPoolCollector reads pool's statistics under the label pool=name (for
// example "kv"). Register it on the node's registry.
func NewPoolCollector(name string, pool PoolStater) *PoolCollector {
	labels := prometheus.Labels{"pool": name}
	desc := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc("metasrv_pg_pool_"+metric, help, nil, labels)
	}
	return &PoolCollector{
		name:             name,
		pool:             pool,
		total:            desc("conns", "Connections in the pool: idle, acquired and being opened."),
		idle:             desc("idle_conns", "Idle connections in the pool."),
		acquired:         desc("acquired_conns", "Connections currently acquired by requests."),
		constructing:     desc("constructing_conns", "Connections being opened."),
		maxConns:         desc("max_conns", "The pool's maximum size (postgres.max_conns)."),
		acquires:         desc("acquires_total", "Successful connection acquisitions."),
		acquireSeconds:   desc("acquire_duration_seconds_total", "Total time spent acquiring connections."),
		emptyAcquires:    desc("empty_acquires_total", "Acquisitions that had to wait because no connection was idle."),
		emptyAcquireWait: desc("empty_acquire_wait_seconds_total", "Total time acquisitions waited for a connection to become free."),
		canceledAcquires: desc("canceled_acquires_total", "Acquisitions abandoned because their context ended."),
		newConns:         desc("new_conns_total", "Connections opened."),
		lifetimeDestroys: desc("max_lifetime_destroys_total", "Connections closed for reaching postgres.max_conn_lifetime."),
		idleDestroys:     desc("max_idle_destroys_total", "Connections closed for reaching postgres.max_conn_idle_time."),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.total, c.idle, c.acquired, c.constructing, c.maxConns,
		c.acquires, c.acquireSeconds, c.emptyAcquires, c.emptyAcquireWait,
		c.canceledAcquires, c.newConns, c.lifetimeDestroys, c.idleDestroys,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.total, float64(s.TotalConns()))
	gauge(c.idle, float64(s.IdleConns()))
	gauge(c.acquired, float64(s.AcquiredConns()))
	gauge(c.constructing, float64(s.ConstructingConns()))
	gauge(c.maxConns, float64(s.MaxConns()))
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.emptyAcquireWait, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount()))
	counter(c.newConns, float64(s.NewConnsCount()))
	counter(c.lifetimeDestroys, float64(s.MaxLifetimeDestroyCount()))
	counter(c.idleDestroys, float64(s.MaxIdleDestroyCount()))
}
