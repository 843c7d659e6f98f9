package hbload

import (
	"time"

	"github.com/pgmetasrv/metasrv/internal/greptimefake"
	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

// Report is one run's figures.
type Report struct {
	Role     string `json:"role"`
	Nodes    int    `json:"nodes"`
	ConnsPer int    `json:"conns_per"`
	// Pools is how many connection pools the nodes share (one connection
	// per metasrv address each).
	Pools int `json:"pools"`
	// Interval is the base heartbeat interval the run was told the server
	// has; RoleInterval what a node of Role should then be told (six times
	// it for frontends).
	Interval     string `json:"interval"`
	RoleInterval string `json:"role_interval"`
	Duration     string `json:"duration"`
	Ramp         string `json:"ramp"`

	Handshakes Handshakes `json:"handshakes"`
	Warmup     Warmup     `json:"warmup"`
	Window     Window     `json:"window"`
	// WholeRun is the latency of every beat answered from the first on,
	// warm-up included: the nodes' own histograms, merged.
	WholeRun Latency `json:"whole_run_latency"`

	// ServerCPU is the leader's CPU time during the window (Seconds per
	// 1,000 heartbeats answered in SecondsPer1kOps); absent without a
	// Scraper.
	ServerCPU *loadgen.ServerCPU `json:"server_cpu,omitempty"`
	// ServerMemory is the leader's RSS before the nodes started and at the
	// end of the window; absent without a Scraper.
	ServerMemory *ServerMemory `json:"server_memory,omitempty"`
	// LoadCPU is this process's CPU during the window: on a machine shared
	// with the cluster, what the load generator took from it. Absent where
	// the OS does not say.
	LoadCPU *LoadCPU `json:"load_cpu,omitempty"`
	// Warnings flag figures that may not mean what they seem.
	Warnings []string `json:"warnings,omitempty"`
}

// Handshakes sums up every handshake of the run, warm-up and window.
type Handshakes struct {
	Total uint64 `json:"total"`
	// Intervals and RetryIntervals count the handshakes by the
	// heartbeat_config they returned ("3s": 1000).
	Intervals      map[string]uint64 `json:"intervals"`
	RetryIntervals map[string]uint64 `json:"retry_intervals"`
	// WithoutConfig had no heartbeat_config: the node fell back to 3 s.
	WithoutConfig uint64 `json:"without_config"`
	// NotLeader were answered with the NotLeader header.
	NotLeader uint64 `json:"not_leader"`
	// Leaders counts the handshakes by the metasrv they were made with.
	Leaders map[string]uint64 `json:"leaders"`
}

// Warmup is the phase from the first node's start to the last node's first
// handshake.
type Warmup struct {
	Seconds float64 `json:"seconds"`
	// Handshaken is how many nodes completed a handshake (all of them,
	// unless the warm-up timed out).
	Handshaken int `json:"handshaken"`
	Counters
}

// Window is the measurement.
type Window struct {
	Seconds float64 `json:"seconds"`
	// HeartbeatsPerSec is the responses received per second;
	// ExpectedPerSec what the nodes send at RoleInterval.
	HeartbeatsPerSec float64 `json:"heartbeats_per_sec"`
	ExpectedPerSec   float64 `json:"expected_per_sec"`
	// Latency is of the beats sent inside the window and answered.
	Latency Latency `json:"latency"`
	Counters
}

// Counters are the nodes' counters over one phase.
type Counters struct {
	// Responses is the heartbeat responses received (handshake answers not
	// included).
	Responses uint64 `json:"responses"`
	// Handshakes completed in the phase; in the window each is a
	// reconnect's.
	Handshakes uint64 `json:"handshakes"`
	Reconnects uint64 `json:"reconnects"`
	NotLeader  uint64 `json:"not_leader"`
	// Errors are the nodes' failures (greptimefake.Stats.Errors): failed
	// connects, broken streams, failed sends, header errors.
	Errors uint64 `json:"errors"`
	// Warnings is what the nodes logged; FirstWarning the first of it.
	Warnings     uint64 `json:"warnings"`
	FirstWarning string `json:"first_warning,omitempty"`
}

// Latency is a latency distribution.
type Latency struct {
	Count uint64        `json:"count"`
	P50   time.Duration `json:"-"`
	P90   time.Duration `json:"-"`
	P99   time.Duration `json:"-"`
	Max   time.Duration `json:"-"`
	P50Ms float64       `json:"p50_ms"`
	P90Ms float64       `json:"p90_ms"`
	P99Ms float64       `json:"p99_ms"`
	MaxMs float64       `json:"max_ms"`
}

func latencyOf(l greptimefake.Latencies) Latency {
	r := Latency{Count: l.Count(), P50: l.Quantile(0.50), P90: l.Quantile(0.90), P99: l.Quantile(0.99), Max: l.Max()}
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = loadgen.Millis(r.P50), loadgen.Millis(r.P90), loadgen.Millis(r.P99), loadgen.Millis(r.Max)
	return r
}

// ServerMemory is the leader's resident memory.
type ServerMemory struct {
	Source string `json:"source"`
	// Measured says the figures are valid; Error says why not.
	Measured bool   `json:"measured"`
	Error    string `json:"error,omitempty"`
	// BeforeBytes is before the first node started, AfterBytes at the end
	// of the window; PerNodeBytes their difference over the nodes.
	BeforeBytes  uint64  `json:"before_bytes,omitempty"`
	AfterBytes   uint64  `json:"after_bytes,omitempty"`
	PerNodeBytes float64 `json:"per_node_bytes,omitempty"`
}

// LoadCPU is the load generator's own CPU time over the window.
type LoadCPU struct {
	Seconds float64 `json:"seconds"`
	Cores   float64 `json:"cores"`
}
