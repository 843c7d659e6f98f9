package ddlload

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgmetasrv/metasrv/internal/loadgen"
)

// Connection says how the clients reach the leader.
const Connection = "shared: one gRPC connection per metasrv address for all clients"

// Report is one run's figures.
type Report struct {
	// Leader is the metasrv the clients sent their DDL to (the last one
	// asked for, if the leader changed).
	Leader     string `json:"leader"`
	Catalog    string `json:"catalog"`
	Schema     string `json:"schema"`
	Clients    int    `json:"clients"`
	Tables     int    `json:"tables"`
	Datanodes  int    `json:"datanodes"`
	Partitions int    `json:"partitions"`
	Connection string `json:"connection"`

	Warmup Warmup `json:"warmup"`
	Create Phase  `json:"create"`
	// CreateCheck is the metadata and the datanodes' regions checked after
	// the creates.
	CreateCheck Check `json:"create_check"`
	// Drop and DropCheck are there with Config.Drop.
	Drop      *Phase `json:"drop,omitempty"`
	DropCheck *Check `json:"drop_check,omitempty"`
	// DropDatabaseError is why the database could not be dropped at the end
	// (with Config.Drop).
	DropDatabaseError string `json:"drop_database_error,omitempty"`
}

// Warmup is the wait for the datanodes' first region leases.
type Warmup struct {
	Seconds float64 `json:"seconds"`
	// Leased is how many datanodes got one.
	Leased int `json:"leased"`
}

// Phase is the figures of one kind of DDL call.
type Phase struct {
	Op        string `json:"op"`
	Requested int    `json:"requested"`
	// Succeeded is the calls answered OK; Errors the others, by label (the
	// gRPC code, with GreptimeDB's status code when the answer carried
	// x-greptime-err-code; ask_leader when no leader was found;
	// retries_exhausted after three NotLeader or Unavailable answers).
	Succeeded    uint64            `json:"succeeded"`
	Errors       uint64            `json:"errors"`
	ErrorsByCode map[string]uint64 `json:"errors_by_code"`
	FirstError   string            `json:"first_error,omitempty"`
	// NotLeader is the answers with the NotLeader header; Retries the
	// attempts after a first (each after asking for the leader again).
	NotLeader uint64  `json:"not_leader"`
	Retries   uint64  `json:"retries"`
	Seconds   float64 `json:"seconds"`
	// PerSec is the successful calls per second.
	PerSec  float64 `json:"per_sec"`
	Latency Latency `json:"latency"`
	// ServerCPU is the leader's CPU time during the phase, per 1,000
	// successful calls in SecondsPer1kOps; absent without a scraper.
	ServerCPU *loadgen.ServerCPU `json:"server_cpu,omitempty"`
	// LoadCPU is this process's CPU during the phase (the clients and the
	// fake datanodes); absent where the OS does not say.
	LoadCPU *LoadCPU `json:"load_cpu,omitempty"`
}

// Latency is the distribution of the successful calls' latencies.
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

func latencyOf(h *loadgen.Histogram) Latency {
	l := Latency{Count: h.Count(), P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), Max: h.Max()}
	l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs = loadgen.Millis(l.P50), loadgen.Millis(l.P90), loadgen.Millis(l.P99), loadgen.Millis(l.Max)
	return l
}

// LoadCPU is the load generator's own CPU time over a phase.
type LoadCPU struct {
	Seconds float64 `json:"seconds"`
	Cores   float64 `json:"cores"`
}

// Check is what the metadata and the datanodes held after a phase.
type Check struct {
	// ExpectedTables is how many tables should exist: Config.Tables after
	// the creates, none after the drops.
	ExpectedTables int `json:"expected_tables"`
	// TableNames is the __table_name keys under the schema's prefix.
	TableNames int `json:"table_names"`
	// Routes is the tables (of those the run made) whose __table_route is
	// a physical route with the expected regions on the run's datanodes;
	// after the drops, those with a __table_route or __table_info left.
	Routes int `json:"routes"`
	// Tombstones is the tombstoned table names under the schema (after the
	// drops: a finished drop leaves none).
	Tombstones int `json:"tombstones"`
	// Regions is the regions the fake datanodes hold, RegionsPerDatanode
	// the same by datanode (ids 1..N).
	Regions            int   `json:"regions"`
	RegionsPerDatanode []int `json:"regions_per_datanode"`
	// Problems is the first maxProblems problems found, ProblemCount all.
	Problems     []string `json:"problems,omitempty"`
	ProblemCount int      `json:"problem_count"`
}

// OK says the check found nothing wrong.
func (c Check) OK() bool { return c.ProblemCount == 0 }

// maxProblems is how many problems a check keeps the text of.
const maxProblems = 10

func (c *Check) problem(format string, args ...any) {
	c.ProblemCount++
	if len(c.Problems) < maxProblems {
		c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
	}
}

// Failure says why the run must not be taken as a success (a call failed,
// a check found a problem, the database could not be dropped), or nil.
// The error wraps ErrFailed.
func (r Report) Failure() error {
	var why []string
	phase := func(p *Phase, c *Check) {
		if p.Errors > 0 {
			why = append(why, fmt.Sprintf("%d of %d %s calls failed (first: %s)", p.Errors, p.Requested, p.Op, p.FirstError))
		}
		if c != nil && !c.OK() {
			why = append(why, fmt.Sprintf("the check after %s found %d problems (first: %s)", p.Op, c.ProblemCount, c.Problems[0]))
		}
	}
	phase(&r.Create, &r.CreateCheck)
	if r.Drop != nil {
		phase(r.Drop, r.DropCheck)
	}
	if r.DropDatabaseError != "" {
		why = append(why, "drop database: "+r.DropDatabaseError)
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrFailed, strings.Join(why, "; "))
}

// The errors of a run.
var (
	// ErrNoLease is returned when a fake datanode got no region lease
	// within Config.LeaseTimeout: the leader does not count it alive, so
	// no table could be placed on it.
	ErrNoLease = errors.New("ddlload: no region lease for the fake datanodes")
	// ErrFailed is what Report.Failure wraps.
	ErrFailed = errors.New("ddlload: the run failed")
)
