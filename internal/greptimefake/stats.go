package greptimefake

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Stats are a node's counters since New.
type Stats struct {
	// Sent is the heartbeat requests sent on established streams (beats and
	// mailbox replies; handshakes are not counted).
	Sent uint64
	// Responses is the responses received after handshakes (handshake
	// responses are not counted).
	Responses uint64
	// Handshakes is the handshakes completed.
	Handshakes uint64
	// Reconnects is the established streams lost (each starts a reconnect).
	Reconnects uint64
	// NotLeader is the responses, handshake responses included, whose header
	// carries error code 2 (NotLeader).
	NotLeader uint64
	// Errors is every other failure: connect attempts that failed (ask
	// leader exhausted, stream open, handshake), streams that broke or ended,
	// sends that failed, and header errors other than NotLeader.
	Errors uint64
	// Latency is request -> response latency of the beats and mailbox
	// replies sent after handshakes. When Config.Latency is set it is that
	// shared histogram's content (every node recording into it).
	Latency Latencies
}

// Histogram records latencies in log-linear buckets in microseconds: exact
// below 16 µs, then 8 buckets per power of two (a reported value is within
// 12.5% of the true one), up to about 71 minutes. It is about 2 KiB, lock-free
// and safe for concurrent use, so one may be shared by many nodes
// (Config.Latency) or each node keeps its own. loadgen.Histogram is finer
// (0.8%) but 60 KiB and single-writer: 10,000 fake nodes cannot each keep one.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

const (
	histSubBits = 4
	histSub     = 1 << histSubBits // exact buckets, then histHalf per octave
	histHalf    = histSub / 2
	histMaxBits = 32 // values up to 2^32-1 µs
	histBuckets = histSub + (histMaxBits-histSubBits)*histHalf
)

func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	us = min(us, 1<<histMaxBits-1)
	shift := bits.Len64(us) - histSubBits // >= 1
	top := us >> shift                    // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(top-histHalf)
}

// upperOf is the largest value (µs) in bucket b.
func upperOf(b int) uint64 {
	if b < histSub {
		return uint64(b)
	}
	shift := (b-histSub)/histHalf + 1
	top := uint64((b-histSub)%histHalf + histHalf)
	return (top+1)<<shift - 1
}

// Record adds one latency; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d/time.Microsecond))].Add(1)
	h.n.Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// Snapshot copies the current content.
func (h *Histogram) Snapshot() Latencies {
	l := Latencies{counts: make([]uint64, histBuckets)}
	for i := range h.counts {
		l.counts[i] = h.counts[i].Load()
	}
	l.n = h.n.Load()
	l.sum = time.Duration(h.sum.Load())
	l.max = time.Duration(h.max.Load())
	return l
}

// Latencies is a copy of a Histogram's content; merge the nodes' copies for
// cluster-wide quantiles. The zero value is empty.
type Latencies struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

// Merge adds every value of o.
func (l *Latencies) Merge(o Latencies) {
	if len(o.counts) == 0 {
		return
	}
	if l.counts == nil {
		l.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		l.counts[i] += c
	}
	l.n += o.n
	l.sum += o.sum
	l.max = max(l.max, o.max)
}

// Count is the number of latencies recorded.
func (l Latencies) Count() uint64 { return l.n }

// Max is the largest latency recorded, exactly.
func (l Latencies) Max() time.Duration { return l.max }

// Mean is the average latency, exactly (0 when empty).
func (l Latencies) Mean() time.Duration {
	if l.n == 0 {
		return 0
	}
	return l.sum / time.Duration(l.n)
}

// Quantile returns the latency at quantile q (0..1]: the upper bound of the
// bucket holding the ceil(q*n)-th smallest value, never above the exact max.
func (l Latencies) Quantile(q float64) time.Duration {
	if l.n == 0 {
		return 0
	}
	rank := uint64(q * float64(l.n))
	if float64(rank) < q*float64(l.n) || rank == 0 {
		rank++
	}
	var seen uint64
	for b, c := range l.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(upperOf(b))*time.Microsecond+time.Microsecond-1, l.max)
		}
	}
	return l.max
}
