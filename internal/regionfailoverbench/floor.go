package regionfailoverbench

import (
	"fmt"
	"sort"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/region"
)

// floorSearch bounds the search for the floor: far beyond what any valid
// detector options give (an hour's pause and deviation cross the
// threshold within a few hours).
const floorSearch = 24 * time.Hour

// detectionFloor is how long after the last of beats a phi-accrual
// detector with options o, which saw a heartbeat at seed and then beats,
// first reaches its threshold: the earliest the metasrv, whose detectors
// are seeded when the table is made and fed by each heartbeat, can judge
// the regions failed. It reads the datanode's send times, which the
// metasrv sees a network hop later.
func detectionFloor(o region.PhiAccrualOptions, seed time.Time, beats []time.Time) (time.Duration, error) {
	d, err := region.NewPhiAccrualDetector(o)
	if err != nil {
		return 0, err
	}
	ms := func(t time.Time) int64 { return t.Sub(seed).Milliseconds() }
	d.Heartbeat(0)
	last := int64(0)
	for _, b := range beats {
		last = ms(b)
		d.Heartbeat(last)
	}
	limit := int(floorSearch.Milliseconds())
	// Phi only grows with the silence: the first millisecond at the
	// threshold is found by bisection.
	n := sort.Search(limit, func(i int) bool { return d.Phi(last+int64(i)) >= d.Threshold() })
	if n == limit {
		return 0, fmt.Errorf("regionfailoverbench: the detector does not reach its threshold within %s of silence", floorSearch)
	}
	return time.Duration(n) * time.Millisecond, nil
}
