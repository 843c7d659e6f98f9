package ddlload

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

// phaseSpec is one measured phase: calls 0..n-1 of do, taken in order by
// the workers as each finishes its last.
type phaseSpec struct {
	op string // "create table", "drop table": the report's and progress's name
	n  int
	do func(ctx context.Context, i int) error
}

// tally counts a phase's outcomes across the workers.
type tally struct {
	ok, errs atomic.Uint64
	mu       sync.Mutex
	byLabel  map[string]uint64
	first    string
}

func (t *tally) fail(err error) {
	t.errs.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byLabel[labelOf(err)]++
	if t.first == "" {
		t.first = err.Error()
	}
}

// runPhase runs spec with cfg.Clients workers (never more than calls),
// printing a progress line every second, between two scrapes of the
// leader's CPU. Only successful calls enter the latency figures. When ctx
// ends the calls in flight fail and the phase is returned as it stands,
// with the error.
func runPhase(ctx context.Context, cfg Config, c *client, spec phaseSpec) (Phase, error) {
	notLeader0, retries0 := c.notLeader.Load(), c.retries.Load()
	cpu := startCPU(ctx, cfg.Metrics)
	self0, haveSelf := loadgen.SelfCPU()
	t := &tally{byLabel: map[string]uint64{}}
	var next atomic.Int64
	workers := max(min(cfg.Clients, spec.n), 1)
	hists := make([]*loadgen.Histogram, workers)
	begin := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		h := &loadgen.Histogram{}
		hists[w] = h
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= spec.n {
					return
				}
				start := time.Now()
				if err := spec.do(ctx, i); err != nil {
					t.fail(err)
					continue
				}
				h.Record(time.Since(start))
				t.ok.Add(1)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	progress(cfg, spec, t, begin, done)
	elapsed := time.Since(begin)

	var all loadgen.Histogram
	for _, h := range hists {
		all.Merge(h)
	}
	p := Phase{
		Op: spec.op, Requested: spec.n, Succeeded: t.ok.Load(), Errors: t.errs.Load(), ErrorsByCode: t.byLabel, FirstError: t.first,
		NotLeader: c.notLeader.Load() - notLeader0, Retries: c.retries.Load() - retries0,
		Seconds: elapsed.Seconds(), Latency: latencyOf(&all),
	}
	p.PerSec = float64(p.Succeeded) / elapsed.Seconds()
	if self1, ok := loadgen.SelfCPU(); ok && haveSelf {
		s := (self1 - self0).Seconds()
		p.LoadCPU = &LoadCPU{Seconds: s, Cores: s / elapsed.Seconds()}
	}
	if err := ctx.Err(); err != nil {
		return p, fmt.Errorf("%s interrupted after %s: %w", spec.op, elapsed.Round(time.Millisecond), context.Cause(ctx))
	}
	p.ServerCPU = cpu.finish(ctx, p.Succeeded, elapsed)
	return p, nil
}

// progress prints a line every second until done is closed.
func progress(cfg Config, spec phaseSpec, t *tally, begin time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := uint64(0), begin
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			n := t.ok.Load()
			fmt.Fprintf(cfg.Progress, "%s: %3.0fs %7d of %d done %8.1f/s (last second %8.1f) errors %d\n",
				spec.op, now.Sub(begin).Seconds(), n, spec.n, float64(n)/now.Sub(begin).Seconds(),
				float64(n-last)/now.Sub(lastAt).Seconds(), t.errs.Load())
			last, lastAt = n, now
		}
	}
}

const metricIsLeader = "metasrv_is_leader"

// cpuWatch reads the leader's CPU counter before a phase. A failed scrape
// never fails the run; the figure then says why it is missing.
type cpuWatch struct {
	s      *loadgen.Scraper
	before loadgen.Metrics
	err    error
}

func startCPU(ctx context.Context, s *loadgen.Scraper) *cpuWatch {
	w := &cpuWatch{s: s}
	if s != nil {
		w.before, w.err = s.Scrape(ctx, metricIsLeader)
	}
	return w
}

// finish reads the counter again: the CPU seconds between, per 1,000
// successful calls. Nil without a scraper.
func (w *cpuWatch) finish(ctx context.Context, ops uint64, elapsed time.Duration) *loadgen.ServerCPU {
	if w.s == nil {
		return nil
	}
	cpu := &loadgen.ServerCPU{Source: w.s.URL}
	after, err := w.s.Scrape(ctx, metricIsLeader)
	before, now := w.before[loadgen.MetricProcessCPU], after[loadgen.MetricProcessCPU]
	switch {
	case w.err != nil:
		cpu.Error = "before the phase: " + w.err.Error()
	case err != nil:
		cpu.Error = "after the phase: " + err.Error()
	case now < before:
		cpu.Error = fmt.Sprintf("%s went down from %g to %g: the node restarted during the run", loadgen.MetricProcessCPU, before, now)
	default:
		cpu.Measured = true
		cpu.Seconds = now - before
		if ops > 0 {
			cpu.SecondsPer1kOps = cpu.Seconds / float64(ops) * 1000
		}
		cpu.Cores = cpu.Seconds / elapsed.Seconds()
		if v, ok := after[metricIsLeader]; ok && v != 1 {
			cpu.Warning = fmt.Sprintf("the scraped node reports %s %g: it is not the leader, whose CPU this is meant to be", metricIsLeader, v)
		}
	}
	return cpu
}
