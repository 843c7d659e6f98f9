// Package memlimit paces the Go runtime's collector to the live heap: a
// leader whose cache holds most of its memory does not grow to twice that
// cache between collections, and a small heap is not collected over and
// over.
//
// With the default GOGC=100 the runtime lets the heap double before it
// collects: a leader caching 1M keys (a 435 MB live heap for 282 MB of keys
// and values) peaked at 886 MB while clients wrote to it. A Governor polls
// the live heap (runtime/metrics "/gc/heap/live:bytes", as of the last
// collection; read after every collection and once per Interval) and sets
// the soft memory limit to live + max(MinHeadroom, live x HeadroomRatio):
// the collector then runs when the heap grows by the headroom instead of by
// the whole live heap.
//
// The other end is the small heap under load. A leader of a small cluster
// has a live heap of 5-20 MB and allocates several KB per request (gRPC's
// own buffers and metadata, most of it): GOGC=100 collected it 13-60 times
// a second under load, and the collector took 10-25% of its CPU. So the
// Governor also measures the allocation rate (runtime/metrics
// "/gc/heap/allocs:bytes", once per Interval) and raises GOGC until the
// heap may grow by what is allocated in GCPacing (250 ms), at most by
// MaxGCHeadroom (32 MiB) and never by less than the live heap (GOGC=100):
// GOGC = 100 x min(rate x GCPacing, MaxGCHeadroom) / live. An idle process
// allocates little and keeps GOGC=100; a busy one with a large heap too.
//
// # Failure modes
//
//   - The limit is soft: the runtime exceeds it rather than fail, and caps
//     the collector at about half the CPU when the live heap nears it. The
//     limit follows the live heap each poll, so it is never set below it.
//   - An operator's own GOMEMLIMIT or GOGC wins: Start leaves the runtime
//     alone when the environment sets either. GOGC=100 thus brings back
//     the runtime's default (fewer collections, twice the live heap).
//   - The price of the limit is CPU: each collection marks the whole live
//     heap, and they come more often once the limit binds. A leader caching
//     1M keys peaked at 0.58 GB instead of 0.87-0.89 GB under
//     compare-and-put load (docs/benchmarks.md). MinHeadroom is large
//     (192 MiB) so that a growing heap, a cache being loaded by a new
//     leader, is not collected over and over: with 64 MiB a 1M-key load
//     took 5 s instead of 2.3-2.8.
//   - The price of the pacing is memory: a busy process with a small heap
//     holds up to MaxGCHeadroom (32 MiB) of garbage, where GOGC=100 held at
//     most its live heap. The rate is measured over the last Interval, so
//     a burst runs its first second at the GOGC before it, and the second
//     after a burst keeps the burst's GOGC.
//   - Stop restores the limit and the GOGC found at Start.
//
// The setting is process-wide: one Governor per process (the metasrv start
// command runs it), never one per node.
package memlimit

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMinHeadroom   = 192 << 20
	DefaultHeadroomRatio = 0.3
	DefaultMaxGCHeadroom = 32 << 20
	DefaultGCPacing      = 250 * time.Millisecond
	DefaultInterval      = time.Second
)

// GOGC bounds: the runtime's default, and the most the pacing sets.
const (
	baseGCPercent = 100
	maxGCPercent  = 10000
)

// The runtime metrics the Governor follows: the live heap as of the last
// collection, and the bytes allocated so far.
const (
	liveHeap   = "/gc/heap/live:bytes"
	heapAllocs = "/gc/heap/allocs:bytes"
)

// Options configure a Governor; zero values take the defaults.
type Options struct {
	Logger        *slog.Logger
	MinHeadroom   int64
	HeadroomRatio float64
	// GCPacing is how long a process allocating steadily should run between
	// two collections, and MaxGCHeadroom the most GOGC may thus let the
	// heap grow by; GOGC is never under 100.
	GCPacing      time.Duration
	MaxGCHeadroom int64
	Interval      time.Duration
	// Getenv reads the environment (os.Getenv when nil); tests set it.
	Getenv func(string) string
}

// Governor is the process's memory-limit keeper: Start, then Stop.
type Governor struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	stop  context.CancelFunc
	done  chan struct{}
	prev  int64
	limit int64
	// prevGC and gcPercent are the GOGC found at Start and the one set.
	prevGC    int
	gcPercent int
	// rate is the allocation rate (bytes/s) over the last poll interval,
	// measured from allocs bytes allocated by at.
	rate   float64
	allocs uint64
	at     time.Time
}

// New checks o.
func New(o Options) (*Governor, error) {
	if o.MinHeadroom < 0 || o.HeadroomRatio < 0 || o.MaxGCHeadroom < 0 || o.GCPacing < 0 || o.Interval < 0 {
		return nil, errors.New("memlimit: MinHeadroom, HeadroomRatio, MaxGCHeadroom, GCPacing and Interval must not be negative")
	}
	if o.MinHeadroom == 0 {
		o.MinHeadroom = DefaultMinHeadroom
	}
	if o.HeadroomRatio == 0 {
		o.HeadroomRatio = DefaultHeadroomRatio
	}
	if o.MaxGCHeadroom == 0 {
		o.MaxGCHeadroom = DefaultMaxGCHeadroom
	}
	if o.GCPacing == 0 {
		o.GCPacing = DefaultGCPacing
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Governor{opts: o, log: o.Logger.With("component", "memlimit")}, nil
}

// Limit is the soft memory limit for a live heap of live bytes.
func (o Options) Limit(live uint64) int64 {
	l := float64(live)
	head := max(float64(o.MinHeadroom), l*o.HeadroomRatio)
	if l+head >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(l + head)
}

// GCPercent is the GOGC for a live heap of live bytes allocated into at
// rate bytes per second: what lets the heap grow by GCPacing's allocation
// (at most MaxGCHeadroom) between collections, and never less than the
// runtime's default 100.
func (o Options) GCPercent(live uint64, rate float64) int {
	head := min(rate*o.GCPacing.Seconds(), float64(o.MaxGCHeadroom))
	p := float64(baseGCPercent) * head / float64(max(live, 1))
	return int(min(max(p, baseGCPercent), maxGCPercent))
}

// Start sets the limit and GOGC from the current live heap and keeps them
// following it; it returns at once. With GOMEMLIMIT or GOGC in the
// environment it does nothing (the operator chose).
func (g *Governor) Start(ctx context.Context) error {
	g.Stop()
	if v := g.opts.Getenv("GOMEMLIMIT"); v != "" {
		g.log.Info("GOMEMLIMIT is set: the memory limit is left to it", "gomemlimit", v)
		return nil
	}
	if v := g.opts.Getenv("GOGC"); v != "" {
		g.log.Info("GOGC is set: the memory limit is left as it is", "gogc", v)
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	g.mu.Lock()
	g.stop, g.done = cancel, done
	g.prev = debug.SetMemoryLimit(-1)
	g.prevGC = debug.SetGCPercent(baseGCPercent)
	g.gcPercent = baseGCPercent
	g.allocs, g.at, g.rate = readAllocs(), time.Now(), 0
	g.mu.Unlock()
	g.apply()
	g.afterNextGC()
	go func() {
		defer close(done)
		t := time.NewTicker(g.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.measureRate()
				g.apply()
			}
		}
	}()
	g.log.Info("memory limit and GOGC follow the live heap", "min_headroom_bytes", g.opts.MinHeadroom, "headroom_ratio", g.opts.HeadroomRatio,
		"gc_pacing", g.opts.GCPacing, "max_gc_headroom_bytes", g.opts.MaxGCHeadroom)
	return nil
}

// afterNextGC has the next collection apply the limit, and arm the one
// after it: between two polls a growing heap (a cache being loaded) would
// otherwise meet a stale limit, and collect over and over until the poll
// (it doubled a 1M-key cache load, 2.8 to 5.3-6.1 s, when the limit moved
// once a second).
func (g *Governor) afterNextGC() {
	runtime.AddCleanup(new(gcMark), func(g *Governor) {
		if g.running() {
			g.apply()
			g.afterNextGC()
		}
	}, g)
}

// gcMark is a fresh allocation whose cleanup runs after the collection
// that frees it. It must not be zero-sized (those may share one address).
type gcMark struct{ _ byte }

func (g *Governor) running() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stop != nil
}

// readMetric is the runtime metric name, false where this runtime does not
// have it.
func readMetric(name string) (uint64, bool) {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return s[0].Value.Uint64(), true
}

// readAllocs is the bytes allocated so far, 0 where the runtime does not
// say.
func readAllocs() uint64 {
	n, _ := readMetric(heapAllocs)
	return n
}

// measureRate updates the allocation rate from the bytes allocated since
// the last poll.
func (g *Governor) measureRate() {
	allocs, now := readAllocs(), time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if el := now.Sub(g.at).Seconds(); el > 0 && allocs >= g.allocs {
		g.rate = float64(allocs-g.allocs) / el
	}
	g.allocs, g.at = allocs, now
}

// apply sets the limit and GOGC for the live heap now.
func (g *Governor) apply() {
	live, ok := readMetric(liveHeap)
	if !ok {
		return // not this runtime's metric: leave the limit alone
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stop == nil {
		return
	}
	limit, percent := g.opts.Limit(live), g.opts.GCPercent(live, g.rate)
	debug.SetMemoryLimit(limit)
	g.limit = limit
	if percent != g.gcPercent {
		debug.SetGCPercent(percent)
		g.gcPercent = percent
	}
}

// Current is the limit last set, 0 when none is.
func (g *Governor) Current() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stop == nil {
		return 0
	}
	return g.limit
}

// CurrentGCPercent is the GOGC last set, 0 when the Governor is not running.
func (g *Governor) CurrentGCPercent() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stop == nil {
		return 0
	}
	return g.gcPercent
}

// Stop ends the polling and restores the limit and GOGC found at Start;
// safe to call twice and before Start.
func (g *Governor) Stop() {
	g.mu.Lock()
	stop, done, prev, prevGC := g.stop, g.done, g.prev, g.prevGC
	g.stop, g.done = nil, nil
	g.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
	debug.SetMemoryLimit(prev)
	debug.SetGCPercent(prevGC)
}
