package loadgen

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one target's run, as reported.
type Result struct {
	Target string `json:"target"`
	// Round numbers the result's round (from 1) when the targets ran more
	// than once.
	Round      int           `json:"round,omitempty"`
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
	// ServerCPU is the metasrv node's CPU during the run, when scraped.
	ServerCPU *ServerCPU `json:"server_cpu,omitempty"`
	// ClientCPUPer1k is this process's own CPU (the load generator: the Go
	// client or pgx) per 1,000 successful operations during the run, in
	// seconds; absent where the OS does not report it. On a machine the
	// load generator shares with the server it is part of the cost.
	ClientCPUPer1k *float64 `json:"client_cpu_seconds_per_1k_ops,omitempty"`
}

// Spec says how to run one target; W is the state of one worker.
type Spec[W any] struct {
	Target    string
	Clients   int
	Duration  time.Duration
	OpTimeout time.Duration
	// Progress gets a line every second.
	Progress io.Writer
	// NewWorker prepares worker id's state.
	NewWorker func(id int) W
	Op        func(ctx context.Context, w W) error
}

// counters are the figures shared by the workers of one run.
type counters struct {
	stop    atomic.Bool
	ops     atomic.Uint64
	errs    atomic.Uint64
	errOnce sync.Once
	first   error
}

// Run runs spec.Clients workers doing spec.Op back to back for
// spec.Duration, printing a progress line every second, and returns the
// merged figures. Only successful operations count as ops and enter the
// latency histogram. An operation in flight at the end is let finish (within
// OpTimeout) and counted; the elapsed time includes it.
func Run[W any](ctx context.Context, spec Spec[W]) (Result, error) {
	var (
		cnt counters
		wg  sync.WaitGroup
	)
	hists := make([]*Histogram, spec.Clients)
	cpu0, haveCPU := SelfCPU()
	start := time.Now()
	for i := range spec.Clients {
		w := spec.NewWorker(i)
		h := &Histogram{}
		hists[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(ctx, spec, w, h, &cnt)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reportProgress(ctx, spec, start, &cnt)
	cnt.stop.Store(true)
	<-done
	if err := ctx.Err(); err != nil {
		// The target may be "metasrv" itself: the CLI's own "metasrv: "
		// prefix must not read as a doubled one.
		return Result{}, fmt.Errorf("load on %s interrupted after %s: %w", spec.Target, time.Since(start).Round(time.Millisecond), context.Cause(ctx))
	}
	res := result(spec.Target, time.Since(start), hists, &cnt)
	if cpu1, ok := SelfCPU(); ok && haveCPU && res.Ops > 0 {
		per1k := (cpu1 - cpu0).Seconds() / float64(res.Ops) * 1000
		res.ClientCPUPer1k = &per1k
	}
	return res, nil
}

// work is one worker's loop.
func work[W any](ctx context.Context, spec Spec[W], w W, h *Histogram, cnt *counters) {
	for !cnt.stop.Load() && ctx.Err() == nil {
		opCtx, cancel := context.WithTimeout(ctx, spec.OpTimeout)
		t0 := time.Now()
		err := spec.Op(opCtx, w)
		took := time.Since(t0)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			cnt.errs.Add(1)
			cnt.errOnce.Do(func() { cnt.first = err })
			continue
		}
		h.Record(took)
		cnt.ops.Add(1)
	}
}

// reportProgress prints a line every second until the run's duration is up
// or ctx ends.
func reportProgress[W any](ctx context.Context, spec Spec[W], start time.Time, cnt *counters) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(spec.Duration)
	defer end.Stop()
	var lastOps uint64
	lastAt := start
	for {
		select {
		case <-end.C:
			return
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n := cnt.ops.Load()
			fmt.Fprintf(spec.Progress, "%s: %3.0fs %9d ops %10.1f ops/s (last second %10.1f) errors %d\n",
				spec.Target, now.Sub(start).Seconds(), n, float64(n)/now.Sub(start).Seconds(),
				float64(n-lastOps)/now.Sub(lastAt).Seconds(), cnt.errs.Load())
			lastOps, lastAt = n, now
		}
	}
}

// result merges the workers' histograms into the reported figures.
func result(target string, elapsed time.Duration, hists []*Histogram, cnt *counters) Result {
	var all Histogram
	for _, h := range hists {
		all.Merge(h)
	}
	r := Result{
		Target:    target,
		Ops:       all.n,
		Errors:    cnt.errs.Load(),
		Elapsed:   elapsed,
		OpsPerSec: float64(all.n) / elapsed.Seconds(),
		P50:       all.Quantile(0.50),
		P90:       all.Quantile(0.90),
		P99:       all.Quantile(0.99),
		Max:       all.max,
	}
	if cnt.first != nil {
		r.FirstError = cnt.first.Error()
	}
	r.ElapsedSec = elapsed.Seconds()
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = Millis(r.P50), Millis(r.P90), Millis(r.P99), Millis(r.Max)
	return r
}
