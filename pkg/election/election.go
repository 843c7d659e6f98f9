// Package election defines how a metasrv node learns whether it leads: the
// Elector interface consumed by the metasrv core, the ordered stream of
// leadership changes, node information, the fencing error, and Single, the
// elector of a memory_store node that has nobody to compete with.
//
// The PostgreSQL implementation lives in pgelection.
package election

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ChangeKind says whether a LeaderChange starts or ends a term on this node.
type ChangeKind int

const (
	// Elected: this node became leader for Term.
	Elected ChangeKind = iota + 1
	// StepDown: this node no longer leads Term.
	StepDown
)

func (k ChangeKind) String() string {
	switch k {
	case Elected:
		return "elected"
	case StepDown:
		return "step_down"
	default:
		return fmt.Sprintf("ChangeKind(%d)", int(k))
	}
}

// LeaderChange is one message of the leadership stream. For a given
// subscriber, StepDown{t} is always preceded by Elected{t}, and an Elected is
// never followed by another Elected without the StepDown in between.
type LeaderChange struct {
	Kind ChangeKind
	Term int64
}

func (c LeaderChange) String() string { return fmt.Sprintf("%s{%d}", c.Kind, c.Term) }

// NodeInfo describes a metasrv node, as GreptimeDB's MetasrvNodeInfo does.
type NodeInfo struct {
	Addr               string `json:"addr"`
	Version            string `json:"version"`
	GitCommit          string `json:"git_commit"`
	StartTimeMs        int64  `json:"start_time_ms"`
	TotalCPUMillicores int64  `json:"total_cpu_millicores"`
	TotalMemoryBytes   int64  `json:"total_memory_bytes"`
	CPUUsageMillicores int64  `json:"cpu_usage_millicores"`
	MemoryUsageBytes   int64  `json:"memory_usage_bytes"`
	Hostname           string `json:"hostname"`
}

// Leader is the current leader as the election records it.
type Leader struct {
	Addr      string
	Term      int64
	ElectedAt time.Time
	Info      NodeInfo
}

// Elector is what the metasrv core needs from an election.
//
// Stop is the shutdown path: it resigns when leading. Resign hands leadership
// to another node and keeps this one campaigning.
type Elector interface {
	// Start begins campaigning and returns once the elector runs.
	Start(ctx context.Context) error
	// Stop resigns if leading, ends every goroutine and closes the streams
	// (after their final StepDown). Safe to call more than once.
	Stop()
	// Leader reports the current leader, or ErrNoLeader.
	Leader(ctx context.Context) (Leader, error)
	// TrustedTerm is the term this node leads while it trusts that it still
	// does (inside its lease's trust window), else 0. It is the one answer to
	// "may this node act as leader of term t right now": leader-only work
	// asks it per call, never a copy of it.
	TrustedTerm() int64
	// Candidates lists the node info of every live candidate.
	Candidates(ctx context.Context) ([]NodeInfo, error)
	// Resign gives up leadership if held; a no-op otherwise.
	Resign(ctx context.Context) error
	// Subscribe returns an ordered stream of changes that never drops a
	// message and never blocks the elector, and a function that ends the
	// subscription. A subscriber that joins while this node leads first
	// receives Elected for the current term.
	Subscribe() (<-chan LeaderChange, func())
	// Term is the term this node leads, trusted or not, 0 when it does not:
	// for reporting (metrics), not for deciding.
	Term() int64
	// Changes counts the leadership changes (Elected and StepDown) of this node.
	Changes() uint64
}

// ErrNoLeader is returned by Leader when nobody holds leadership.
var ErrNoLeader = errors.New("election: no leader")

// ErrUnavailable wraps a failure to read the election's state (PostgreSQL
// unreachable): the answer is unknown for now, not negative, and worth a retry.
var ErrUnavailable = errors.New("election: state unavailable")

// ErrFenced is matched (errors.Is) by every FencedError.
var ErrFenced = errors.New("election: fenced")

// FencedError rejects a leader-only write made with a term that is no longer
// the current one.
type FencedError struct {
	// Expected is the writer's term.
	Expected int64
	// Actual is the term the election records (0: none recorded).
	Actual int64
}

func (e *FencedError) Error() string {
	if e.Actual == e.Expected {
		return fmt.Sprintf("election: fenced: this node no longer trusts its leadership of term %d", e.Expected)
	}
	return fmt.Sprintf("election: fenced: write made under term %d, current term is %d", e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrFenced) hold.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }
