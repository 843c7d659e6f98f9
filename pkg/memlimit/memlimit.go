// Package memlimit keeps the Go runtime's soft memory limit a little above
// the live heap, so that a leader whose cache holds most of its memory does
// not grow to twice that cache between collections.
//
// With the default GOGC=100 the runtime lets the heap double before it
// collects: a leader caching 1M keys (a 435 MB live heap for 282 MB of keys
// and values) peaked at 886 MB while clients wrote to it. A Governor polls
// the live heap (runtime/metrics "/gc/heap/live:bytes", as of the last
// collection; read after every collection and once per Interval) and sets
// the limit to live + max(MinHeadroom, live x
// HeadroomRatio): the collector then runs when the heap grows by the
// headroom instead of by the whole live heap. GOGC stays as it is, so a
// heap under MinHeadroom (a follower, a small cluster) collects as it
// always did: the limit binds only once the live heap exceeds it.
//
// # Failure modes
//
//   - The limit is soft: the runtime exceeds it rather than fail, and caps
//     the collector at about half the CPU when the live heap nears it. The
//     limit follows the live heap each poll, so it is never set below it.
//   - An operator's own GOMEMLIMIT or GOGC wins: Start leaves the runtime
//     alone when the environment sets either. GOGC=100 thus brings back
//     the runtime's default (fewer collections, twice the live heap).
//   - The price is CPU: each collection marks the whole live heap, and
//     they come more often once the limit binds. A leader caching 1M keys
//     peaked at 0.58 GB instead of 0.87-0.89 GB under compare-and-put
//     load (docs/benchmarks.md). MinHeadroom is large (192 MiB) so that a
//     growing heap, a cache being loaded by a new leader, is not collected
//     over and over: with 64 MiB a 1M-key load took 5 s instead of 2.3-2.8.
//   - Stop restores the limit found at Start.
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
	DefaultInterval      = time.Second
)

// liveHeap is the runtime metric the limit follows.
const liveHeap = "/gc/heap/live:bytes"

// Options configure a Governor; zero values take the defaults.
type Options struct {
	Logger        *slog.Logger
	MinHeadroom   int64
	HeadroomRatio float64
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
}

// New checks o.
func New(o Options) (*Governor, error) {
	if o.MinHeadroom < 0 || o.HeadroomRatio < 0 || o.Interval < 0 {
		return nil, errors.New("memlimit: MinHeadroom, HeadroomRatio and Interval must not be negative")
	}
	if o.MinHeadroom == 0 {
		o.MinHeadroom = DefaultMinHeadroom
	}
	if o.HeadroomRatio == 0 {
		o.HeadroomRatio = DefaultHeadroomRatio
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

// Start sets the limit from the current live heap and keeps it following;
// it returns at once. With GOMEMLIMIT or GOGC in the environment it does
// nothing (the operator chose).
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
				g.apply()
			}
		}
	}()
	g.log.Info("memory limit follows the live heap", "min_headroom_bytes", g.opts.MinHeadroom, "headroom_ratio", g.opts.HeadroomRatio)
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

// apply sets the limit for the live heap now.
func (g *Governor) apply() {
	s := []metrics.Sample{{Name: liveHeap}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return // not this runtime's metric: leave the limit alone
	}
	limit := g.opts.Limit(s[0].Value.Uint64())
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stop == nil {
		return
	}
	debug.SetMemoryLimit(limit)
	g.limit = limit
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

// Stop ends the polling and restores the limit found at Start; safe to
// call twice and before Start.
func (g *Governor) Stop() {
	g.mu.Lock()
	stop, done, prev := g.stop, g.done, g.prev
	g.stop, g.done = nil, nil
	g.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
	debug.SetMemoryLimit(prev)
}
