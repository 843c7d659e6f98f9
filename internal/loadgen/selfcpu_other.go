//go:build !unix

package loadgen

import "time"

// SelfCPU is not measured on this OS.
func SelfCPU() (time.Duration, bool) { return 0, false }
