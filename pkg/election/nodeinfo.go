package election

import (
	"os"
	"sync"
	"time"
)

// NodeInfoSource produces this node's NodeInfo: the fixed facts given at
// construction plus resource figures sampled at each Snapshot.
type NodeInfoSource struct {
	base NodeInfo

	mu       sync.Mutex
	lastWall time.Time
	lastCPU  time.Duration
}

// NewNodeInfoSource returns a source for a node advertised at addr, built as
// version/gitCommit and started at start.
func NewNodeInfoSource(addr, version, gitCommit string, start time.Time) *NodeInfoSource {
	hostname, _ := os.Hostname() // an unknown hostname is reported empty, as the seed does
	return &NodeInfoSource{
		base: NodeInfo{
			Addr:        addr,
			Version:     version,
			GitCommit:   gitCommit,
			StartTimeMs: start.UnixMilli(),
			Hostname:    hostname,
		},
		lastWall: time.Now(),
		lastCPU:  processCPUTime(),
	}
}

// Snapshot returns the node info with current resource figures. CPU usage is
// the process's average since the previous snapshot (or since construction).
func (s *NodeInfoSource) Snapshot() NodeInfo {
	info := s.base
	info.TotalCPUMillicores = totalCPUMillicores()
	info.TotalMemoryBytes = totalMemoryBytes()
	info.MemoryUsageBytes = memoryUsageBytes()

	now, cpu := time.Now(), processCPUTime()
	s.mu.Lock()
	wall := now.Sub(s.lastWall)
	used := cpu - s.lastCPU
	if wall > 0 && used >= 0 {
		info.CPUUsageMillicores = int64(float64(used) / float64(wall) * 1000)
	}
	s.lastWall, s.lastCPU = now, cpu
	s.mu.Unlock()
	return info
}
