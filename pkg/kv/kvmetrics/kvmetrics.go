// Package kvmetrics times the operations of a kv.Backend for Prometheus:
// metasrv_kv_op_duration_seconds{backend, op, result}.
package kvmetrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// Operation names, the op label.
const (
	OpRange         = "range"
	OpPut           = "put"
	OpBatchGet      = "batch_get"
	OpBatchPut      = "batch_put"
	OpBatchDelete   = "batch_delete"
	OpDeleteRange   = "delete_range"
	OpCompareAndPut = "compare_and_put"
	OpTxn           = "txn"
)

var ops = []string{OpRange, OpPut, OpBatchGet, OpBatchPut, OpBatchDelete, OpDeleteRange, OpCompareAndPut, OpTxn}

// Results, the result label. A CompareAndPut or Txn whose compare did not
// hold is "ok": the backend answered.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Buckets span a memory_store call (microseconds) to a PostgreSQL
// transaction retried through a failover (seconds).
var Buckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics is the latency histogram shared by every wrapped backend.
type Metrics struct {
	hist *prometheus.HistogramVec
}

// New registers metasrv_kv_op_duration_seconds on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "metasrv_kv_op_duration_seconds",
		Help:    "Latency of key-value backend operations, by backend, operation and result (ok or error).",
		Buckets: Buckets,
	}, []string{"backend", "op", "result"})
	if err := reg.Register(hist); err != nil {
		return nil, fmt.Errorf("kvmetrics: register: %w", err)
	}
	return &Metrics{hist: hist}, nil
}

// Wrap returns b timing every operation under backend=b.Name(). If b is a
// kv.ResettableBackend, so is the result. Wrap the innermost store (the
// PostgreSQL or memory backend) to time the storage itself; wrap an outer
// layer to time what callers see.
func (m *Metrics) Wrap(b kv.Backend) kv.Backend {
	w := &timed{inner: b, obs: make(map[string][2]prometheus.Observer, len(ops))}
	name := b.Name()
	for _, op := range ops {
		// Resolved once: the label lookup stays off the request path, and
		// every series exists (at zero) from the first scrape.
		w.obs[op] = [2]prometheus.Observer{
			m.hist.WithLabelValues(name, op, ResultOK),
			m.hist.WithLabelValues(name, op, ResultError),
		}
	}
	if r, ok := b.(kv.ResettableBackend); ok {
		return &timedResettable{timed: w, reset: r}
	}
	return w
}

type timed struct {
	inner kv.Backend
	obs   map[string][2]prometheus.Observer
}

type timedResettable struct {
	*timed
	reset kv.ResettableBackend
}

func (t *timedResettable) Reset() { t.reset.Reset() }

func (t *timed) observe(op string, start time.Time, err error) {
	i := 0
	if err != nil {
		i = 1
	}
	t.obs[op][i].Observe(time.Since(start).Seconds())
}

func (t *timed) Name() string { return t.inner.Name() }

func (t *timed) Range(ctx context.Context, req kv.RangeRequest) (kv.RangeResponse, error) {
	start := time.Now()
	resp, err := t.inner.Range(ctx, req)
	t.observe(OpRange, start, err)
	return resp, err
}

func (t *timed) Put(ctx context.Context, req kv.PutRequest) (kv.PutResponse, error) {
	start := time.Now()
	resp, err := t.inner.Put(ctx, req)
	t.observe(OpPut, start, err)
	return resp, err
}

func (t *timed) BatchGet(ctx context.Context, req kv.BatchGetRequest) (kv.BatchGetResponse, error) {
	start := time.Now()
	resp, err := t.inner.BatchGet(ctx, req)
	t.observe(OpBatchGet, start, err)
	return resp, err
}

func (t *timed) BatchPut(ctx context.Context, req kv.BatchPutRequest) (kv.BatchPutResponse, error) {
	start := time.Now()
	resp, err := t.inner.BatchPut(ctx, req)
	t.observe(OpBatchPut, start, err)
	return resp, err
}

func (t *timed) BatchDelete(ctx context.Context, req kv.BatchDeleteRequest) (kv.BatchDeleteResponse, error) {
	start := time.Now()
	resp, err := t.inner.BatchDelete(ctx, req)
	t.observe(OpBatchDelete, start, err)
	return resp, err
}

func (t *timed) DeleteRange(ctx context.Context, req kv.DeleteRangeRequest) (kv.DeleteRangeResponse, error) {
	start := time.Now()
	resp, err := t.inner.DeleteRange(ctx, req)
	t.observe(OpDeleteRange, start, err)
	return resp, err
}

func (t *timed) CompareAndPut(ctx context.Context, req kv.CompareAndPutRequest) (kv.CompareAndPutResponse, error) {
	start := time.Now()
	resp, err := t.inner.CompareAndPut(ctx, req)
	t.observe(OpCompareAndPut, start, err)
	return resp, err
}

func (t *timed) Txn(ctx context.Context, req kv.TxnRequest) (kv.TxnResponse, error) {
	start := time.Now()
	resp, err := t.inner.Txn(ctx, req)
	t.observe(OpTxn, start, err)
	return resp, err
}
