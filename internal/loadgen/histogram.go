package loadgen

import (
	"math/bits"
	"time"
)

// Histogram records latencies in log-linear buckets, as HdrHistogram does:
// exact below 256ns, then 128 buckets per power of two, so a reported value
// is within 0.8% of the true one. Its memory is fixed (about 60 KiB) however
// long a run lasts; each worker keeps its own and they are merged at the end.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSubBits = 8
	histSub     = 1 << histSubBits // 256 exact buckets, then 128 per octave
	histHalf    = histSub / 2
	histBuckets = histSub + (64-histSubBits)*histHalf
)

// bucketOf maps a value to its bucket: below histSub the value itself, above
// it the octave (shift) and the top histSubBits bits of the value.
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits // >= 1
	top := v >> shift                    // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(top-histHalf)
}

// upperOf is the largest value that falls in bucket b.
func upperOf(b int) uint64 {
	if b < histSub {
		return uint64(b)
	}
	shift := (b-histSub)/histHalf + 1
	top := uint64((b-histSub)%histHalf + histHalf)
	return (top+1)<<shift - 1
}

// Record adds one value; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds every value of o.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Quantile returns the value at quantile q (0..1]: the upper bound of the
// bucket holding the ceil(q*n)-th smallest sample, never above the exact max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) || rank == 0 {
		rank++
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(upperOf(b)), h.max)
		}
	}
	return h.max
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }
