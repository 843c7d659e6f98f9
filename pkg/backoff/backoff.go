// Package backoff is the one retry pause used across metasrv: capped
// exponential backoff with jitter, so nodes or clients that failed together
// do not retry in lockstep.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy gives the pause before retry n (n >= 1): Base doubled n-1 times, at
// most Max, then jittered.
type Policy struct {
	Base time.Duration
	Max  time.Duration
	// FullJitter draws the pause from [0, d) rather than [d/2, d]: better
	// for contenders that collided (serialisation failures), worse where a
	// minimum pause matters (reconnecting).
	FullJitter bool
}

// Delay is the pause before retry n.
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d <= 0 {
		return 0
	}
	if p.FullJitter {
		return rand.N(d)
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until ctx ends, in which case it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
