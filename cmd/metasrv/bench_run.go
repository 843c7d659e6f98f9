package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// benchWorker is the state of one load goroutine.
type benchWorker struct {
	id int
	r  *rand.Rand
	// versions holds, for cas and txn, the version of each key this worker
	// owns (the keys i with i % clients == id), so its compares always hold
	// and the benchmark measures the operation, not contention.
	versions []uint32
}

// loadResult is one target's run, as reported.
type loadResult struct {
	Target     string        `json:"target"`
	Ops        uint64        `json:"ops"`
	Errors     uint64        `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"-"`
	ElapsedSec float64       `json:"elapsed_seconds"`
	OpsPerSec  float64       `json:"ops_per_sec"`
	P50        time.Duration `json:"-"`
	P90        time.Duration `json:"-"`
	P99        time.Duration `json:"-"`
	Max        time.Duration `json:"-"`
	P50Ms      float64       `json:"p50_ms"`
	P90Ms      float64       `json:"p90_ms"`
	P99Ms      float64       `json:"p99_ms"`
	MaxMs      float64       `json:"max_ms"`
}

// loadSpec says how to run one target.
type loadSpec struct {
	target    string
	clients   int
	duration  time.Duration
	opTimeout time.Duration
	progress  io.Writer
	// newWorker prepares worker id's state.
	newWorker func(id int) *benchWorker
	op        func(ctx context.Context, w *benchWorker) error
}

// runLoad runs spec.clients workers doing spec.op back to back for
// spec.duration, printing a progress line every second, and returns the
// merged figures. Only successful operations count as ops and enter the
// latency histogram. An operation in flight at the end is let finish (within
// opTimeout) and counted; the elapsed time includes it.
func runLoad(ctx context.Context, spec loadSpec) (loadResult, error) {
	var (
		stop    atomic.Bool
		ops     atomic.Uint64
		errs    atomic.Uint64
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	hists := make([]*histogram, spec.clients)
	start := time.Now()
	for i := range spec.clients {
		w := spec.newWorker(i)
		h := &histogram{}
		hists[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				opCtx, cancel := context.WithTimeout(ctx, spec.opTimeout)
				t0 := time.Now()
				err := spec.op(opCtx, w)
				took := time.Since(t0)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					errOnce.Do(func() { first = err })
					continue
				}
				h.record(took)
				ops.Add(1)
			}
		}()
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(spec.duration)
	defer end.Stop()
	var lastOps uint64
	lastAt := start
loop:
	for {
		select {
		case <-end.C:
			break loop
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			n := ops.Load()
			fmt.Fprintf(spec.progress, "%s: %3.0fs %9d ops %10.1f ops/s (last second %10.1f) errors %d\n",
				spec.target, now.Sub(start).Seconds(), n, float64(n)/now.Sub(start).Seconds(),
				float64(n-lastOps)/now.Sub(lastAt).Seconds(), errs.Load())
			lastOps, lastAt = n, now
		}
	}
	stop.Store(true)
	<-done
	if err := ctx.Err(); err != nil {
		// The target may be "metasrv" itself: run's own "metasrv: " prefix
		// must not read as a doubled one.
		return loadResult{}, fmt.Errorf("load on %s interrupted after %s: %w", spec.target, time.Since(start).Round(time.Millisecond), context.Cause(ctx))
	}
	elapsed := time.Since(start)

	var all histogram
	for _, h := range hists {
		all.merge(h)
	}
	r := loadResult{
		Target:    spec.target,
		Ops:       all.n,
		Errors:    errs.Load(),
		Elapsed:   elapsed,
		OpsPerSec: float64(all.n) / elapsed.Seconds(),
		P50:       all.quantile(0.50),
		P90:       all.quantile(0.90),
		P99:       all.quantile(0.99),
		Max:       all.max,
	}
	if first != nil {
		r.FirstError = first.Error()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.ElapsedSec = elapsed.Seconds()
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max)
	return r, nil
}
