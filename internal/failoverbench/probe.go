package failoverbench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
	"github.com/pgmetasrv/metasrv/pkg/client"
	"github.com/pgmetasrv/metasrv/pkg/kv"
)

// The server-side figure (first write acknowledged under a newer term, sent
// straight to the nodes) says when the cluster can serve again; an
// application sees the failover only when its client gives up on the old
// leader and finds the new one. The client probes measure that: a
// pkg/client with the default configuration, which has the old leader
// cached when the fault hits, keeps writing and reading from the fault on.

// clientProbes run one writer and one reader through pkg/client until each
// has one success after the fault.
type clientProbes struct {
	wg    sync.WaitGroup
	write probeResult
	read  probeResult
}

// probeResult is the time from the fault to the first successful call
// started after it, or timedOut when there was none.
type probeResult struct {
	took     time.Duration
	timedOut bool
	lastErr  error
}

// warmClientProbe makes c cache the current leader, as a long-lived client
// would have it when the fault hits.
func warmClientProbe(ctx context.Context, c *client.Client, key []byte) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Put(wctx, kv.PutRequest{Key: key, Value: []byte("warm")}); err != nil {
		return fmt.Errorf("client probe warm-up write: %w", err)
	}
	return nil
}

// startClientProbes starts the probes; t0 is when the fault was injected,
// and ctx bounds them (the round timeout).
func startClientProbes(ctx context.Context, c *client.Client, key []byte, t0 time.Time) *clientProbes {
	p := &clientProbes{}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.write = probe(ctx, t0, func(ctx context.Context) error {
			_, err := c.Put(ctx, kv.PutRequest{Key: key, Value: []byte("probe")})
			return err
		})
	}()
	go func() {
		defer p.wg.Done()
		p.read = probe(ctx, t0, func(ctx context.Context) error {
			_, err := c.Get(ctx, key)
			return err
		})
	}()
	return p
}

// probe calls fn until it succeeds. Each call carries no deadline of its
// own, so the client's defaults (request and attempt timeouts) apply as
// they would in an application; only the round's end stops it.
func probe(ctx context.Context, t0 time.Time, fn func(context.Context) error) probeResult {
	var r probeResult
	for ctx.Err() == nil {
		if r.lastErr = fn(ctx); r.lastErr == nil {
			r.took = time.Since(t0)
			return r
		}
		if errors.Is(r.lastErr, client.ErrClosed) {
			break
		}
		// The client paces its own retries; a call that failed for good
		// (outcome unknown, its deadline) is simply made again, as an
		// application retrying would.
	}
	r.timedOut = true
	return r
}

func (p *clientProbes) wait() (write, read probeResult) {
	p.wg.Wait()
	return p.write, p.read
}

// ClientStats summarises one client probe over the rounds.
type ClientStats struct {
	MedianMs float64 `json:"median_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	Timeouts int     `json:"timeouts"`
}

func summariseProbe(rounds []Round, pick func(Round) (float64, bool)) ClientStats {
	var s ClientStats
	var took []time.Duration
	for _, r := range rounds {
		ms, timedOut := pick(r)
		if timedOut {
			s.Timeouts++
			continue
		}
		took = append(took, time.Duration(ms*float64(time.Millisecond)))
	}
	s.MedianMs, s.P99Ms, s.MaxMs = loadgen.LatencyStats(took)
	return s
}

func (s ClientStats) String() string {
	return fmt.Sprintf("median %.0fms, p99 %.0fms, max %.0fms (%d timed out)", s.MedianMs, s.P99Ms, s.MaxMs, s.Timeouts)
}

func probeText(ms float64, timedOut bool) string {
	if timedOut {
		return "no success in time"
	}
	return loadgen.FormatLatency(time.Duration(ms * float64(time.Millisecond)))
}
