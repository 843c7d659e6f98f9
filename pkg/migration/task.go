package migration

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgmetasrv/metasrv/pkg/greptimekey"
	"github.com/pgmetasrv/metasrv/pkg/procedure"
	"github.com/pgmetasrv/metasrv/pkg/region"
	"github.com/pgmetasrv/metasrv/pkg/statuscode"
)

// Reason is why a migration was asked for (GreptimeDB's
// RegionMigrationTriggerReason, written in PascalCase as it is).
type Reason string

const (
	ReasonUnknown       Reason = "Unknown"
	ReasonManual        Reason = "Manual"
	ReasonAutoRebalance Reason = "AutoRebalance"
	ReasonFailover      Reason = "Failover"
)

func (r Reason) valid() bool {
	switch r {
	case ReasonUnknown, ReasonManual, ReasonAutoRebalance, ReasonFailover:
		return true
	}
	return false
}

// DefaultTimeout is the operation timeout of a task that sets none
// (GreptimeDB's PersistentContext default_timeout).
const DefaultTimeout = 10 * time.Second

// Task asks to move the leader of region RegionID from datanode From to
// datanode To.
type Task struct {
	RegionID uint64
	From, To uint64
	// Timeout bounds the time the downgrade and upgrade operations may take
	// together (GreptimeDB's timeout; the open and flush steps and the
	// lease wait do not count against it); 0 means DefaultTimeout.
	Timeout time.Duration
	// Reason is recorded with the migration; "" means ReasonUnknown. A
	// failover opens the candidate with OpenRegionReason RegionFailover.
	Reason Reason
}

// Info describes one migration this leader runs.
type Info struct {
	// ProcedureID is empty for a migration resumed from an earlier term
	// that has not run its first step on this node yet.
	ProcedureID procedure.ID
	RegionID    uint64
	From, To    greptimekey.Peer
	Reason      Reason
	Timeout     time.Duration
	// Step is the step the migration is at (see the package documentation).
	Step string
	// Since is when this node took the migration on.
	Since time.Time
}

// Errors of Submit, each also a *statuscode.Error carrying GreptimeDB's
// code and message for the same refusal (errors.Is matches the sentinel).
var (
	// ErrMigrationRunning: a migration of the region is already running
	// on this leader (GreptimeDB's MigrationRunning).
	ErrMigrationRunning = errors.New("migration: the region is being migrated")
	// ErrRegionMigrated: the region's leader already is the target
	// datanode (GreptimeDB's RegionMigrated); nothing is submitted.
	ErrRegionMigrated = errors.New("migration: the region already is on the target datanode")
	// ErrLeaderChanged: the region's leader is not the source datanode
	// (GreptimeDB's LeaderPeerChanged).
	ErrLeaderChanged = errors.New("migration: the region's leader is not the source datanode")
	// ErrPeerUnavailable: the datanode has no current lease on this leader
	// (GreptimeDB's PeerUnavailable).
	ErrPeerUnavailable = errors.New("migration: the datanode is not alive")
)

// coded wraps a GreptimeDB-coded error under a sentinel.
func coded(sentinel error, c statuscode.Code, format string, args ...any) error {
	return fmt.Errorf("%w: %w", sentinel, statuscode.Errorf(c, format, args...))
}

// regionName is GreptimeDB's Display of a RegionId.
func regionName(id uint64) string { return region.FormatRegionID(id) }

func invalidArguments(format string, args ...any) error {
	return statuscode.Errorf(statuscode.InvalidArguments, "Invalid arguments: "+format, args...)
}

func unexpected(format string, args ...any) error {
	return statuscode.Errorf(statuscode.Unexpected, "Unexpected, violated: "+format, args...)
}

// abort is GreptimeDB's MigrationAbort: the migration cannot go on and
// rolls back.
func abort(format string, args ...any) error {
	return statuscode.Errorf(statuscode.Unexpected, "The region migration procedure aborted, reason: "+format, args...)
}

// exceededDeadline is GreptimeDB's ExceededDeadline: the task's timeout is
// spent.
func exceededDeadline(operation string) error {
	return statuscode.Errorf(statuscode.Cancelled, "Exceeded deadline, operation: %s", operation)
}

// retryLater is GreptimeDB's RetryLater.
func retryLater(format string, args ...any) error {
	return procedure.Retryable(statuscode.Errorf(statuscode.IllegalState, "Expected to retry later, reason: "+format, args...))
}

// PeerUnavailable is GreptimeDB's PeerUnavailable refusal of datanode id,
// under ErrPeerUnavailable.
func PeerUnavailable(id uint64) error {
	return coded(ErrPeerUnavailable, statuscode.Unexpected, "The target peer is unavailable temporally: %d", id)
}

// Describe reads a migration procedure's persisted state
// (procedure.Info.Data of a procedure of TypeName) as an Info; ProcedureID
// and Since are left to the caller.
func Describe(data []byte) (Info, error) {
	var d migrationData
	if err := json.Unmarshal(data, &d); err != nil {
		return Info{}, fmt.Errorf("migration: the procedure's state does not decode: %w", err)
	}
	if d.RegionID == 0 || d.State == "" {
		return Info{}, fmt.Errorf("migration: the procedure's state names no region or step: %.200s", data)
	}
	return Info{RegionID: d.RegionID, From: d.From, To: d.To, Reason: d.Reason,
		Timeout: time.Duration(d.TimeoutMillis) * time.Millisecond, Step: d.State}, nil
}
