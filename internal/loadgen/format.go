package loadgen

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// FormatLatency prints a latency with three significant digits.
func FormatLatency(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	}
}

// Millis is d in milliseconds, to the microsecond.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// LatencyStats returns the median, p99 and maximum of took, in ms, from
// the sorted samples themselves (for a few samples, where a histogram
// would add nothing).
func LatencyStats(took []time.Duration) (median, p99, maxMs float64) {
	if len(took) == 0 {
		return 0, 0, 0
	}
	took = slices.Clone(took)
	slices.Sort(took)
	q := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	return Millis(q(0.5)), Millis(q(0.99)), Millis(took[len(took)-1])
}

// Median is the middle value of v, the mean of the two middle ones for an
// even count; 0 for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// RandomHex returns n random bytes, hex-encoded, for names unique per run.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
