//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// SelfCPU is this process's CPU time so far (user + system), false where
// it cannot be read.
func SelfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
