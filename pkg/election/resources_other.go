//go:build !linux

package election

import (
	"runtime"
	"time"
)

// Outside Linux there is no /proc; report what the Go runtime knows.

func totalCPUMillicores() int64 { return int64(runtime.NumCPU()) * 1000 }

func totalMemoryBytes() int64 { return 0 }

func memoryUsageBytes() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

func processCPUTime() time.Duration { return 0 }
